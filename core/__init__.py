"""Shared plumbing: settings, errors, logging, metrics, Kafka helpers and the CLI."""
