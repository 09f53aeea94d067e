"""Alembic migrations of the metadata database (env.py, versions/). Imports only db.models."""
