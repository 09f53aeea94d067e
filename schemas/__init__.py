"""Message envelopes and API bodies. Pydantic only: this package imports nothing of ours."""
