"""Sending handler outputs and waiting for the broker's acknowledgement before anything commits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from core.kafka import encode, envelope_headers, key_bytes
from streams.handlers.output import Output


class Sender(Protocol):
    """aiokafka's producer shape: `send` enqueues and returns a future of the record metadata."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: Any = None,
    ) -> asyncio.Future[Any]: ...


class FaustSender:
    """faust's producer behind the aiokafka shape."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: Any = None,
    ) -> asyncio.Future[Any]:
        return await self._producer.send(topic, key, value, None, None, headers)  # type: ignore[no-any-return]


async def send_tombstones(sender: Sender, topic: str, keys: Sequence[str]) -> list[Any]:
    """A null value under each key of a compacted topic; every ack awaited."""
    futures = [await sender.send(topic, None, key_bytes(key)) for key in keys]
    return list(await asyncio.gather(*futures))


async def send_all(sender: Sender, outputs: Sequence[Output]) -> list[Any]:
    """Send every output, then await every ack: the caller may only commit after this returns."""
    futures = [
        await sender.send(
            out.topic,
            encode(out.envelope),
            key_bytes(out.key),
            headers=envelope_headers(out.envelope, **out.headers),
        )
        for out in outputs
    ]
    return list(await asyncio.gather(*futures))
