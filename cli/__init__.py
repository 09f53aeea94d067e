"""The composition root: the `facestream` command and the local-stack supervisor.

It starts every process and so imports every layer; nothing imports it."""
