"""Folding many embeddings-log records at once: the rebuild's hot path.

Equivalent to folding the records one by one (``log_fold.PendingChanges``: the last write per
face wins, a poison record or a skipped one supersedes nothing), but in bulk, from keys and
values alone, packed (``packed_records``): the 16-byte heads of the binary records
(``core.embedding_records``) are gathered and checked as one numpy array, their routing ids
joined in C and split once (their NUL separators checked as one array), their vectors gathered
in C from the fixed offset into one reused buffer and checked
with one row-wise dot product, and the last write per face found with ``dict(zip(...))``. A
record the bulk path cannot vouch for (JSON, the first binary format, a wrong dim or model, a
bad vector) goes through ``log_fold.read_record``, which reads its headers, decodes it or says
why it is poison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import embedding_records
from core.errors import FacestreamError
from core.kafka import key_text
from schemas.envelope import Header
from schemas.events import DEFAULT_GALLERY
from streams._packed_consumer import gather_rows, join_spans
from streams.log_fold import Expect, FoldedBatch, GalleryUpserts, Upsert, read_record
from streams.packed_records import PackedValues, pack_values

_HEAD = embedding_records.HEAD
_MAGIC = embedding_records.MAGIC
_OFFSET = embedding_records.VECTOR_OFFSET
_TINY = float(np.finfo(np.float32).tiny)
_SEP = "\x00"  # between a FSE2 record's ids; a key holding one is poison (``core.kafka.key_text``)

# Per record: poison or read one by one (-1), of a gallery not indexed here (-2), a tombstone
# (0), a bulk upsert (1), an upsert read one by one (2).
_UNSURE, _SKIP, _TOMBSTONE, _BULK, _SINGLE = -1, -2, 0, 1, 2


@dataclass
class RecordBatch:
    """Records as parallel sequences, their values packed (``packed_records``: by the bulk
    reader, or ``as_batch``) and read with numpy. The bulk path needs no headers."""

    keys: list[bytes | None]
    values: PackedValues
    headers: Sequence[Any]  # each record's (name, bytes) pairs, or None: a list or PackedHeaders
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class BulkFold:
    batch: FoldedBatch
    errors: list[tuple[int, FacestreamError]]  # position in the batch, and why: dead letters
    skipped: int  # records of galleries not indexed here


@dataclass
class Routing:
    """The binary records of a batch the bulk path can take, and their ids: read once, before
    the fold, so that a reader can first fetch what it needs for their galleries."""

    positions: np.ndarray  # of these records in the batch
    heads: np.ndarray  # their heads (``embedding_records.HEAD``)
    persons: list[str]
    models: list[str]
    galleries: list[str]
    unreadable: np.ndarray  # positions of records whose key cannot be a face id

    def named(self, records: RecordBatch) -> set[str]:
        """Every gallery the batch's records name: the routed ones by their ids, the others
        (older formats) by their `gallery` header, read for them alone."""
        named = set(self.galleries)
        if len(self.positions) < len(records):
            routed = set(self.positions.tolist())
            for i in range(len(records)):
                if i not in routed:
                    named |= {
                        v.decode(errors="replace")
                        for k, v in records.headers[i] or ()
                        if k == Header.GALLERY and v
                    }
        return named


def route(records: RecordBatch) -> Routing:
    values = records.values
    n = len(values)
    lengths, heads = values.lengths, _heads(values)
    keyed = np.fromiter(map(bool, records.keys), dtype=bool, count=n)
    unreadable = _unreadable_keys(records.keys)
    keyed[unreadable] = False
    dims = heads["dim"].astype(np.int64)
    ids_len = heads["ids"].astype(np.int64)
    ok = (
        (heads["magic"] == _MAGIC)
        & keyed
        & (lengths == _OFFSET + 4 * dims + ids_len + heads["meta"].astype(np.int64))
    )
    positions = np.flatnonzero(ok)
    heads, starts, ids_len = heads[positions], (_OFFSET + 4 * dims)[positions], ids_len[positions]
    joined = join_spans(values.data, values.starts[positions] + starts, ids_len)
    # Each record's ids are three NUL-terminated strings: exactly three NULs, the last at its end.
    nuls = np.flatnonzero(np.frombuffer(joined, dtype=np.uint8) == 0)
    ends = np.cumsum(ids_len) - 1
    try:
        if len(nuls) != 3 * len(positions) or not np.array_equal(nuls[2::3], ends):
            raise ValueError("ids not three NUL-terminated strings each")
        parts = joined.decode().split(_SEP)
        parts.pop()  # the empty string after the last NUL: persons are parts[0::3], one a record
    except ValueError:  # UnicodeDecodeError too: each record is then read (and judged) alone
        empty = np.empty(0, dtype=np.int64)
        return Routing(empty, heads[:0], [], [], [], unreadable)
    galleries = [g or DEFAULT_GALLERY for g in parts[2::3]]
    return Routing(positions, heads, parts[0::3], parts[1::3], galleries, unreadable)


def _heads(values: PackedValues) -> np.ndarray:
    """Each value's head (zeros where it is too short for one)."""
    heads = np.zeros(len(values), dtype=_HEAD)
    long = values.lengths >= _OFFSET
    if long.all():
        gather_rows(values.data, values.starts, _OFFSET, heads)
    else:
        found = np.empty(int(long.sum()), dtype=_HEAD)
        gather_rows(values.data, values.starts[long], _OFFSET, found)
        heads[long] = found
    return heads


