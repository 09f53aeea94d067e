"""Merging shard answers equals what one replica holding every partition answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.identification import merge
from index import registry
from index.base import search_persons
from schemas.events import Candidate, FaceSearched


def _answer(
    shard: str, partitions: list[int], matches: list[tuple[str, float]], size: int, *, top_k: int = 5
) -> FaceSearched:
    return FaceSearched(
        request_id="r",
        threshold=0.5,
        top_k=top_k,
        candidates=[Candidate(person_id=p, similarity=s, face_id=f"{p}-f") for p, s in matches],
        model="m",
        replica_id=shard,
        gallery_size=size,
        shard=shard,
        partitions=partitions,
    )


def test_best_similarity_per_person_across_shards() -> None:
    merged = merge(
        [
            _answer("a", [0], [("alice", 0.61), ("bob", 0.40)], 10, top_k=2),
            _answer("b", [1], [("bob", 0.72), ("carol", 0.30)], 7, top_k=2),
        ]
    )
    assert [(c.person_id, c.similarity) for c in merged.candidates] == [("bob", 0.72), ("alice", 0.61)]
    assert merged.person_id == "bob" and not merged.unknown
    assert merged.gallery_size == 17 and merged.shards == ["a", "b"]


def test_below_threshold_everywhere_is_unknown() -> None:
    merged = merge([_answer("a", [0], [("alice", 0.2)], 1), _answer("b", [1], [], 0)])
    assert merged.unknown and merged.person_id is None and merged.similarity == 0.2


def test_duplicate_groups_over_the_same_partitions_count_the_gallery_once() -> None:
    merged = merge(
        [_answer("blue", [0, 1], [("alice", 0.8)], 5), _answer("green", [0, 1], [("alice", 0.8)], 5)]
    )
    assert merged.gallery_size == 5 and [c.person_id for c in merged.candidates] == ["alice"]


def test_two_shards_equal_one_index_on_a_random_gallery() -> None:
    rng = np.random.default_rng(3)
    dim, persons = 32, [f"p{i}" for i in range(40)]
    face_ids = [f"f{i}" for i in range(200)]
    owners = [persons[i % len(persons)] for i in range(200)]
    vectors = rng.normal(size=(200, dim)).astype(np.float32)
    whole = registry.create("faiss-flat", dim=dim, model_id="m")
    whole.add(face_ids, owners, vectors)
    shards = [registry.create("faiss-flat", dim=dim, model_id="m") for _ in range(2)]
    for i, shard in enumerate(shards):
        part = [j for j in range(200) if j % 2 == i]
        shard.add([face_ids[j] for j in part], [owners[j] for j in part], vectors[part])
    queries = rng.normal(size=(20, dim)).astype(np.float32)
    expected = search_persons(whole, queries, 5)
    per_shard = [search_persons(s, queries, 5) for s in shards]
    for q in range(len(queries)):
        answers = [
            _answer(f"s{i}", [i], [(m.person_id, m.similarity) for m in per_shard[i][q]], len(shards[i]))
            for i in range(2)
        ]
        merged = merge(answers)
        assert [c.person_id for c in merged.candidates] == [m.person_id for m in expected[q]]
        np.testing.assert_allclose(
            [c.similarity for c in merged.candidates], [m.similarity for m in expected[q]], rtol=1e-6
        )


def test_the_threshold_the_request_carried_decides() -> None:
    answer = _answer("a", [0], [("alice", 0.45)], 1)
    strict = answer.model_copy(update={"threshold": 0.46})
    lenient = answer.model_copy(update={"threshold": 0.44})
    assert merge([strict]).unknown and merge([strict]).threshold == 0.46
    assert merge([lenient]).person_id == "alice" and not merge([lenient]).unknown


def test_no_answer_is_an_error_not_an_unknown() -> None:
    with pytest.raises(ValueError):
        merge([])
