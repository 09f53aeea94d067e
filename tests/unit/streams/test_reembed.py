"""Comparing a current and a candidate gallery on a labelled set."""

from __future__ import annotations

from pathlib import Path

from engine.fake import DeterministicFakeEngine
from index import registry
from streams.reembed import compare_galleries


def _gallery(engine: DeterministicFakeEngine, people: list[str], variant: str = "enrolled"):  # type: ignore[no-untyped-def]
    index = registry.create("faiss-flat", dim=engine.model.dim, model_id=engine.model.id)
    crops = [engine.prepare(f"FAKE:{p}:{variant}".encode()).faces[0].crop for p in people]
    index.add([f"f-{p}" for p in people], people, engine.embed(crops))
    return index


def test_same_model_agrees_everywhere_and_a_wrong_gallery_does_not(tmp_path: Path) -> None:
    people = ["alice", "bob", "carol"]
    labelled = {}
    for person in people:
        photo = tmp_path / person / "probe.jpg"
        photo.parent.mkdir()
        photo.write_bytes(f"FAKE:{person}:probe".encode())
        labelled[person] = [photo]
    engine = DeterministicFakeEngine()
    current = (engine, _gallery(engine, people))

    same = compare_galleries(labelled, current, (engine, _gallery(engine, people)))
    assert same == {
        "photos": 3,
        "agreement": 1.0,
        "rank1_current": 1.0,
        "rank1_candidate": 1.0,
        "refused": {},
    }

    # A candidate gallery that lost carol answers someone else for her photo.
    partial = compare_galleries(labelled, current, (engine, _gallery(engine, ["alice", "bob"])))
    assert partial["agreement"] == round(2 / 3, 4) and partial["rank1_candidate"] == round(2 / 3, 4)
