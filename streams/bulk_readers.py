"""Reading a large cut of the embeddings log in reader processes, each folding what it reads.

One interpreter rebuilds at ~100k records/s however its threads are arranged: librdkafka's
record objects (~2 us each) and the fold (~3 us) take turns on one GIL while the host's other
cores idle. So a large cut is split by partition among reader processes (children of a fork
server: they inherit none of the caller's threads or locks). Each consumes its partitions and
folds each chunk with ``bulk_fold``, gathering the vectors straight into one of its slots of
shared memory: vectors never cross a pipe, only ids do. The caller applies each reader's chunks
in the order sent (a face's records share a partition, so the last write per face still wins)
and a slot goes back to its reader when the caller asks for the next part.

A reader folds only what it can vouch for alone: records of the galleries it was given, and
tombstones. A chunk holding anything else (a gallery it was not given, a record to
dead-letter) travels raw, for the caller to fold as it would without readers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

import numpy as np

from core.settings import Settings
from streams.bulk_fold import BulkFold, RecordBatch, Scratch, fold_bulk
from streams.bulk_log import BATCH, FOLD_RECORDS, ReadAhead, joined, read_cut
from streams.log_fold import FoldedBatch, GalleryUpserts

# A reader folds what one consume() hands over: joined into chunks of 20k, a partition read at
# 119k records/s here instead of 194k/s. Its slots let it read on while the caller applies.
CHUNK = BATCH
SLOTS = 8
_SEP = "\x00"  # ids of a part are joined with it: no id holds one (``core.kafka.checked_id``)
PARALLEL_FROM = 100_000  # records in a cut: one process reads fewer in about a second

# Readers are forked from a server that has these modules loaded (the caller's main module
# too, as multiprocessing would import it in every child): a start costs a fork, not an
# interpreter's imports.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["__main__", __name__])

# gallery -> (model id, dim): what a reader folds itself.
Wanted = dict[str, tuple[str, int]]


@dataclass
class Part:
    """A chunk of one reader's partitions: folded by the reader, or ``raw`` for the caller."""

    reached: dict[int, int]  # partition -> the offset after its last record in the chunk
    records: int
    folded: BulkFold | None = None
    raw: RecordBatch | None = None


def readers_for(records: int, partitions: int) -> int:
    """How many reader processes a cut of ``records`` over ``partitions`` is worth."""
    if records < PARALLEL_FROM or partitions < 2:
        return 0
    # Twice the cores: a reader of one partition also waits on its fetches (~200k records/s
    # from one partition here at most, librdkafka fetching one request at a time).
    return min(partitions, 2 * (os.cpu_count() or 1))


class PartSource(Protocol):
    """Parts of a cut, one at a time (``next``, blocking); ``close`` stops the reading."""

    def next(self) -> Part | None: ...

    def close(self) -> None: ...


def read_parts(
    settings: Settings,
    topic: str,
    starts: dict[int, int],
    ends: dict[int, int],
    wanted: Wanted,
    *,
    defer_others: bool = True,
) -> PartSource:
    """The cut ``starts``..``ends`` (excluded) in parts: folded by reader processes for a large
    cut, raw (for the caller to fold) from this process otherwise. ``wanted``: the galleries a
    reader may fold itself; ``defer_others``: records of other galleries make a chunk travel
    raw (the caller may hold their gallery) instead of being skipped."""
    pending = [p for p, end in ends.items() if end > starts.get(p, 0)]
    coming = sum(ends[p] - max(starts.get(p, 0), 0) for p in pending)
    readers = readers_for(coming, len(pending))
    if readers:
        return ParallelCut(settings, topic, starts, ends, wanted, readers=readers, defer_others=defer_others)
    return _InProcess(ReadAhead(read_cut(settings, topic, starts, ends)))


class _InProcess:
    def __init__(self, batches: ReadAhead) -> None:
        self._batches = batches

    def next(self) -> Part | None:
        batch = self._batches.next_many(FOLD_RECORDS)
        if batch is None:
            return None
        return Part(reached(batch), len(batch), raw=batch)

    def close(self) -> None:
        self._batches.close()


