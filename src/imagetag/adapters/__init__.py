"""Adapters: one module per outside technology, each implementing a port."""
