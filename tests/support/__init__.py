"""Helpers the integration tests share: real servers started on loopback."""