def warm_up() -> None:
    """Start the fork server now (it loads its modules while the caller does other work; a
    reader's first start otherwise waits ~0.4 s for it)."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


class ParallelCut:
    """The parts of the cut ``starts``..``ends`` (excluded), read by ``readers`` processes.
    Blocking: call ``next`` on a worker thread from async code; ``close`` stops the readers."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        starts: dict[int, int],
        ends: dict[int, int],
        wanted: Wanted,
        *,
        readers: int,
        defer_others: bool = True,
        chunk: int = CHUNK,
    ) -> None:
        pending = sorted(p for p, end in ends.items() if end > starts.get(p, 0))
        width = max((dim for _, dim in wanted.values()), default=0)
        self._slots: list[list[np.ndarray]] = []
        self._conns: list[Connection] = []
        self._processes: list[Any] = []
        self._held: tuple[int, int] | None = None  # (reader, slot) of the part last handed out
        for i in range(min(readers, len(pending))):
            mine = pending[i::readers]
            raw = [_CONTEXT.RawArray("f", chunk * max(width, 1)) for _ in range(SLOTS)]
            ours, theirs = _CONTEXT.Pipe(duplex=True)
            process = _CONTEXT.Process(
                target=_read,
                args=(
                    settings,
                    topic,
                    {p: max(starts.get(p, 0), 0) for p in mine},
                    {p: ends[p] for p in mine},
                    wanted,
                    defer_others,
                    chunk,
                    theirs,
                    raw,
                ),
                name=f"log-reader-{i}",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._slots.append([np.frombuffer(r, dtype=np.float32) for r in raw])
            self._conns.append(ours)
            self._processes.append(process)
        self._live = list(range(len(self._conns)))
        self._served = -1  # the reader whose part was taken last

    def next(self) -> Part | None:
        """The next part from any reader; None once every reader is done. A part's vectors
        are valid until the next call."""
        self._hand_back()
        while self._live:
            ready = wait([self._conns[i] for i in self._live])
            reader = self._next_ready(ready)
            try:
                message = self._conns[reader].recv()
            except EOFError:
                self.close()
                raise RuntimeError(f"log reader {reader} ended without finishing its partitions") from None
            kind = message[0]
            if kind == "end":
                self._live.remove(reader)
                continue
            if kind == "error":
                self.close()
                raise RuntimeError(f"log reader {reader} failed:\n{message[1]}")
            if kind == "raw":
                _, upto, batch = message
                return Part(upto, len(batch), raw=batch)
            _, upto, records, slot, removals, regions, skipped = message
            self._held = (reader, slot)
            changes = _batch(self._slots[reader][slot], removals, regions)
            return Part(upto, records, folded=BulkFold(changes, [], skipped))
        return None

    def _next_ready(self, ready: list[Any]) -> int:
        """The ready reader served longest ago: taking the first ready one each time starved
        the last reader, whose partition was then read alone at the end."""
        count = len(self._conns)
        for step in range(1, count + 1):
            reader = (self._served + step) % count
            if self._conns[reader] in ready:
                self._served = reader
                return reader
        raise AssertionError("wait() returned no reader of ours")

    def _hand_back(self) -> None:
        if self._held is not None:
            reader, slot = self._held
            self._held = None
            if reader in self._live:
                # A reader that sent its last part may be gone already: its "end" is waiting.
                with contextlib.suppress(BrokenPipeError):
                    self._conns[reader].send(slot)

    def close(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=10)
        for conn in self._conns:
            conn.close()
        self._processes, self._conns, self._live = [], [], []


def reached(batch: RecordBatch) -> dict[int, int]:
    """Each partition's offset after its last record in ``batch`` (records come in order)."""
    last = dict(zip(batch.partitions, batch.offsets, strict=True))  # in C: the later ones stay
    return {partition: offset + 1 for partition, offset in last.items()}


def _batch(buffer: np.ndarray, removals: list[str], regions: list[Any]) -> FoldedBatch:
    batch = FoldedBatch(removals=removals)
    for gallery, faces, persons, start, (count, dim) in regions:
        vectors = buffer[start : start + count * dim].reshape(count, dim)
        batch.upserts[gallery] = GalleryUpserts(_split(faces, count), _split(persons, count), vectors)
    return batch


def _split(joined: str, count: int) -> list[str]:
    return joined.split(_SEP) if count else []


# --- in the reader process


def _read(
    settings: Settings,
    topic: str,
    starts: dict[int, int],
    ends: dict[int, int],
    wanted: Wanted,
    defer_others: bool,
    chunk: int,
    conn: Connection,
    raw_slots: list[Any],
) -> None:
    try:
        os.nice(5)  # the caller's applying is the serial part: readers take the cycles it leaves
        slots = [np.frombuffer(r, dtype=np.float32) for r in raw_slots]
        free = list(range(len(slots)))
        for batch in joined(read_cut(settings, topic, starts, ends, batch=chunk), chunk):
            if not free:
                free.append(conn.recv())  # the caller has applied a part of ours
            slot = free.pop()
            message = _folded(batch, wanted, defer_others, slots[slot])
            if message is None:
                free.append(slot)
                conn.send(("raw", reached(batch), batch))
            else:
                conn.send(("part", reached(batch), len(batch), slot, *message))
        conn.send(("end",))
    except BaseException:  # the caller raises it
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _folded(
    batch: RecordBatch, wanted: Wanted, defer_others: bool, slot: np.ndarray
) -> tuple[Any, ...] | None:
    """The chunk folded into ``slot``: (removals, regions, skipped); None when it must travel raw."""
    folded = fold_bulk(batch, wanted.get, Scratch(slot))
    if folded.errors or (folded.skipped and defer_others):
        return None
    regions: list[Any] = []
    at = 0
    # A gallery's rows already gathered in place (every bulk record, in order) go first.
    upserts = sorted(folded.batch.upserts.items(), key=lambda item: not _at_start(item[1].vectors, slot))
    for gallery, found in upserts:
        rows = np.ascontiguousarray(found.vectors, dtype=np.float32)
        size = rows.size
        if at + size > len(slot):
            return None
        if not _at_start(rows, slot) or at:
            slot[at : at + size] = rows.reshape(-1)
        # Ids travel joined: one string pickles and splits faster than a list of them.
        regions.append((gallery, _SEP.join(found.faces), _SEP.join(found.persons), at, rows.shape))
        at += size
    return folded.batch.removals, regions, folded.skipped


def _at_start(rows: np.ndarray, slot: np.ndarray) -> bool:
    """Whether ``rows`` are the slot's own memory, from its start."""
    return rows.size > 0 and rows.__array_interface__["data"][0] == slot.__array_interface__["data"][0]
