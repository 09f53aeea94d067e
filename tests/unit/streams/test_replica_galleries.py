"""A replica's galleries: one index each, answers that never cross, deletion, one-gallery replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.galleries import Gallery, GalleryRegistry, default_gallery
from core.settings import Settings
from schemas.envelope import Envelope
from schemas.events import GalleryDefined, GalleryDeleted, IndexSpec
from streams import replica_galleries
from streams.log_fold import PendingChanges
from streams.replica_galleries import GalleryKeeper
from streams.replica_log import LogFollower
from streams.replica_state import ReplicaState
from tests.unit.streams.factories import FakeMessage, metrics, settings
from tests.unit.streams.galleries_factories import MODEL, fact, record, tombstone, unit


class Catalog:
    def __init__(self, config: Settings) -> None:
        self.registry = GalleryRegistry(default_gallery(config))

    def define(self, gallery: str, **fields: Any) -> None:
        payload = GalleryDefined(gallery=gallery, pack=MODEL.pack, **fields)
        self.registry.apply(
            FakeMessage(
                "g",
                0,
                0,
                gallery.encode(),
                Envelope.wrap(payload, correlation_id="c").model_dump_json().encode(),
            )
        )

    def delete(self, gallery: str) -> None:
        payload = GalleryDeleted(gallery=gallery, erasure_id="x", requested_by="t")
        self.registry.apply(
            FakeMessage(
                "g",
                0,
                0,
                gallery.encode(),
                Envelope.wrap(payload, correlation_id="c").model_dump_json().encode(),
            )
        )

    async def lookup(self, gallery: str) -> Gallery | None:
        return self.registry.get(gallery)


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return settings(index_dir=tmp_path / "index", model_pack=MODEL.pack)


def _replica(config: Settings) -> tuple[ReplicaState, LogFollower, Catalog]:
    state = ReplicaState()
    catalog = Catalog(config)
    follower = LogFollower(config, metrics(), MODEL, state, catalog=catalog)
    state.hold("default", follower.default_index())
    return state, follower, catalog


async def _apply(state: ReplicaState, follower: LogFollower, records: list[FakeMessage]) -> None:
    await follower.hold_galleries({h[1].decode() for r in records for h in r.headers if h[0] == "gallery"})
    pending, letters = PendingChanges(), []  # type: ignore[var-annotated]
    for r in records:
        follower.fold(r, pending, letters)  # type: ignore[arg-type]
    assert letters == []
    await state.apply(pending, {0: max(r.offset for r in records) + 1})


async def test_the_same_person_id_in_two_galleries_never_crosses(config: Settings) -> None:
    state, follower, catalog = _replica(config)
    catalog.define("branch-b")
    rng = np.random.default_rng(1)
    alice_a, alice_b = unit(rng), unit(rng)
    await _apply(
        state,
        follower,
        [
            record(0, fact("fa", "alice", alice_a)),
            record(1, fact("fb", "alice", alice_b, gallery="branch-b")),
        ],
    )
    assert state.sizes() == {"branch-b": 1, "default": 1}
    in_a = await state.search(alice_b[None, :], 3, "default")
    in_b = await state.search(alice_b[None, :], 3, "branch-b")
    assert [m.face_id for m in in_a.matches[0]] == ["fa"] and in_a.gallery_size == 1
    assert [m.face_id for m in in_b.matches[0]] == ["fb"] and in_b.matches[0][0].similarity > 0.99


async def test_a_tombstone_goes_to_the_gallery_of_its_face(config: Settings) -> None:
    state, follower, catalog = _replica(config)
    catalog.define("branch-b")
    rng = np.random.default_rng(2)
    await _apply(
        state,
        follower,
        [record(0, fact("fa", "p", unit(rng))), record(1, fact("fb", "p", unit(rng), gallery="branch-b"))],
    )
    await _apply(state, follower, [tombstone(2, "fb")])
    assert state.sizes() == {"branch-b": 0, "default": 1}
    assert "fb" not in state.gallery_of


async def test_a_gallery_unknown_or_being_deleted_is_not_indexed(config: Settings) -> None:
    state, follower, catalog = _replica(config)
    catalog.define("going")
    catalog.delete("going")
    rng = np.random.default_rng(3)
    await _apply(
        state,
        follower,
        [
            record(0, fact("f1", "p", unit(rng), gallery="nowhere")),
            record(1, fact("f2", "p", unit(rng), gallery="going")),
        ],
    )
    assert state.sizes() == {"default": 0}


async def test_a_deleted_gallery_is_dropped_at_once(config: Settings) -> None:
    state, follower, catalog = _replica(config)
    catalog.define("branch-b")
    rng = np.random.default_rng(4)
    await _apply(
        state,
        follower,
        [record(0, fact("fa", "p", unit(rng))), record(1, fact("fb", "p", unit(rng), gallery="branch-b"))],
    )
    catalog.delete("branch-b")
    await GalleryKeeper(config, state, follower).reconcile(catalog.registry)
    assert state.sizes() == {"default": 1} and state.gallery_of == {}
    found = await state.search(unit(rng)[None, :], 3, "branch-b")
    assert found.matches == [[]] and found.gallery_size == 0


async def test_a_new_generation_rebuilds_that_gallery_alone(
    config: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, follower, catalog = _replica(config)
    catalog.define("branch-b")
    catalog.define("branch-c")
    rng = np.random.default_rng(5)
    log = [
        record(0, fact("fa", "p", unit(rng))),
        record(1, fact("fb", "p", unit(rng), gallery="branch-b")),
        record(2, fact("fc", "p", unit(rng), gallery="branch-c")),
    ]
    await _apply(state, follower, log)
    before_default, before_c = state.galleries["default"].index, state.galleries["branch-c"].index
    read: list[tuple[str, dict[int, int], dict[int, int]]] = []

    def fake_fold_into(
        config: Settings, index: Any, *, gallery: str, starts: dict[int, int], ends: dict[int, int]
    ) -> tuple[int, int]:
        read.append((gallery, starts, ends))
        pending = PendingChanges()
        for r in log:
            if starts.get(r.partition, 0) <= r.offset < ends.get(r.partition, 0):
                pending.fold(r, expect=lambda g: (index.model_id, index.dim) if g == gallery else None)
        pending.apply(index)
        return len(log), 0

    monkeypatch.setattr(replica_galleries, "fold_into", fake_fold_into)
    catalog.define(
        "branch-b",
        generation=1,
        index=IndexSpec(backend="faiss-ivfpq", options={"nlist": 2, "m": 4, "nbits": 4, "train_min": 100}),
    )
    await GalleryKeeper(config, state, follower).reconcile(catalog.registry)
    rebuilt = state.galleries["branch-b"]
    assert rebuilt.generation == 1 and rebuilt.index.backend == "faiss-ivfpq" and "fb" in rebuilt.index
    assert read[0] == ("branch-b", {0: 0}, {0: 3})
    # The other galleries kept their very indexes.
    assert (
        state.galleries["default"].index is before_default and state.galleries["branch-c"].index is before_c
    )
    assert state.sizes() == {"branch-b": 1, "branch-c": 1, "default": 1}
    await GalleryKeeper(config, state, follower).reconcile(catalog.registry)  # nothing new: no rebuild
    assert len(read) == 2  # the rebuild's cut, then its catch-up under the gate


async def test_a_snapshot_restores_every_gallery_and_no_rebuild_follows(
    config: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.replica_snapshot import Snapshotter

    spec = IndexSpec(backend="faiss-ivfpq", options={"nlist": 2, "m": 4, "nbits": 4, "train_min": 100})
    state, follower, catalog = _replica(config)
    catalog.define("branch-b", generation=2, index=spec)
    rng = np.random.default_rng(6)
    await _apply(
        state,
        follower,
        [record(0, fact("fa", "p", unit(rng))), record(1, fact("fb", "p", unit(rng), gallery="branch-b"))],
    )
    snapshots = Snapshotter(state, follower.snapshot_dir, config.topics.embeddings)
    assert await snapshots.snapshot()
    snapshots.close()

    again, follower_again, _ = _replica(config)
    follower_again.catalog = catalog
    follower_again.load_snapshot()
    assert again.restored_from == "snapshot" and again.sizes() == {"branch-b": 1, "default": 1}
    assert again.galleries["branch-b"].index.backend == "faiss-ivfpq" and again.gallery_of == {
        "fb": "branch-b"
    }

    def no_rebuild(*args: Any, **kwargs: Any) -> tuple[int, int]:
        raise AssertionError("a gallery restored as its definition says is not rebuilt")

    monkeypatch.setattr(replica_galleries, "fold_into", no_rebuild)
    await GalleryKeeper(config, again, follower_again).reconcile(catalog.registry)
    await _apply(again, follower_again, [tombstone(2, "fb")])  # routed by the restored map
    assert again.sizes() == {"branch-b": 0, "default": 1}
