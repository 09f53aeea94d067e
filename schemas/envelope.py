"""The envelope every Kafka record carries, and the header names that travel beside it."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

P = TypeVar("P", bound=BaseModel)

SCHEMA_VERSION = 1


class Header:
    """Kafka header names. Ids also travel in the envelope; headers let routers skip parsing."""

    EVENT_TYPE = "event_type"
    SCHEMA_VERSION = "schema_version"
    CORRELATION_ID = "correlation_id"
    REQUEST_ID = "request_id"
    REPLY_TO = "reply_to"
    # On embeddings records: whose face it is, so that the eraser's view of the log reads
    # keys and headers only.
    PERSON_ID = "person_id"
    MODEL_ID = "model_id"
    # On embeddings and image records of a gallery other than the default one: which index
    # a record belongs in, read without parsing the value (absent: the default gallery).
    GALLERY = "gallery"


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    """event id, type, schema version, time and correlation id around one payload."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    event_id: str = Field(default_factory=new_id)
    type: str
    schema_version: int = SCHEMA_VERSION
    time: datetime = Field(default_factory=utcnow)
    correlation_id: str
    payload: P

    @classmethod
    def wrap(cls, payload: P, *, correlation_id: str) -> Envelope[P]:
        return envelope_of(type(payload))(
            type=type(payload).__name__, correlation_id=correlation_id, payload=payload
        )


@functools.cache
def envelope_of(payload_type: type[BaseModel]) -> type[Envelope[Any]]:
    """``Envelope[payload_type]``, kept for the process's life.

    pydantic caches parametrized generics by weak reference: once a collection finds nothing
    else holding one, the next ``Envelope[X]`` builds its schema and validator again (0.7-0.9 ms
    here, measured in an event loop's task). py-spy found such rebuilds in the facade's requests.
    """
    return Envelope[payload_type]  # type: ignore[valid-type]


class EnvelopeHead(BaseModel):
    """The envelope without its payload: enough to route or dead-letter a record."""

    event_id: str
    type: str
    schema_version: int
    time: datetime
    correlation_id: str
