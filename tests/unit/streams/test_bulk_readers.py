"""What a reader process hands over for a chunk: folded into its slot (and read back from it as
the caller does) exactly as ``fold_bulk`` folds it in place, or nothing (the chunk travels raw).
The processes themselves run against the real broker in tests/integration/replica."""

from __future__ import annotations

import numpy as np

from streams.bulk_fold import as_batch, fold_bulk
from streams.bulk_readers import _batch, _folded, readers_for
from streams.log_fold import FoldedBatch
from tests.unit.streams.galleries_factories import MODEL, fact, record, tombstone, unit

WANTED = {"default": (MODEL.id, MODEL.dim), "branch-b": (MODEL.id, MODEL.dim)}


def _through_slot(records: list, wanted: dict = WANTED, defer_others: bool = True) -> FoldedBatch | None:
    slot = np.full(64 * MODEL.dim, np.nan, dtype=np.float32)
    message = _folded(as_batch(records), wanted, defer_others, slot)
    if message is None:
        return None
    removals, regions, _ = message
    return _batch(slot.copy(), removals, regions)  # a copy: what the caller reads, not the reader's arrays


def _same(got: FoldedBatch | None, want: FoldedBatch) -> None:
    assert got is not None
    assert got.removals == want.removals
    assert got.upserts.keys() == want.upserts.keys()
    for gallery, upserts in want.upserts.items():
        assert got.upserts[gallery].faces == upserts.faces
        assert got.upserts[gallery].persons == upserts.persons
        np.testing.assert_array_equal(got.upserts[gallery].vectors, upserts.vectors)


def test_a_clean_chunk_comes_out_of_the_slot_as_the_fold_makes_it() -> None:
    rng = np.random.default_rng(1)
    records = [record(i, fact(f"f{i}", f"p{i}", unit(rng))) for i in range(10)]
    _same(_through_slot(records), fold_bulk(as_batch(records), WANTED.get).batch)


def test_rewrites_tombstones_and_two_galleries_each_keep_their_own_rows() -> None:
    rng = np.random.default_rng(2)
    records = [
        *(record(i, fact(f"f{i}", f"p{i}", unit(rng))) for i in range(6)),
        *(record(6 + i, fact(f"b{i}", f"q{i}", unit(rng), gallery="branch-b")) for i in range(4)),
        record(10, fact("f2", "rewritten", unit(rng))),  # the last write wins: rows picked, not in place
        tombstone(11, "f4"),
    ]
    want = fold_bulk(as_batch(records), WANTED.get).batch
    assert len(want.upserts) == 2 and want.removals == ["f4"]
    _same(_through_slot(records), want)


def test_a_chunk_with_poison_or_a_gallery_not_given_travels_raw() -> None:
    rng = np.random.default_rng(3)
    bad = unit(rng)
    bad[0] = np.nan
    clean = [record(i, fact(f"f{i}", "p", unit(rng))) for i in range(3)]
    assert _through_slot([*clean, record(3, fact("poison", "p", bad))]) is None
    other = record(3, fact("x", "p", unit(rng), gallery="elsewhere"))
    assert _through_slot([*clean, other]) is None
    # Not deferred (a replay of one gallery): the other gallery's record is skipped there.
    _same(_through_slot([*clean, other], defer_others=False), fold_bulk(as_batch(clean), WANTED.get).batch)


def test_readers_only_for_a_large_cut_over_several_partitions() -> None:
    assert readers_for(50_000, 3) == 0
    assert readers_for(1_000_000, 1) == 0
    assert 2 <= readers_for(1_000_000, 3) <= 3
