"""The flat backend's own machinery: blocked BLAS top-k, copy-on-write freezing, mapped loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import blas_topk, create, faiss_flat
from index._topk_heap import push_block, sort_heaps
from index.faiss_flat import VECTORS_FILE, FaissFlatIndex
from index.labelled import LabelledIndex
from tests.unit.index.factories import MODEL, gallery, unit_vectors


@pytest.mark.parametrize(("queries", "size", "k"), [(1, 50, 1), (3, 257, 5), (40, 1000, 17), (7, 9, 9)])
def test_top_k_matches_a_full_sort(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator, queries: int, size: int, k: int
) -> None:
    monkeypatch.setattr(blas_topk, "_MIN_BLOCK", 64)
    monkeypatch.setattr(blas_topk, "_BLOCK_SCORES", 64 * queries)  # several blocks, a partial last one
    rows, probes = unit_vectors(rng, size), unit_vectors(rng, queries)
    scores, found = blas_topk.top_k(probes, rows, k)
    sims = probes @ rows.T
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("queries", [1, 3])
def test_ties_at_the_cut_keep_the_lower_rows_across_blocks(
    monkeypatch: pytest.MonkeyPatch, queries: int
) -> None:
    monkeypatch.setattr(blas_topk, "_MIN_BLOCK", 64)
    monkeypatch.setattr(blas_topk, "_BLOCK_SCORES", 64 * queries)
    rows = np.zeros((300, 4), dtype=np.float32)
    rows[:, 1] = 1.0  # every row scores 0 against the probe ...
    best, tied = [250], [3, 70, 130, 200, 299]  # ... but these, in three blocks
    rows[best] = [1.0, 0.0, 0.0, 0.0]
    rows[tied] = [0.6, 0.8, 0.0, 0.0]
    probes = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32), (queries, 1))
    scores, found = blas_topk.top_k(probes, rows, 4)
    np.testing.assert_array_equal(found, [[250, 3, 70, 130]] * queries)
    np.testing.assert_allclose(scores, [[1.0, 0.6, 0.6, 0.6]] * queries, rtol=1e-6)


def test_the_heaps_refuse_buffers_they_would_misread() -> None:
    block = np.zeros((2, 8), dtype=np.float32)
    scores, rows = np.full((2, 3), -np.inf, dtype=np.float32), np.full((2, 3), -1, dtype=np.int64)
    push_block(block, 2, 0, scores, rows)  # as given: fine
    with pytest.raises(TypeError, match="block"):
        push_block(block.astype(np.float64), 2, 0, scores, rows)
    with pytest.raises(TypeError, match="heap rows"):
        push_block(block, 2, 0, scores, rows.astype(np.int32))
    with pytest.raises(ValueError, match="contiguous"):
        push_block(np.zeros((8, 2), dtype=np.float32).T, 2, 0, scores, rows)
    with pytest.raises(ValueError, match="split into 3 rows"):
        push_block(block, 3, 0, np.zeros((3, 3), dtype=np.float32), np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="equal heaps"):
        push_block(block, 2, 0, scores, np.full((2, 2), -1, dtype=np.int64))
    with pytest.raises(ValueError, match="first"):
        push_block(block, 2, -1, scores, rows)
    with pytest.raises(ValueError, match="read-only"):
        sort_heaps(2, _read_only(scores), rows)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


def _state(index: LabelledIndex, probes: np.ndarray) -> list[list[tuple[str, str, float]]]:
    return [
        [(h.face_id, h.person_id, round(h.similarity, 5)) for h in hits] for hits in index.search(probes, 10)
    ]


def test_a_frozen_view_saves_the_state_it_was_taken_in(rng: np.random.Generator, tmp_path: Path) -> None:
    index = create("faiss-flat", dim=32, model_id=MODEL)
    assert isinstance(index, FaissFlatIndex)
    faces, persons, vectors = gallery(rng, 60)
    index.add(faces, persons, vectors)
    probes = vectors[:5]
    before = _state(index, probes)
    frozen = index.frozen()
    assert frozen is not None
    # Every kind of change after the freeze: removal (moves rows), upsert, append, erasure.
    index.remove(faces[:3])
    index.add([faces[10]], ["someone-else"], unit_vectors(rng, 1))
    index.add(["new-face"], ["new-person"], unit_vectors(rng, 1))
    index.remove_person(persons[20])
    frozen.save(tmp_path / "frozen")
    assert _state(FaissFlatIndex.load(tmp_path / "frozen"), probes) == before
    assert len(frozen) == 60 and frozen.stats().persons == 20
    assert _state(index, probes) != before


def test_appends_after_a_freeze_do_not_copy_the_rows(rng: np.random.Generator) -> None:
    index = FaissFlatIndex(dim=32, model_id=MODEL)
    faces, persons, vectors = gallery(rng, 30)
    index.add(faces[:20], persons[:20], vectors[:20])
    rows = index._rows
    assert index.frozen() is not None
    index.add(faces[20:], persons[20:], vectors[20:])
    assert index._rows is rows  # room was left: appending wrote past the frozen rows
    index.remove(faces[:1])
    assert index._rows is not rows  # overwriting a frozen row copied first


def test_a_loaded_index_maps_its_file_and_never_writes_it(rng: np.random.Generator, tmp_path: Path) -> None:
    index = FaissFlatIndex(dim=32, model_id=MODEL)
    faces, persons, vectors = gallery(rng, 40)
    index.add(faces, persons, vectors)
    index.save(tmp_path / "saved")
    on_disk = (tmp_path / "saved" / VECTORS_FILE).read_bytes()
    loaded = FaissFlatIndex.load(tmp_path / "saved")
    assert isinstance(loaded._rows, np.memmap)
    loaded.remove(faces[:5])
    loaded.add(["x"], ["y"], unit_vectors(rng, 1))
    assert (tmp_path / "saved" / VECTORS_FILE).read_bytes() == on_disk
    assert len(loaded) == 36 and faces[0] not in loaded
    hits = loaded.search(vectors[6:7], 1)[0]
    assert hits[0].face_id == faces[6]


def test_a_loaded_index_erases_a_person_it_never_indexed_by_person(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    index = FaissFlatIndex(dim=32, model_id=MODEL)
    faces, persons, vectors = gallery(rng, 12)
    index.add(faces, persons, vectors)
    index.save(tmp_path / "saved")
    loaded = FaissFlatIndex.load(tmp_path / "saved")
    assert loaded.remove_person(persons[0]) == 3
    assert loaded.stats().persons == 3


def test_settling_goes_on_from_where_it_stopped_and_restarts_with_a_new_array(
    rng: np.random.Generator,
) -> None:
    index = FaissFlatIndex(dim=512, model_id=MODEL)  # 2 KiB rows: 20k rows fill a mapped array
    faces, persons, vectors = gallery(rng, 40_000, dim=512)
    index.reserve(30_000)
    index.add(faces[:20_000], persons[:20_000], vectors[:20_000])
    first = index.settle()
    assert 0 < first <= 20_000 * 2048
    index.add(faces[20_000:30_000], persons[20_000:30_000], vectors[20_000:30_000])
    assert first < index.settle() <= 30_000 * 2048
    assert index.search(vectors[7:8], 1)[0][0].face_id == faces[7]
    index.add(faces[30_000:], persons[30_000:], vectors[30_000:])  # grows: a fresh array
    assert index._settled == 0
    assert 30_000 * 2048 < index.settle() <= 40_000 * 2048
    assert index.search(vectors[-2:-1], 1)[0][0].face_id == faces[-2]


def test_a_large_index_stays_in_small_pages(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faiss_flat, "_SETTLE_MAX_BYTES", 30 << 20)
    index = FaissFlatIndex(dim=512, model_id=MODEL)
    faces, persons, vectors = gallery(rng, 20_000, dim=512)  # 40 MB of rows
    index.add(faces, persons, vectors)
    assert index.settle() == 0
