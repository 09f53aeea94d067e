"""Envelope parametrizations outlive garbage collection (pydantic keeps them by weak reference)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from schemas.envelope import envelope_of
from schemas.events import FaceSearched, IdentifyFailed


def test_a_parametrization_is_built_once_and_kept() -> None:
    async def parametrize() -> weakref.ref[type]:
        return weakref.ref(envelope_of(FaceSearched))

    async def main() -> weakref.ref[type]:
        kept = await asyncio.create_task(parametrize())
        gc.collect()
        return kept

    kept = asyncio.run(main())
    assert kept() is not None
    assert kept() is envelope_of(FaceSearched)
    assert envelope_of(FaceSearched) is not envelope_of(IdentifyFailed)