def fold_bulk(
    records: RecordBatch, expect: Expect, scratch: Scratch | None = None, routing: Routing | None = None
) -> BulkFold:
    """Fold a batch (``routing``: ``route(records)``, if taken already); with a ``scratch``, the
    vectors handed back may live in it (valid until its next use)."""
    n = len(records)
    outcome = _classify(records, expect, scratch, routing or route(records))
    kind = outcome.kind
    live = np.flatnonzero(kind >= 0)
    keys = records.keys
    # Every record kept, every one keyed (the common case): the keys as they are.
    live_keys: list[bytes] = (
        keys if len(live) == n and all(keys) else [keys[i] or b"" for i in live.tolist()]  # type: ignore[assignment]
    )
    # The last effective write per face: later positions overwrite earlier ones in the dict.
    last = dict(zip(live_keys, live.tolist(), strict=True))
    winners = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    faces = b"\x00".join(last.keys()).decode().split(_SEP) if last else []
    batch = FoldedBatch()
    won = kind[winners]
    batch.removals = [faces[j] for j in np.flatnonzero(won == _TOMBSTONE).tolist()]
    by_gallery: dict[str, np.ndarray] = {}  # gallery -> indexes into winners
    bulk = np.flatnonzero(won == _BULK)
    if len(bulk):
        gal = outcome.galleries
        if len(set(gal)) == 1:
            by_gallery[gal[0]] = bulk
        else:
            listed: dict[str, list[int]] = {}
            for j in bulk.tolist():
                listed.setdefault(gal[outcome.row[winners[j]]], []).append(j)
            by_gallery = {g: np.asarray(js, dtype=np.int64) for g, js in listed.items()}
    for gallery, picked in by_gallery.items():
        rows = outcome.row[winners[picked]]
        batch.upserts[gallery] = GalleryUpserts(
            _pick(faces, picked),
            _pick(outcome.persons, rows),
            _take(outcome.vectors, rows),
        )
    singles: dict[str, list[Upsert]] = {}  # read one by one (JSON, ...): stacked once per gallery
    for j in np.flatnonzero(won == _SINGLE).tolist():
        single = outcome.singles[int(winners[j])]
        singles.setdefault(single.gallery, []).append(single)
    for gallery, upserts in singles.items():
        _extend(batch, gallery, upserts)
    skipped = n - len(live) - len(outcome.errors)
    return BulkFold(batch, outcome.errors, skipped)


@dataclass
class _Outcome:
    kind: np.ndarray  # per record, one of _UNSURE ... _SINGLE
    row: np.ndarray  # bulk upserts: the row of their vector in ``vectors``
    vectors: np.ndarray
    persons: list[str]  # per row
    galleries: list[str]  # per row
    singles: dict[int, Upsert]
    errors: list[tuple[int, FacestreamError]]


def _classify(records: RecordBatch, expect: Expect, scratch: Scratch | None, routing: Routing) -> _Outcome:
    values = records.values
    n = len(values)
    kind = np.full(n, _UNSURE, dtype=np.int8)
    kind[values.lengths < 0] = _TOMBSTONE
    kind[routing.unreadable] = _UNSURE  # tombstones too: read one by one, dead letters
    rows = np.full(n, -1, dtype=np.int64)
    vectors = np.empty((0, 0), dtype=np.float32)
    persons: list[str] = []
    galleries: list[str] = []
    if len(routing.positions):
        wanted = {g: expect(g) for g in set(routing.galleries)}
        kind[routing.positions[[wanted[g] is None for g in routing.galleries]]] = _SKIP
        takes = _takes(routing, wanted)
        width = int(routing.heads["dim"][takes[0]]) if len(takes) else 0
        takes = takes[routing.heads["dim"][takes] == width]  # one width per batch; others one by one
        if len(takes):
            block = (scratch or Scratch()).gather(values, routing.positions[takes], width)
            squared = np.einsum("ij,ij->i", block, block)
            fine = (squared > _TINY) & (squared < np.inf)
            if not fine.all():
                takes, block = takes[fine], block[fine]
            positions = routing.positions[takes]
            kind[positions] = _BULK
            rows[positions] = np.arange(len(positions))
            vectors = block
            persons = _pick(routing.persons, takes)
            galleries = _pick(routing.galleries, takes)
    singles: dict[int, Upsert] = {}
    errors: list[tuple[int, FacestreamError]] = []
    for i in np.flatnonzero(kind == _UNSURE).tolist():
        try:
            found = read_record(records.keys[i], values[i], records.headers[i], expect)
        except FacestreamError as exc:
            errors.append((i, exc))
            continue
        if isinstance(found, Upsert):
            kind[i], singles[i] = _SINGLE, found
        elif isinstance(found, str):
            kind[i] = _TOMBSTONE
        else:
            kind[i] = _SKIP
    return _Outcome(kind, rows, vectors, persons, galleries, singles, errors)


