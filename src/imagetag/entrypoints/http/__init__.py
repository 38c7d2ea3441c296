"""The HTTP API (Litestar + msgspec)."""
