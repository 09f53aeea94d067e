"""The bulk fold of the rebuild folds exactly as the per-record fold of the live tail, with
headers as lists (aiokafka's records) and packed (the rebuild's native reader) alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core import embedding_records
from core.errors import FacestreamError
from schemas.events import ModelInfo
from streams.bulk_fold import BulkFold, Scratch, as_batch, fold_bulk, route
from streams.log_fold import FoldedBatch, PendingChanges
from tests.unit.streams.galleries_factories import MODEL, fact, record, tombstone, unit
from tests.unit.streams.packing import packed_headers

OTHER = ModelInfo(pack="other", recognizer="synthetic", version="2", dim=8)


def expect(gallery: str) -> tuple[str, int] | None:
    return {"default": (MODEL.id, MODEL.dim), "branch-b": (MODEL.id, MODEL.dim)}.get(gallery)


@pytest.fixture(params=["headers as lists", "headers packed"])
def fold(request: pytest.FixtureRequest) -> Callable[[list[Any]], BulkFold]:
    """``fold_bulk`` of aiokafka-shaped records, their headers as lists or packed."""

    def folded(records: list[Any]) -> BulkFold:
        batch = as_batch(records)
        return fold_bulk(packed_headers(batch) if request.param == "headers packed" else batch, expect)

    return folded


def _one_by_one(records: list) -> tuple[FoldedBatch, int]:
    pending, errors = PendingChanges(), 0
    for r in records:
        try:
            pending.fold(r, expect=expect)
        except FacestreamError:
            errors += 1
    return pending.folded(), errors


def _as_map(batch: FoldedBatch) -> dict[str, dict[str, tuple[str, list[float]]]]:
    return {
        gallery: {
            f: (p, np.round(v, 6).tolist()) for f, p, v in zip(u.faces, u.persons, u.vectors, strict=True)
        }
        for gallery, u in batch.upserts.items()
    }


def test_bulk_fold_matches_the_per_record_fold(fold: Callable[[list[Any]], BulkFold]) -> None:
    rng = np.random.default_rng(7)
    nan = unit(rng)
    nan[3] = np.nan
    records = [
        record(0, fact("f1", "p1", unit(rng))),
        record(1, fact("f2", "p1", unit(rng), gallery="branch-b")),  # the same person id, elsewhere
        record(2, fact("f3", "p2", unit(rng)), binary=False),  # JSON, from before the binary format
        record(3, fact("f4", "p3", unit(rng)), headers=False),  # binary without headers: none needed
        record(13, fact("f9", "p9", unit(rng)), first_format=True),  # FSE1: its ids in its headers
        record(14, fact("f10", "p9", unit(rng), gallery="branch-b"), first_format=True),
        record(15, fact("f11", "p9", unit(rng)), first_format=True, headers=False),  # decoded whole
        tombstone(4, "f1"),
        record(5, fact("f1", "p9", unit(rng))),  # back after its tombstone: the last write wins
        record(6, fact("f5", "p5", nan)),  # poison: dead-lettered, supersedes nothing
        record(7, fact("f2", "p1", unit(rng), gallery="branch-b")),  # replaced in its gallery
        record(8, fact("f6", "p6", unit(rng), gallery="elsewhere")),  # a gallery not held: skipped
        record(9, fact("f7", "p7", unit(rng, OTHER.dim), model=OTHER)),  # another model: poison
        tombstone(10, "f3"),
        tombstone(11, "gone"),
        record(12, fact("f8", "p8", unit(rng), gallery="branch-b"), binary=False),
    ]
    bulk = fold(records)
    single, errors = _one_by_one(records)
    assert _as_map(bulk.batch) == _as_map(single)
    assert sorted(bulk.batch.removals) == sorted(single.removals) == ["f3", "gone"]
    assert len(bulk.errors) == errors == 2 and bulk.skipped == 1
    assert sorted(_as_map(bulk.batch)["branch-b"]) == ["f10", "f2", "f8"]
    assert {"f4", "f9", "f11"} <= set(_as_map(bulk.batch)["default"])
    assert _as_map(bulk.batch)["default"]["f1"][0] == "p9"


@pytest.mark.parametrize(
    ("binary", "first_format"),
    [(True, False), (True, True), (False, False)],
    ids=["binary", "first-binary-format", "json-before-the-binary-format"],
)
def test_a_batch_of_one_gallery_folds_whole(
    binary: bool, first_format: bool, fold: Callable[[list[Any]], BulkFold]
) -> None:
    rng = np.random.default_rng(8)
    vectors = [unit(rng) for _ in range(50)]
    records = [
        record(i, fact(f"f{i % 40}", f"p{i}", v), binary=binary, first_format=first_format)
        for i, v in enumerate(vectors)
    ]
    bulk = fold(records)
    single, _ = _one_by_one(records)
    assert _as_map(bulk.batch) == _as_map(single)
    assert len(bulk.batch.upserts["default"]) == 40


def test_a_batch_with_malformed_ids_folds_record_by_record(fold: Callable[[list[Any]], BulkFold]) -> None:
    rng = np.random.default_rng(9)
    records = [record(i, fact(f"f{i}", f"p{i}", unit(rng))) for i in range(10)]
    value = records[4].value
    assert value is not None
    records[4] = dataclasses.replace(records[4], value=value.replace(b"p4\x00", b"p4\x01", 1))
    bulk = fold(records)
    assert [code for _, code in ((p, e.code.value) for p, e in bulk.errors)] == ["invalid_message"]
    assert bulk.errors[0][0] == 4 and sorted(_as_map(bulk.batch)["default"]) == sorted(
        f"f{i}" for i in range(10) if i != 4
    )


@pytest.mark.parametrize("key", [b"f\x00x", b"f\xff", b"f\xc3\xa9"], ids=["nul", "not-utf8", "utf8"])
def test_a_key_that_cannot_be_a_face_id_is_a_dead_letter_and_shifts_no_other(
    key: bytes, fold: Callable[[list[Any]], BulkFold]
) -> None:
    rng = np.random.default_rng(11)
    records = [record(i, fact(f"f{i}", f"p{i}", unit(rng))) for i in range(7)]
    records[2] = dataclasses.replace(records[2], key=key)
    records[4] = dataclasses.replace(tombstone(4, "x"), key=key)
    records[5] = dataclasses.replace(record(5, fact("f5", "p5", unit(rng)), binary=False), key=key)  # JSON
    bulk = fold(records)
    single, errors = _one_by_one(records)
    assert _as_map(bulk.batch) == _as_map(single)
    faces = _as_map(bulk.batch)["default"]
    # Each face keeps its own vector: the bulk fold joins keys with NULs.
    alone = {i: _as_map(_one_by_one([records[i]])[0])["default"][f"f{i}"][1] for i in (3, 6)}
    assert all(faces[f"f{i}"][1] == vector for i, vector in alone.items())
    if key == b"f\xc3\xa9":  # a face id like any other
        assert bulk.errors == [] and errors == 0
    else:
        assert sorted(faces) == ["f0", "f1", "f3", "f6"] and errors == 3
        codes = [(p, e.code.value) for p, e in bulk.errors]
        assert codes == [(2, "invalid_message"), (4, "invalid_message"), (5, "invalid_message")]


def test_an_id_holding_a_nul_in_a_value_or_header_is_a_dead_letter(
    fold: Callable[[list[Any]], BulkFold],
) -> None:
    # Ids are joined with NULs in bulk (the fold's faces, a reader's parts): none may hold one.
    rng = np.random.default_rng(13)
    records = [record(i, fact(f"f{i}", f"p{i}", unit(rng))) for i in range(4)]
    records[1] = dataclasses.replace(record(1, fact("a\x00b", "p1", unit(rng)), binary=False), key=b"k1")
    records[2] = record(2, fact("f2", "p2", unit(rng)), first_format=True)
    records[2] = dataclasses.replace(
        records[2], headers=[(k, b"p\x002" if k == "person_id" else v) for k, v in records[2].headers]
    )
    bulk = fold(records)
    single, errors = _one_by_one(records)
    assert _as_map(bulk.batch) == _as_map(single) and sorted(_as_map(single)["default"]) == ["f0", "f3"]
    assert [(p, e.code.value) for p, e in bulk.errors] == [(1, "invalid_message"), (2, "invalid_message")]
    assert errors == 2


def test_a_header_that_is_not_utf8_is_a_dead_letter(fold: Callable[[list[Any]], BulkFold]) -> None:
    rng = np.random.default_rng(12)
    records = [record(i, fact(f"f{i}", f"p{i}", unit(rng)), first_format=True) for i in range(3)]
    headers = [(k, b"p\xff" if k == "person_id" else v) for k, v in records[1].headers]
    records[1] = dataclasses.replace(records[1], headers=headers)
    bulk = fold(records)
    single, errors = _one_by_one(records)
    assert _as_map(bulk.batch) == _as_map(single) and sorted(_as_map(single)["default"]) == ["f0", "f2"]
    assert [(p, e.code.value) for p, e in bulk.errors] == [(1, "invalid_message")] and errors == 1


def test_records_of_many_galleries_and_two_models_in_one_batch(fold: Callable[[list[Any]], BulkFold]) -> None:
    rng = np.random.default_rng(10)
    records = [
        record(i, fact(f"f{i}", "p", unit(rng), gallery=("default", "branch-b", "elsewhere")[i % 3]))
        for i in range(30)
    ] + [record(30, fact("g", "p", unit(rng, OTHER.dim), gallery="branch-b", model=OTHER))]
    bulk = fold(records)
    single, errors = _one_by_one(records)
    assert _as_map(bulk.batch) == _as_map(single)
    assert len(bulk.errors) == errors == 1 and bulk.skipped == 10


def _batches(n: int, fail: bool = False):  # type: ignore[no-untyped-def]
    from streams.bulk_fold import RecordBatch
    from streams.packed_records import pack_values

    for i in range(n):
        yield RecordBatch([b"k%d" % i], pack_values([b"v"]), [None], [0], [i])
    if fail:
        raise RuntimeError("broker gone")


def test_read_ahead_hands_over_every_batch_in_order_then_its_failure() -> None:
    import time

    from streams.bulk_log import ReadAhead

    assert [b.offsets[0] for b in ReadAhead(_batches(5))] == [0, 1, 2, 3, 4]
    ahead = ReadAhead(_batches(5), depth=8)
    time.sleep(0.2)  # let it read ahead
    joined = ahead.next_many(3)
    assert joined is not None and joined.offsets[:3] == [0, 1, 2]
    rest: list[int] = []
    while (batch := ahead.next_many(100)) is not None:
        rest += batch.offsets
    assert joined.offsets + rest == [0, 1, 2, 3, 4]
    failing = ReadAhead(_batches(2, fail=True))
    with pytest.raises(RuntimeError, match="broker gone"):
        while failing.next_many(10) is not None:
            pass


def test_a_batch_names_its_galleries_by_ids_and_older_records_by_header() -> None:
    from streams.bulk_fold import as_batch, route

    rng = np.random.default_rng(11)
    batch = as_batch(
        [
            record(0, fact("f1", "p", unit(rng), gallery="branch-b"), headers=False),  # ids only
            record(1, fact("f2", "p", unit(rng), gallery="branch-c"), first_format=True),  # header
            record(2, fact("f3", "p", unit(rng)), binary=False),
            tombstone(3, "f1"),
        ]
    )
    assert route(batch).named(batch) == {"branch-b", "branch-c"}


def test_the_bulk_path_itself_routes_and_gathers_binary_records() -> None:
    """Not the one-by-one path it falls back to: its routing and its gathered vectors."""
    rng = np.random.default_rng(11)
    galleries = ("default", "b")
    records = [record(i, fact(f"f{i}", f"p{i}", unit(rng), gallery=galleries[i % 2])) for i in range(9)]
    records.insert(3, tombstone(3, "f0"))
    batch = as_batch(records)
    routed = route(batch)
    assert routed.positions.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert routed.persons == [f"p{i}" for i in range(9)] and routed.galleries == [*galleries * 4, "default"]
    gathered = Scratch().gather(batch.values, routed.positions, MODEL.dim)
    expected = [embedding_records.vector(r.value) for r in records if r.value is not None]
    assert np.array_equal(gathered, np.stack(expected))
