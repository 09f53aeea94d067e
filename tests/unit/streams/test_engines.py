"""A worker's engines, one per pack: a gallery on another pack is embedded by that pack's
engine (loaded on its first command); a pack that cannot be loaded refuses its own commands only."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from core.errors import ErrorCode, FacestreamError
from engine.fake import DeterministicFakeEngine
from schemas.envelope import Envelope
from schemas.events import EnrollFace, ModelInfo
from streams.engines import Engines, analyse_by_pack


def engine_of(pack: str, dim: int) -> DeterministicFakeEngine:
    engine = DeterministicFakeEngine(dim=dim)
    engine.model = ModelInfo(pack=pack, recognizer="fake", version="1", dim=dim)
    return engine


def command(person: str) -> Envelope[EnrollFace]:
    payload = EnrollFace(enrollment_id="e", person_id=person, image=f"FAKE:{person}:1".encode())
    return Envelope.wrap(payload, correlation_id=person)


def test_each_command_goes_through_its_gallerys_pack() -> None:
    loaded: list[str] = []

    def build(pack: str) -> DeterministicFakeEngine:
        if pack == "broken":
            raise RuntimeError("no such files")
        loaded.append(pack)
        return engine_of(pack, 128)

    engines = Engines("default", engine_of("default", 512), build=build)
    envelopes = [command(p) for p in ("a", "b", "c", "d", "e")]
    packs = ["default", "big", "broken", "default", "big"]
    refused = {4: FacestreamError(ErrorCode.UNKNOWN_GALLERY, "gone")}
    with ThreadPoolExecutor(1) as executor:
        results = asyncio.run(analyse_by_pack(engines, executor, envelopes, packs, refused, "none"))
    assert [item.envelope.payload.person_id for item, _ in results] == ["a", "b", "c", "d", "e"]
    assert [engine.model.pack for _, engine in results] == ["default", "big", "default", "default", "default"]
    assert [None if item.vector is None else len(item.vector) for item, _ in results] == [
        512,
        128,
        None,
        512,
        None,
    ]
    assert results[2][0].error is not None and results[2][0].error.code is ErrorCode.MODEL_NOT_INSTALLED
    assert results[4][0].error is not None and results[4][0].error.code is ErrorCode.UNKNOWN_GALLERY
    assert loaded == ["big"]  # once, on its first command


def test_a_worker_without_a_loader_serves_its_own_pack_only() -> None:
    engines = Engines("default", engine_of("default", 512))
    try:
        asyncio.run(engines.get("other"))
    except FacestreamError as exc:
        assert exc.code is ErrorCode.MODEL_NOT_INSTALLED
    else:
        raise AssertionError("another pack was served")
