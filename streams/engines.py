"""The engines a worker runs, one per model pack, and a batch analysed pack by pack.

The deployment's pack is loaded at start; another pack that a gallery names is loaded on the
gallery's first command, from the models folder (never downloaded: `facestream models pull`
puts it there). Vectors of different packs never meet: each gallery's index holds one model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from core.errors import ErrorCode, FacestreamError
from core.logging import get_logger
from engine.types import Engine as FaceEngine
from schemas.envelope import Envelope
from streams.image_stage import Analysed, analyse_batch

log = get_logger(__name__)


class Engines:
    def __init__(
        self, pack: str, engine: FaceEngine, build: Callable[[str], FaceEngine] | None = None
    ) -> None:
        self.default = engine
        self._engines: dict[str, FaceEngine] = {pack: engine}
        self._build = build
        self._loading = asyncio.Lock()

    async def get(self, pack: str) -> FaceEngine:
        if pack in self._engines:
            return self._engines[pack]
        if self._build is None:
            raise FacestreamError(ErrorCode.MODEL_NOT_INSTALLED, f"this worker serves no pack {pack!r}")
        async with self._loading:
            if pack not in self._engines:
                log.info("pack_loading", pack=pack)
                try:
                    self._engines[pack] = await asyncio.to_thread(self._build, pack)
                except FacestreamError:
                    raise
                except Exception as exc:  # a missing or broken pack refuses its gallery's work only
                    raise FacestreamError(
                        ErrorCode.MODEL_NOT_INSTALLED, f"pack {pack!r} cannot be loaded: {exc}"
                    ) from exc
        return self._engines[pack]


async def analyse_by_pack(
    engines: Engines,
    executor: Executor,
    envelopes: Sequence[Envelope[Any]],
    packs: Sequence[str],
    refused: Mapping[int, FacestreamError],
    default_filter: str,
) -> list[tuple[Analysed[Any], FaceEngine]]:
    """Each command through its gallery's pack (a refused one keeps its error), in order."""
    loop = asyncio.get_running_loop()
    results: list[tuple[Analysed[Any], FaceEngine] | None] = [None] * len(envelopes)
    refusals = dict(refused)
    by_pack: dict[str, list[int]] = {}
    for position, pack in enumerate(packs):
        if position not in refusals:
            by_pack.setdefault(pack, []).append(position)
    for pack, positions in by_pack.items():
        try:
            engine = await engines.get(pack)
        except FacestreamError as exc:
            refusals.update(dict.fromkeys(positions, exc))
            continue
        items = await loop.run_in_executor(
            executor, analyse_batch, engine, [envelopes[i] for i in positions], default_filter
        )
        for position, item in zip(positions, items, strict=True):
            results[position] = (item, engine)
    for position, error in refusals.items():
        results[position] = (Analysed(envelope=envelopes[position], error=error), engines.default)
    return [r for r in results if r is not None]