def _unreadable_keys(keys: list[bytes | None]) -> np.ndarray:
    """Positions of keys that cannot be face ids (``core.kafka.key_text``): joined with NULs below,
    a key holding one would shift every face id after it."""
    present = keys if all(keys) else [k or b"" for k in keys]
    joined = b"\x00".join(present)  # type: ignore[arg-type]
    if joined.isascii() and joined.count(0) == len(present) - 1:  # the common case, in C
        return np.empty(0, dtype=np.int64)
    return np.array([i for i, k in enumerate(present) if not _readable(k)], dtype=np.int64)  # type: ignore[arg-type]


def _readable(key: bytes) -> bool:
    try:
        key_text(key)
    except FacestreamError:
        return False
    return True


def _takes(routing: Routing, wanted: dict[str, tuple[str, int] | None]) -> np.ndarray:
    """Indexes into ``routing`` of the records of an indexed gallery, of its model and dim."""
    if len(wanted) == 1 and len(set(routing.models)) == 1:  # the common case, checked once
        want = next(iter(wanted.values()))
        if want is None or routing.models[0] != want[0]:
            return np.empty(0, dtype=np.int64)
        dims = routing.heads["dim"]
        return np.flatnonzero(dims == want[1]) if want[1] else np.arange(len(dims))
    model_of = {g: w[0] for g, w in wanted.items() if w is not None}
    dim_of = np.array([(w[1] if w else -1) for w in (wanted[g] for g in routing.galleries)], dtype=np.int64)
    same_model = np.fromiter(
        (model_of.get(g) == m for g, m in zip(routing.galleries, routing.models, strict=True)),
        dtype=bool,
        count=len(routing.galleries),
    )
    dims = routing.heads["dim"].astype(np.int64)
    return np.flatnonzero(same_model & ((dim_of == 0) | (dims == dim_of)))


def _all_in_order(indexes: np.ndarray, count: int) -> bool:
    """Whether ``indexes`` are 0, 1, ... ``count - 1``: a batch with nothing dropped."""
    return len(indexes) == count and (count == 0 or (indexes[0] == 0 and bool((np.diff(indexes) == 1).all())))


def _pick(items: Sequence[Any], indexes: np.ndarray) -> list[Any]:
    """``[items[i] for i in indexes]``, copied in C when they are all of them in order."""
    return list(items) if _all_in_order(indexes, len(items)) else [items[i] for i in indexes.tolist()]


def _take(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]``, without the copy when rows are all of them in order."""
    return vectors if _all_in_order(rows, len(vectors)) else vectors[rows]


def _extend(batch: FoldedBatch, gallery: str, upserts: list[Upsert]) -> None:
    rows = np.stack([u.vector for u in upserts]).astype(np.float32, copy=False)
    faces, persons = [u.face_id for u in upserts], [u.person_id for u in upserts]
    found = batch.upserts.get(gallery)
    if found is None:
        batch.upserts[gallery] = GalleryUpserts(faces, persons, rows)
    else:
        found.faces += faces
        found.persons += persons
        found.vectors = np.concatenate([found.vectors, rows])


class Scratch:
    """Where a reader's batches gather their vectors: one buffer, reused batch after batch, so
    that its pages are touched once (the first touch of fresh memory costs more than the copy).
    A batch's vectors are valid until the next batch is gathered."""

    def __init__(self, buffer: np.ndarray | None = None) -> None:
        self._buffer = np.empty(0, dtype=np.float32) if buffer is None else buffer  # flat float32

    def gather(self, values: PackedValues, positions: np.ndarray, width: int) -> np.ndarray:
        """The ``width`` float32s at the fixed offset of each value at ``positions``, as rows."""
        need = len(positions) * width
        if len(self._buffer) < need:
            self._buffer = np.empty(need, dtype=np.float32)
        gather_rows(values.data, values.starts[positions] + _OFFSET, 4 * width, self._buffer)
        return self._buffer[:need].reshape(len(positions), width)


def as_batch(records: Sequence[Any]) -> RecordBatch:
    """Records shaped like aiokafka's (``key``, ``value``, ``headers``, ...) as one batch."""
    return RecordBatch(
        keys=[r.key for r in records],
        values=pack_values([r.value for r in records]),
        headers=[r.headers for r in records],
        partitions=[r.partition for r in records],
        offsets=[r.offset for r in records],
    )
