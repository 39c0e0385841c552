"""Alembic migrations of the run records (run by relay.records.migrate, or `python -m relay.records`)."""
