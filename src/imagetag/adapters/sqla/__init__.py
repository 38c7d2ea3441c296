"""SQLAlchemy 2 async storage: one schema for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""
