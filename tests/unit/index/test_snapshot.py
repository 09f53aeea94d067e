"""Snapshots: the index plus the offsets it reflects, atomic, verified before being served."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import FacestreamError
from index import (
    SnapshotUnusable,
    UnusableReason,
    VectorIndex,
    create,
    read_snapshot,
    write_snapshot,
)
from index import snapshot as snapshot_module
from tests.unit.index.conftest import MakeIndex
from tests.unit.index.factories import DIM, MODEL, gallery, unit_vectors

TOPIC = "facestream.face.embeddings.v1"
OFFSETS = {0: 120, 1: 0, 2: 57}


@pytest.fixture
def index(make_index: MakeIndex, rng: np.random.Generator) -> VectorIndex:
    index = make_index()
    index.add(*gallery(rng, 45))
    return index


def read(directory: Path, **overrides: str) -> object:
    expected = {"expected_model_id": MODEL, "expected_topic": TOPIC} | overrides
    return read_snapshot(directory, **expected)


def live(directory: Path) -> Path:
    return directory / (directory / "CURRENT").read_text().strip()


def unusable(directory: Path, reason: UnusableReason, **overrides: str) -> SnapshotUnusable:
    with pytest.raises(SnapshotUnusable) as caught:
        read(directory, **overrides)
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_roundtrip_with_offsets(
    index: VectorIndex, backend: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    written = write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    loaded = read_snapshot(tmp_path, expected_model_id=MODEL, expected_topic=TOPIC)
    assert loaded.offsets == OFFSETS
    assert loaded.manifest == written
    manifest = loaded.manifest
    entry = manifest.galleries["default"]
    assert (entry.backend, entry.model_id, entry.dim, entry.size, manifest.topic) == (
        backend,
        MODEL,
        DIM,
        45,
        TOPIC,
    )
    assert manifest.format_version == snapshot_module.FORMAT_VERSION
    assert manifest.created_at.tzinfo is not None
    assert manifest.files and all(
        len(f.crc32) == -(-f.bytes // f.chunk_bytes) for f in manifest.files.values()
    )
    assert loaded.index.stats() == index.stats()
    queries = unit_vectors(rng, 4)
    assert loaded.index.search(queries, 6) == index.search(queries, 6)
    on_disk = json.loads((live(tmp_path) / "manifest.json").read_text())
    assert on_disk["offsets"] == {"0": 120, "1": 0, "2": 57}


def test_expected_backend_is_checked(index: VectorIndex, backend: str, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    assert read(tmp_path, expected_backend=backend).index.backend == backend
    unusable(tmp_path, UnusableReason.FOREIGN, expected_backend="some-other-backend")


def test_only_the_latest_snapshot_is_kept(
    index: VectorIndex, rng: np.random.Generator, tmp_path: Path
) -> None:
    for offset in range(3):
        index.add([f"extra-{offset}"], ["p"], unit_vectors(rng, 1))
        write_snapshot(index, tmp_path, offsets={0: offset}, topic=TOPIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", live(tmp_path).name]
    loaded = read(tmp_path)
    assert loaded.offsets == {0: 2} and len(loaded.index) == 48


def test_missing(tmp_path: Path) -> None:
    unusable(tmp_path / "does-not-exist", UnusableReason.MISSING)
    unusable(tmp_path, UnusableReason.MISSING)


def test_current_naming_a_vanished_snapshot(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    snapshot_module.shutil.rmtree(live(tmp_path))
    unusable(tmp_path, UnusableReason.MISSING)
    (tmp_path / "CURRENT").write_text("../../etc\n")
    unusable(tmp_path, UnusableReason.CORRUPT)


def test_corrupted_payload_is_detected(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    payload = max((live(tmp_path) / "payload").rglob("*"), key=lambda p: p.stat().st_size)
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))
    assert "checksum mismatch" in unusable(tmp_path, UnusableReason.CORRUPT).detail


def test_truncated_payload_is_detected(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    for payload in (live(tmp_path) / "payload").rglob("*"):
        if payload.is_file():
            payload.write_bytes(payload.read_bytes()[:-1])
            break
    assert "bytes" in unusable(tmp_path, UnusableReason.CORRUPT).detail


def test_missing_or_extra_payload_file_is_detected(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    (live(tmp_path) / "payload" / "stray.bin").write_bytes(b"x")
    unusable(tmp_path, UnusableReason.CORRUPT)
    (live(tmp_path) / "payload" / "stray.bin").unlink()
    next(p for p in (live(tmp_path) / "payload").rglob("*") if p.is_file()).unlink()
    unusable(tmp_path, UnusableReason.CORRUPT)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "",
        lambda text: "[1, 2, 3]",
        lambda text: text.replace('"dim": 32', '"dim": "thirty-two"'),
    ],
    ids=["truncated", "empty", "not-an-object", "bad-field"],
)
def test_damaged_manifest_is_detected(index: VectorIndex, tmp_path: Path, damage) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    manifest = live(tmp_path) / "manifest.json"
    manifest.write_text(damage(manifest.read_text()))
    unusable(tmp_path, UnusableReason.CORRUPT)


def test_missing_manifest(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    (live(tmp_path) / "manifest.json").unlink()
    unusable(tmp_path, UnusableReason.CORRUPT)


def test_foreign_model_id(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    assert "model" in unusable(tmp_path, UnusableReason.FOREIGN, expected_model_id="other-pack/r@9").detail


def test_foreign_topic(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    assert (
        "topic"
        in unusable(tmp_path, UnusableReason.FOREIGN, expected_topic="other.face.embeddings.v1").detail
    )


def edit_manifest(directory: Path, **changes: object) -> None:
    manifest = live(directory) / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | changes))


def edit_gallery(directory: Path, gallery: str = "default", **changes: object) -> None:
    manifest = live(directory) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["galleries"][gallery] |= changes
    manifest.write_text(json.dumps(data))


def test_unknown_backend_is_foreign(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    edit_gallery(tmp_path, backend="milvus-of-the-future")
    assert "not registered" in unusable(tmp_path, UnusableReason.FOREIGN).detail


def test_other_format_version_is_incompatible(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    edit_manifest(tmp_path, format_version=99)
    unusable(tmp_path, UnusableReason.INCOMPATIBLE)


def test_manifest_disagreeing_with_payload_is_corrupt(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    edit_gallery(tmp_path, size=44)
    unusable(tmp_path, UnusableReason.CORRUPT)


def test_leftover_temp_dir_is_ignored_then_cleaned(index: VectorIndex, tmp_path: Path) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    crashed = tmp_path / ".tmp-deadbeef"
    (crashed / "payload").mkdir(parents=True)
    (crashed / "manifest.json").write_text("{half a manif")
    (tmp_path / "CURRENT.tmp-cafe").write_text("snapshot-")
    assert read(tmp_path).offsets == OFFSETS
    write_snapshot(index, tmp_path, offsets={0: 1}, topic=TOPIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", live(tmp_path).name]
    assert read(tmp_path).offsets == {0: 1}


def test_crash_while_writing_keeps_the_previous_snapshot(
    index: VectorIndex, rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    before = sorted(p.name for p in tmp_path.iterdir())
    index.add(["late"], ["p"], unit_vectors(rng, 1))

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(snapshot_module.os, "rename", crash)
    with pytest.raises(OSError, match="disk full"):
        write_snapshot(index, tmp_path, offsets={0: 999}, topic=TOPIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    loaded = read(tmp_path)
    assert loaded.offsets == OFFSETS and "late" not in loaded.index


def test_crash_before_publishing_serves_the_previous_snapshot(
    index: VectorIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the new snapshot directory exists but before CURRENT names it."""
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)

    real_replace = snapshot_module.os.replace

    def crash(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "CURRENT":  # only the publishing step: backends may use os.replace
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(snapshot_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_snapshot(index, tmp_path, offsets={0: 999}, topic=TOPIC)
    monkeypatch.undo()
    assert read(tmp_path).offsets == OFFSETS
    write_snapshot(index, tmp_path, offsets={0: 7}, topic=TOPIC)
    assert read(tmp_path).offsets == {0: 7}
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("offsets", [{0: -1}, {-1: 3}, {"0": 3}, {0: 1.5}])
def test_invalid_offsets_are_refused(index: VectorIndex, tmp_path: Path, offsets: dict) -> None:
    with pytest.raises(FacestreamError):
        write_snapshot(index, tmp_path, offsets=offsets, topic=TOPIC)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_each_chunk_of_a_large_file_is_checked(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator, tmp_path: Path
) -> None:
    monkeypatch.setattr(snapshot_module, "_DIGEST_CHUNK", 1 << 16)
    index = create("faiss-flat", dim=DIM, model_id=MODEL)
    index.add(*gallery(rng, 1500))  # 1500 x 32 float32: two chunks and a bit
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    vectors = live(tmp_path) / "payload" / "default" / "vectors.npy"
    manifest = read_snapshot(tmp_path, expected_model_id=MODEL, expected_topic=TOPIC).manifest
    assert len(manifest.files["default/vectors.npy"].crc32) == 3
    data = bytearray(vectors.read_bytes())
    data[(1 << 16) + 100] ^= 0x01  # one bit, in the second chunk
    vectors.write_bytes(bytes(data))
    assert "chunk 1" in unusable(tmp_path, UnusableReason.CORRUPT).detail


def test_one_index_per_gallery_on_two_backends_round_trips(rng: np.random.Generator, tmp_path: Path) -> None:
    flat = create("faiss-flat", dim=DIM, model_id=MODEL)
    flat.add(*gallery(rng, 60))
    ivfpq = create("faiss-ivfpq", dim=DIM, model_id="other-pack/r@2", nlist=4, m=8, nbits=4, train_min=40)
    faces, persons, vectors = gallery(rng, 120)
    ivfpq.add([f"b-{f}" for f in faces], persons, vectors)  # the same person ids, other people
    write_snapshot(
        {"default": flat, "branch-b": ivfpq},
        tmp_path,
        offsets=OFFSETS,
        topic=TOPIC,
        generations={"branch-b": 3},
    )
    loaded = read_snapshot(
        tmp_path, expected_model_id=MODEL, expected_topic=TOPIC, expected_backend="faiss-flat"
    )
    assert sorted(loaded.indexes) == ["branch-b", "default"]
    assert loaded.generations == {"default": 0, "branch-b": 3}
    assert loaded.indexes["branch-b"].backend == "faiss-ivfpq" and len(loaded.indexes["branch-b"]) == 120
    assert loaded.indexes["branch-b"].model_id == "other-pack/r@2"
    assert loaded.index is loaded.indexes["default"] and len(loaded.index) == 60
    assert loaded.manifest.size == 180
    queries = unit_vectors(rng, 3)
    assert loaded.indexes["branch-b"].search(queries, 5) == ivfpq.search(queries, 5)
    assert loaded.index.search(queries, 5) == flat.search(queries, 5)
    edit_gallery(tmp_path, "branch-b", size=119)  # each gallery is checked against its entry
    assert "branch-b" in unusable(tmp_path, UnusableReason.CORRUPT).detail


def test_a_snapshot_of_the_format_before_galleries_is_incompatible(
    index: VectorIndex, tmp_path: Path
) -> None:
    write_snapshot(index, tmp_path, offsets=OFFSETS, topic=TOPIC)
    edit_manifest(tmp_path, format_version=2)
    unusable(tmp_path, UnusableReason.INCOMPATIBLE)


def test_a_gallery_name_is_checked(index: VectorIndex, tmp_path: Path) -> None:
    with pytest.raises(FacestreamError):
        write_snapshot({"../x": index}, tmp_path, offsets=OFFSETS, topic=TOPIC)
