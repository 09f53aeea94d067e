"""Folding many embeddings-log records at once: the rebuild's hot path.

Equivalent to folding the records one by one (``log_fold.PendingChanges``: the last write per
face wins, a poison record or a skipped one supersedes nothing), but in bulk: the 12-byte heads
of the binary records are checked as one numpy array, their vectors gathered with one
``b"".join`` at the fixed offset, the ids decoded with one ``str.split``, the vectors checked
with one row-wise dot product, and the last write per face found with ``dict(zip(...))``. A
record the bulk path cannot vouch for (JSON, headers missing, a wrong dim or model, a bad
vector) goes through ``log_fold.read_record``, which decodes it or says why it is poison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import embedding_records
from core.errors import FacestreamError
from schemas.envelope import Header
from schemas.events import DEFAULT_GALLERY
from streams.log_fold import Expect, FoldedBatch, GalleryUpserts, Upsert, read_record

_HEAD = np.dtype([("magic", "S4"), ("dim", "<u4"), ("meta", "<u4")])
_MAGIC = embedding_records.MAGIC
_OFFSET = embedding_records.VECTOR_OFFSET
_TINY = float(np.finfo(np.float32).tiny)
_SEP = "\x00"  # never in a face, person or gallery id
_PERSON = Header.PERSON_ID
_MODEL = Header.MODEL_ID
_GALLERY = Header.GALLERY


@dataclass
class RecordBatch:
    """Records as parallel lists (what a bulk reader hands over)."""

    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[Any]  # each a sequence of (name, bytes) pairs, or None
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
class _Outcome:
    """Per record: -1 skipped or poison, 0 tombstone, 1 bulk upsert, 2 upsert read one by one."""

    kind: np.ndarray
    row: np.ndarray  # bulk upserts: the row of their vector in ``vectors``
    vectors: np.ndarray
    persons: list[str]
    galleries: list[str]
    singles: dict[int, Upsert]
    errors: list[tuple[int, FacestreamError]]


def fold_bulk(records: RecordBatch, expect: Expect, scratch: Scratch | None = None) -> BulkFold:
    """Fold a batch; with a ``scratch``, the vectors handed back may live in it (valid until
    its next use)."""
    n = len(records)
    outcome = _classify(records, expect, scratch)
    kind = outcome.kind
    live = np.flatnonzero(kind >= 0)
    keys = records.keys
    live_keys = [keys[i] or b"" for i in live.tolist()]
    # The last effective write per face: later positions overwrite earlier ones in the dict.
    last = dict(zip(live_keys, live.tolist(), strict=True))
    winners = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    faces = _split(b"\x00".join(last.keys()).decode()) if last else []
    batch = FoldedBatch()
    won = kind[winners]
    batch.removals = [faces[j] for j in np.flatnonzero(won == 0).tolist()]
    by_gallery: dict[str, list[int]] = {}  # gallery -> indexes into winners
    bulk = np.flatnonzero(won == 1)
    if len(bulk):
        gal = outcome.galleries
        if len(set(gal)) == 1:
            by_gallery[gal[0]] = bulk.tolist()
        else:
            for j in bulk.tolist():
                by_gallery.setdefault(gal[outcome.row[winners[j]]], []).append(j)
    for gallery, picked in by_gallery.items():
        rows = outcome.row[winners[picked]]
        batch.upserts[gallery] = GalleryUpserts(
            [faces[j] for j in picked],
            [outcome.persons[r] for r in rows.tolist()],
            _take(outcome.vectors, rows),
        )
    singles: dict[str, list[Upsert]] = {}  # read one by one (JSON, ...): stacked once per gallery
    for j in np.flatnonzero(won == 2).tolist():
        single = outcome.singles[int(winners[j])]
        singles.setdefault(single.gallery, []).append(single)
    for gallery, upserts in singles.items():
        _extend(batch, gallery, upserts)
    skipped = n - len(live) - len(outcome.errors)
    return BulkFold(batch, outcome.errors, skipped)


def _take(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]``, without the copy when rows are all of them in order (the common case)."""
    if len(rows) == len(vectors) and (len(rows) == 0 or (rows[0] == 0 and (np.diff(rows) == 1).all())):
        return vectors
    return vectors[rows]


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


def _split(joined: str) -> list[str]:
    return joined.split(_SEP)


class Scratch:
    """Where a reader's batches gather their vectors: one buffer, reused batch after batch, so
    that its pages are touched once (the first touch of fresh memory costs more than the copy).
    A batch's vectors are valid until the next batch is gathered."""

    def __init__(self) -> None:
        self._buffer = np.empty(0, dtype=np.float32)

    def gather(self, values: list[bytes], width: int) -> np.ndarray:
        """The ``width`` float32s at the fixed offset of each value, as ``(n, width)`` rows."""
        need = len(values) * width
        if len(self._buffer) < need:
            self._buffer = np.empty(need, dtype=np.float32)
        target = memoryview(self._buffer).cast("B")  # type: ignore[arg-type]
        size, end, at = 4 * width, _OFFSET + 4 * width, 0
        for value in values:
            target[at : at + size] = memoryview(value)[_OFFSET:end]
            at += size
        return self._buffer[:need].reshape(len(values), width)


