"""Storage: database engines (SQLite, PostgreSQL), the tables, the snapshot codec, the compiled fast
path of the command, the schema check and the Alembic migrations."""
