"""Metadata database: a projection of the event log (persons, faces, enrollments).

Imports only `core` and `schemas`. Modules: models (tables), session (engine factories, ping),
projection (apply events idempotently), queries (read side), records (what queries return),
migrate (alembic, programmatically).
"""
