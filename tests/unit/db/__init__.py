"""Unit tests of db/: hermetic, on SQLite files."""
