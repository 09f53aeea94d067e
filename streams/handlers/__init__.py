"""Pure handlers: (event, deps) -> outputs. No Kafka here; the processors do the I/O."""
