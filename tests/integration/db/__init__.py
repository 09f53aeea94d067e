"""db/ against a real PostgreSQL (marker `postgres`)."""