def _classify(records: RecordBatch, expect: Expect, scratch: Scratch | None) -> _Outcome:
    values, keys, headers = records.values, records.keys, records.headers
    n = len(values)
    kind = np.full(n, -1, dtype=np.int8)
    present = [v is not None for v in values]
    kind[np.flatnonzero(np.logical_not(present))] = 0  # tombstones
    named = [dict(h) if h else {} for h in headers]
    galleries_b = [d.get(_GALLERY) for d in named]
    galleries = [g.decode() if g else DEFAULT_GALLERY for g in galleries_b] if any(galleries_b) else None
    expected: dict[str, tuple[str, int] | None] = {}
    for g in set(galleries) if galleries is not None else (DEFAULT_GALLERY,):
        expected[g] = expect(g)
    # Candidates for the bulk path: a value, a key, person and model headers, a gallery indexed
    # here whose model the header names.
    model_of = {g: want[0].encode() for g, want in expected.items() if want is not None}
    persons_b = [d.get(_PERSON) for d in named]
    models_b = [d.get(_MODEL) for d in named]
    if galleries is None:
        wanted = model_of.get(DEFAULT_GALLERY)
        models_w: list[bytes | None] | None = None
    else:
        wanted, models_w = None, [model_of.get(g) for g in galleries]
    candidates = [
        i
        for i, (value, key, person, model) in enumerate(zip(values, keys, persons_b, models_b, strict=True))
        if value is not None
        and key
        and person is not None
        and model is not None
        and model == (wanted if models_w is None else models_w[i])
    ]
    rows = np.full(n, -1, dtype=np.int64)
    vectors = np.empty((0, 0), dtype=np.float32)
    persons: list[str] = []
    gal_of_row: list[str] = []
    if candidates:
        vals = [values[i] for i in candidates]
        heads = np.frombuffer(b"".join([v[:_OFFSET] for v in vals]), dtype=_HEAD)  # type: ignore[index]
        lengths = np.fromiter(map(len, vals), dtype=np.int64, count=len(vals))  # type: ignore[arg-type]
        cand_gal = [galleries[i] for i in candidates] if galleries is not None else None
        dims = np.array(
            [_dim(expected, g) for g in cand_gal] if cand_gal is not None else _dim(expected, DEFAULT_GALLERY)
        )
        dim_of = heads["dim"].astype(np.int64)
        ok = (
            (heads["magic"] == _MAGIC)
            & ((dims == 0) | (dim_of == dims))
            & (lengths == _OFFSET + 4 * dim_of + heads["meta"].astype(np.int64))
        )
        good = np.flatnonzero(ok)
        width = int(dim_of[good[0]]) if len(good) else 0
        good = good[dim_of[good] == width]  # one width per batch on the bulk path; others one by one
        if len(good):
            block = (scratch or Scratch()).gather([vals[j] for j in good.tolist()], width)  # type: ignore[misc]
            squared = np.einsum("ij,ij->i", block, block)
            fine = (squared > _TINY) & (squared < np.inf)
            good, block = good[fine], block[fine] if not fine.all() else block
            positions = np.asarray(candidates, dtype=np.int64)[good]
            kind[positions] = 1
            rows[positions] = np.arange(len(positions))
            vectors = block
            persons = _split(b"\x00".join([persons_b[i] for i in positions.tolist()]).decode())  # type: ignore[misc]
            gal_of_row = [cand_gal[j] for j in good.tolist()] if cand_gal is not None else [DEFAULT_GALLERY]
    singles: dict[int, Upsert] = {}
    errors: list[tuple[int, FacestreamError]] = []
    for i in np.flatnonzero(kind == -1).tolist():
        try:
            found = read_record(keys[i], values[i], headers[i], expect)
        except FacestreamError as exc:
            errors.append((i, exc))
            continue
        if isinstance(found, Upsert):
            kind[i], singles[i] = 2, found
        elif isinstance(found, str):
            kind[i] = 0
    return _Outcome(kind, rows, vectors, persons, gal_of_row, singles, errors)


def _dim(expected: dict[str, tuple[str, int] | None], gallery: str) -> int:
    want = expected[gallery]
    return want[1] if want else 0


def fold_records(records: Sequence[Any], expect: Expect) -> BulkFold:
    """``fold_bulk`` of records shaped like aiokafka's (``key``, ``value``, ``headers``)."""
    return fold_bulk(
        RecordBatch(
            keys=[r.key for r in records],
            values=[r.value for r in records],
            headers=[r.headers for r in records],
            partitions=[r.partition for r in records],
            offsets=[r.offset for r in records],
        ),
        expect,
    )
