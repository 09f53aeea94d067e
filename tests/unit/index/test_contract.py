"""The contract every registered VectorIndex backend must pass (parametrised in conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from index import IndexCorrupt, VectorIndex, backend_class, rank_persons, search_persons
from tests.unit.index.conftest import MakeIndex
from tests.unit.index.factories import DIM, MODEL, brute_force, gallery, unit_vectors


def filled(make_index: MakeIndex, rng: np.random.Generator, n: int = 200) -> tuple:
    index = make_index()
    faces, persons, vectors = gallery(rng, n)
    index.add(faces, persons, vectors)
    return index, faces, persons, vectors


def ids(results: list) -> list[list[str]]:
    return [[hit.face_id for hit in hits] for hits in results]


def test_is_a_vector_index(make_index: MakeIndex, backend: str) -> None:
    index = make_index()
    assert isinstance(index, VectorIndex)
    assert index.backend == backend
    assert (index.dim, index.model_id, len(index)) == (DIM, MODEL, 0)


def test_search_matches_brute_force(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, faces, persons, vectors = filled(make_index, rng)
    queries = unit_vectors(rng, 12)
    results = index.search(queries, 10)
    rows, similarities = brute_force(vectors, queries, 10)
    expected = [[faces[i] for i in row] for row in rows]
    if getattr(index, "exact", True):
        assert ids(results) == expected
        got = np.array([[hit.similarity for hit in hits] for hits in results])
        np.testing.assert_allclose(got, similarities, atol=1e-5)
    else:  # approximate backends declare `exact = False` and owe a decent recall
        recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(ids(results), expected, strict=True)])
        assert recall >= 0.9
    for hits in results:
        assert all(hit.person_id == persons[faces.index(hit.face_id)] for hit in hits)
        assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
        assert all(isinstance(h.similarity, float) and -1.0 <= h.similarity <= 1.0 for h in hits)


def test_self_search_finds_itself_with_similarity_one(
    make_index: MakeIndex, rng: np.random.Generator
) -> None:
    index, faces, _, vectors = filled(make_index, rng, 50)
    results = index.search(vectors, 1)
    assert ids(results) == [[face] for face in faces]
    assert all(hits[0].similarity == pytest.approx(1.0, abs=1e-5) for hits in results)


def test_inputs_are_normalised(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index = make_index()
    faces, persons, vectors = gallery(rng, 30)
    scales = rng.uniform(0.1, 10.0, (30, 1))
    index.add(faces, persons, (vectors * scales).astype(np.float64))
    queries = unit_vectors(rng, 3)
    results = index.search(queries * 7.5, 5)
    rows, similarities = brute_force(vectors, queries, 5)
    assert ids(results) == [[faces[i] for i in row] for row in rows]
    got = np.array([[hit.similarity for hit in hits] for hits in results])
    np.testing.assert_allclose(got, similarities, atol=1e-5)


def test_upsert_replaces_and_never_duplicates(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, faces, _, _ = filled(make_index, rng, 20)
    replacement = unit_vectors(rng, 1)
    index.add([faces[3]], ["someone-else"], replacement)
    assert len(index) == 20
    hits = index.search(replacement, 20)[0]
    assert [h.face_id for h in hits].count(faces[3]) == 1
    assert (hits[0].face_id, hits[0].person_id) == (faces[3], "someone-else")
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_duplicate_ids_within_one_batch_keep_the_last(
    make_index: MakeIndex, rng: np.random.Generator
) -> None:
    index = make_index()
    vectors = unit_vectors(rng, 3)
    index.add(["a", "b", "a"], ["p1", "p2", "p3"], vectors)
    assert len(index) == 2
    hit = index.search(vectors[2:], 1)[0][0]
    assert (hit.face_id, hit.person_id) == ("a", "p3")
    assert index.stats().persons == 2


def test_remove(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, faces, _, vectors = filled(make_index, rng, 30)
    assert faces[0] in index
    assert index.remove([faces[0], faces[1], "never-added", faces[0]]) == 2
    assert len(index) == 28
    assert faces[0] not in index and faces[2] in index
    found = {hit.face_id for hits in index.search(vectors, 30) for hit in hits}
    assert found == set(faces[2:])
    assert index.remove([faces[0]]) == 0
    assert index.remove([]) == 0


def test_remove_person_erases_every_face(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, _, persons, vectors = filled(make_index, rng, 30)
    assert index.remove_person(persons[0]) == 3
    assert index.remove_person("nobody") == 0
    assert len(index) == 27
    assert index.stats().persons == 9
    found = {hit.person_id for hits in index.search(vectors, 30) for hit in hits}
    assert persons[0] not in found


def test_readding_a_removed_face(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, faces, persons, vectors = filled(make_index, rng, 10)
    index.remove([faces[4]])
    index.add([faces[4]], [persons[4]], vectors[4:5])
    assert len(index) == 10
    assert index.search(vectors[4:5], 1)[0][0].face_id == faces[4]


def test_other_model_is_refused(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, faces, persons, vectors = filled(make_index, rng, 10)
    calls = [
        lambda: index.add(["x"], ["p"], unit_vectors(rng, 1), model_id="other@2"),
        lambda: index.search(unit_vectors(rng, 1), 3, model_id="other@2"),
        lambda: index.rebuild(faces, persons, vectors, model_id="other@2"),
        lambda: index.add(["x"], ["p"], unit_vectors(rng, 1, DIM * 2)),
        lambda: index.search(unit_vectors(rng, 1, DIM - 1), 3),
    ]
    for call in calls:
        with pytest.raises(FacestreamError) as caught:
            call()
        assert caught.value.code is ErrorCode.MODEL_MISMATCH
    assert len(index) == 10 and "x" not in index
    index.add(["x"], ["p"], unit_vectors(rng, 1), model_id=MODEL)
    assert len(index.search(unit_vectors(rng, 1), 3, model_id=MODEL)[0]) == 3


@pytest.mark.parametrize(
    "face_ids, person_ids, vectors",
    [
        (["a", "b"], ["p"], np.eye(2, DIM)),
        (["a"], ["p"], np.zeros((1, DIM))),
        (["a"], ["p"], np.full((1, DIM), np.nan)),
        (["a"], ["p"], np.ones(DIM)),
        (["a"], [""], np.ones((1, DIM))),
        ("a", ["p"], np.ones((1, DIM))),
        ([1], ["p"], np.ones((1, DIM))),
        (["a"], ["p"], np.array([["x"] * DIM])),
    ],
)
def test_invalid_input_is_refused(
    make_index: MakeIndex, face_ids: object, person_ids: object, vectors: np.ndarray
) -> None:
    index = make_index()
    with pytest.raises(FacestreamError) as caught:
        index.add(face_ids, person_ids, vectors)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert len(index) == 0


@pytest.mark.parametrize("k", [0, -1, 2.5, True, None])
def test_invalid_k_is_refused(make_index: MakeIndex, rng: np.random.Generator, k: object) -> None:
    index, *_ = filled(make_index, rng, 5)
    with pytest.raises(FacestreamError) as caught:
        index.search(unit_vectors(rng, 1), k)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_PARAMETER


def test_empty_index_answers_empty(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index = make_index()
    assert index.search(unit_vectors(rng, 3), 5) == [[], [], []]
    assert index.search(np.empty((0, DIM), np.float32), 5) == []
    assert search_persons(index, unit_vectors(rng, 2), 3) == [[], []]
    index.add([], [], np.empty((0, DIM), np.float32))
    assert len(index) == 0


def test_k_larger_than_size(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, faces, *_ = filled(make_index, rng, 7)
    results = index.search(unit_vectors(rng, 2), 100)
    assert [sorted(row) for row in ids(results)] == [sorted(faces)] * 2
    index.remove(faces[:5])
    assert [len(hits) for hits in index.search(unit_vectors(rng, 2), 100)] == [2, 2]


def test_save_load_roundtrip(
    make_index: MakeIndex, backend: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    index, faces, _, vectors = filled(make_index, rng, 60)
    index.remove(faces[:4])
    queries = unit_vectors(rng, 5)
    index.save(tmp_path / "saved")
    loaded = backend_class(backend).load(tmp_path / "saved")
    assert isinstance(loaded, VectorIndex)
    assert loaded.stats() == index.stats()
    assert faces[10] in loaded and faces[0] not in loaded
    assert loaded.search(queries, 8) == index.search(queries, 8)
    # the loaded index keeps working: upsert of a loaded face, then a brand new face
    loaded.add([faces[10], "new"], ["moved", "p-new"], unit_vectors(rng, 2))
    assert len(loaded) == 57 and loaded.stats().persons == index.stats().persons + 2
    assert {h.face_id for h in loaded.search(vectors, 57)[0]} == set(faces[4:]) | {"new"}


def test_save_load_empty(make_index: MakeIndex, backend: str, tmp_path: Path) -> None:
    make_index().save(tmp_path)
    loaded = backend_class(backend).load(tmp_path)
    assert len(loaded) == 0 and loaded.model_id == MODEL and loaded.dim == DIM


def test_load_garbage_raises_index_corrupt(
    make_index: MakeIndex, backend: str, rng: np.random.Generator, tmp_path: Path
) -> None:
    with pytest.raises(IndexCorrupt):
        backend_class(backend).load(tmp_path / "nothing-here")
    index, *_ = filled(make_index, rng, 10)
    index.save(tmp_path)
    for path in tmp_path.rglob("*"):  # embedded stores (qdrant, milvus) save directories
        if path.is_file():
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IndexCorrupt):
        backend_class(backend).load(tmp_path)


def test_rebuild_replaces_content(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index, *_ = filled(make_index, rng, 40)
    faces, persons, vectors = gallery(rng, 12, faces_per_person=4)
    faces = [f"rebuilt-{f}" for f in faces]
    index.rebuild(faces, persons, vectors)
    assert len(index) == 12 and index.stats().persons == 3
    assert ids(index.search(vectors, 1)) == [[f] for f in faces]
    with pytest.raises(FacestreamError):
        index.rebuild(["z"], ["p"], np.zeros((1, DIM)))
    assert len(index) == 12
    index.rebuild([], [], np.empty((0, DIM)))
    assert len(index) == 0


def test_stats(make_index: MakeIndex, backend: str, rng: np.random.Generator) -> None:
    empty = make_index().stats()
    assert (empty.backend, empty.size, empty.dim, empty.model_id, empty.persons) == (
        backend,
        0,
        DIM,
        MODEL,
        0,
    )
    index, *_ = filled(make_index, rng, 30)
    stats = index.stats()
    assert (stats.size, stats.persons) == (30, 10)
    assert stats.memory_bytes >= 30 * DIM * 4 > empty.memory_bytes


def test_search_persons_is_exact_per_person(make_index: MakeIndex, rng: np.random.Generator) -> None:
    index = make_index()
    faces, persons, vectors = gallery(rng, 120, faces_per_person=20)
    index.add(faces, persons, vectors)
    queries = np.vstack([vectors[:2], unit_vectors(rng, 4)])
    answers = search_persons(index, queries, 5)
    similarities = queries @ vectors.T
    for answer, row in zip(answers, similarities, strict=True):
        best: dict[str, float] = {}
        for person, similarity in zip(persons, row, strict=True):
            best[person] = max(best.get(person, -2.0), float(similarity))
        expected = sorted(best, key=lambda p: -best[p])[:5]
        assert [m.person_id for m in answer] == expected
        assert [m.similarity for m in answer] == pytest.approx([best[p] for p in expected], abs=1e-5)
    assert answers[0][0].face_id == faces[0]
    assert [m.person_id for m in search_persons(index, queries[:1], 1)[0]] == [persons[0]]
    assert search_persons(index, queries[:1], 100)[0] == rank_persons(index.search(queries[:1], 120)[0], 100)
