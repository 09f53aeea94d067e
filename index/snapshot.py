"""Atomic on-disk snapshots of an index together with the log offsets it reflects.

Like a quix-streams state partition storing the changelog offset it reflects: a replica
restores the snapshot, then consumes each partition from the stored offset (the NEXT
offset to read), so it replays only the tail. Layout of ``directory``::

    CURRENT                      name of the live snapshot (replaced atomically)
    snapshot-<ns>-<hex>/         the live snapshot
        manifest.json            SnapshotManifest: what it is (one entry per gallery: backend,
                                 model, size, generation); a CRC-32 of every 64 MiB of each file
        payload/<gallery>/...    what each gallery's backend ``save`` wrote
    .tmp-<hex>/                  a snapshot being written (or left by a crash: ignored)

A snapshot is written into ``.tmp-*``, every file and directory fsynced, renamed to
``snapshot-*``, and only then published by replacing ``CURRENT``; older snapshots and
leftovers are deleted afterwards. A crash at any point leaves either the previous snapshot
or the new one live, never a half-written one. One writer per directory (the replica that
owns it). ``read_snapshot`` checks every byte against the manifest before loading, and
answers ``SnapshotUnusable`` for anything it will not serve: the caller rebuilds from the log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ErrorCode, FacestreamError
from index import registry
from index.base import Saveable, VectorIndex
from index.pacing import throttle

# 3: one index per gallery (2: one index; a CRC-32 per 64 MiB chunk of each file; 1: sha256)
FORMAT_VERSION = 3
DEFAULT_GALLERY = "default"  # what a single index is saved as
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
PAYLOAD = "payload"
_GALLERY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # schemas.events.GALLERY_ID_PATTERN
_SNAPSHOT_NAME = re.compile(r"^snapshot-[0-9]{20}-[0-9a-f]{8}$")
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20
_DIGEST_CHUNK = 64 << 20
_MIN_DIGEST_CHUNK = 1 << 16
# Threads that hash a snapshot's files while the backend loads: the caller's thread parses.
_VERIFY_THREADS = 3


class UnusableReason(StrEnum):
    MISSING = "missing"
    CORRUPT = "corrupt"
    FOREIGN = "foreign"
    INCOMPATIBLE = "incompatible"


class SnapshotUnusable(Exception):
    """This snapshot must not be served; rebuild the index from the log instead."""

    def __init__(self, reason: UnusableReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class FileDigest(BaseModel):
    """A file's size and the CRC-32 of each ``chunk_bytes`` piece of it, in order.

    A checksum against torn writes and bit rot, which is what a replica's own snapshot on its
    own disk has to fear (whoever can rewrite the payload can rewrite the manifest too, so a
    cryptographic hash bought nothing): zlib's CRC-32 runs at ~4 GB/s here, sha256 at ~1.1,
    and a 1M-face snapshot is 2 GB that must be checked before the replica serves. Chunks are
    checked on several threads at once.
    """

    model_config = ConfigDict(frozen=True)

    bytes: int = Field(ge=0)
    chunk_bytes: int = Field(ge=_MIN_DIGEST_CHUNK)
    crc32: list[Annotated[int, Field(ge=0, lt=1 << 32)]]

    @model_validator(mode="after")
    def _one_checksum_per_chunk(self) -> Self:
        if len(self.crc32) != -(-self.bytes // self.chunk_bytes):
            raise ValueError(
                f"{len(self.crc32)} checksums for {self.bytes} bytes in {self.chunk_bytes}-byte chunks"
            )
        return self


class GalleryEntry(BaseModel):
    """One gallery's index in a snapshot: under ``payload/<gallery>/``."""

    model_config = ConfigDict(frozen=True)

    backend: str
    model_id: str
    dim: int = Field(ge=1)
    size: int = Field(ge=0)
    persons: int = Field(ge=0)
    generation: int = Field(default=0, ge=0)
    # The options the gallery's definition gave its index (what a rebuild compares against).
    options: dict[str, int | float | str] = {}


class SnapshotManifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int
    galleries: dict[str, GalleryEntry]
    topic: str
    offsets: dict[int, int] = Field(description="partition -> next offset to read")
    created_at: datetime
    files: dict[str, FileDigest] = Field(description="payload path (posix, relative) -> digest")

    @property
    def size(self) -> int:
        return sum(g.size for g in self.galleries.values())


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    indexes: dict[str, VectorIndex]  # gallery -> its index
    offsets: dict[int, int]
    manifest: SnapshotManifest

    @property
    def index(self) -> VectorIndex:
        """The default gallery's index (or the only one): a snapshot of a single index."""
        if DEFAULT_GALLERY in self.indexes or len(self.indexes) != 1:
            return self.indexes[DEFAULT_GALLERY]
        return next(iter(self.indexes.values()))

    @property
    def generations(self) -> dict[str, int]:
        return {g: entry.generation for g, entry in self.manifest.galleries.items()}


def write_snapshot(
    indexes: Saveable | Mapping[str, Saveable],
    directory: Path,
    *,
    offsets: dict[int, int],
    topic: str,
    generations: Mapping[str, int] | None = None,
    options: Mapping[str, Mapping[str, int | float | str]] | None = None,
) -> SnapshotManifest:
    """Persist the indexes (one per gallery; a single index is the default gallery's) with the
    offsets they reflect; returns the manifest written.

    ``offsets`` maps each partition of ``topic`` to the next offset to read. Pass frozen views
    (``LabelledIndex.frozen()``) taken between applied batches, or indexes that do not change
    while they are being saved.
    """
    galleries = dict(indexes) if isinstance(indexes, Mapping) else {DEFAULT_GALLERY: indexes}
    for partition, offset in offsets.items():
        if not _is_int(partition) or not _is_int(offset) or partition < 0 or offset < 0:
            raise FacestreamError(
                ErrorCode.INVALID_PARAMETER, f"offset {partition!r}: {offset!r} is not valid"
            )
    for gallery in galleries:
        if not _GALLERY_NAME.match(gallery):
            raise FacestreamError(ErrorCode.INVALID_PARAMETER, f"gallery {gallery!r} is not a valid name")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"snapshot-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    tmp = directory / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        entries = {}
        (tmp / PAYLOAD).mkdir()
        for gallery, index in galleries.items():
            index.save(tmp / PAYLOAD / gallery)
            stats = index.stats()
            entries[gallery] = GalleryEntry(
                backend=index.backend,
                model_id=index.model_id,
                dim=index.dim,
                size=stats.size,
                persons=stats.persons,
                generation=(generations or {}).get(gallery, 0),
                options=dict((options or {}).get(gallery, {})),
            )
        manifest = SnapshotManifest(
            format_version=FORMAT_VERSION,
            galleries=entries,
            topic=topic,
            offsets={int(p): int(o) for p, o in offsets.items()},
            created_at=datetime.now(UTC),
            files=_digest_payload(tmp / PAYLOAD),
        )
        _write_durably(tmp / MANIFEST, manifest.model_dump_json(indent=2).encode())
        _fsync_tree(tmp)
        os.rename(tmp, directory / name)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = directory / f"{CURRENT}{_TMP_PREFIX}{uuid.uuid4().hex}"
    _write_durably(pointer, f"{name}\n".encode())
    os.replace(pointer, directory / CURRENT)
    _fsync_dir(directory)
    _delete_all_but(directory, name)
    return manifest


def read_snapshot(
    directory: Path,
    *,
    expected_topic: str,
    expected_model_id: str | None = None,
    expected_backend: str | None = None,
) -> LoadedSnapshot:
    """Load the live snapshot, or raise ``SnapshotUnusable`` saying why it cannot be served.

    ``expected_model_id`` and ``expected_backend`` are checked against the default gallery's
    index (the deployment's own); a caller checks the others against their definitions.
    """
    directory = Path(directory)
    snapshot = _live_snapshot(directory)
    manifest = _read_manifest(snapshot)
    default = manifest.galleries.get(DEFAULT_GALLERY)
    foreign = [
        f"{what} {got!r} (expected {want!r})"
        for what, got, want in (
            ("model", default.model_id if default else None, expected_model_id),
            ("backend", default.backend if default else None, expected_backend),
        )
        if want is not None and default is not None and got != want
    ]
    if manifest.topic != expected_topic:
        foreign.append(f"topic {manifest.topic!r} (expected {expected_topic!r})")
    known = registry.names()
    foreign += [
        f"backend {entry.backend!r} is not registered"
        for entry in manifest.galleries.values()
        if entry.backend not in known
    ]
    if foreign:
        raise SnapshotUnusable(UnusableReason.FOREIGN, f"{snapshot.name}: " + "; ".join(foreign))
    # Every byte is checked before the indexes are handed out; the checking (zlib releases the
    # GIL) runs on threads while the backends parse what they saved meanwhile.
    indexes: dict[str, VectorIndex] = {}
    with ThreadPoolExecutor(max_workers=_VERIFY_THREADS, thread_name_prefix="verify") as pool:
        verified = pool.submit(_verify_payload, snapshot / PAYLOAD, manifest.files, pool)
        failure: Exception | None = None
        for gallery, entry in manifest.galleries.items():
            try:
                indexes[gallery] = registry.load(entry.backend, snapshot / PAYLOAD / gallery)
            except Exception as exc:
                failure = exc
                break
        verified.result()  # raises SnapshotUnusable first: a checksum names the cause best
    if failure is not None:
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{snapshot.name}: {failure}") from failure
    for gallery, entry in manifest.galleries.items():
        index = indexes[gallery]
        got = (index.backend, index.model_id, index.dim, len(index))
        want = (entry.backend, entry.model_id, entry.dim, entry.size)
        if got != want:
            raise SnapshotUnusable(
                UnusableReason.CORRUPT, f"{snapshot.name}: {gallery}: loaded {got}, manifest says {want}"
            )
    return LoadedSnapshot(indexes=indexes, offsets=dict(manifest.offsets), manifest=manifest)


# --- reading


def _live_snapshot(directory: Path) -> Path:
    try:
        name = (directory / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SnapshotUnusable(UnusableReason.MISSING, f"no snapshot in {directory}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{directory / CURRENT}: {exc}") from exc
    if not _SNAPSHOT_NAME.match(name):
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{directory / CURRENT} names {name!r}")
    snapshot = directory / name
    if not snapshot.is_dir():
        raise SnapshotUnusable(UnusableReason.MISSING, f"{snapshot} does not exist")
    return snapshot


def _read_manifest(snapshot: Path) -> SnapshotManifest:
    try:
        raw = json.loads((snapshot / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{snapshot} has no manifest") from None
    except (OSError, ValueError) as exc:
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{snapshot / MANIFEST} is unreadable: {exc}") from exc
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and version != FORMAT_VERSION:
        # An older build's snapshot (one index, no galleries): rebuilt from the log once.
        raise SnapshotUnusable(
            UnusableReason.INCOMPATIBLE, f"format version {version}, this build reads {FORMAT_VERSION}"
        )
    try:
        return SnapshotManifest.model_validate(raw)
    except ValidationError as exc:
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{snapshot / MANIFEST} is unreadable: {exc}") from exc


def _verify_payload(payload: Path, expected: dict[str, FileDigest], pool: Executor) -> None:
    try:
        found = _payload_files(payload)
    except OSError as exc:
        raise SnapshotUnusable(UnusableReason.CORRUPT, f"{payload}: {exc}") from exc
    if set(found) != set(expected):
        raise SnapshotUnusable(
            UnusableReason.CORRUPT,
            f"{payload} holds {sorted(found)}, the manifest lists {sorted(expected)}",
        )
    for relative, digest in expected.items():
        size = found[relative].stat().st_size
        if size != digest.bytes:
            raise SnapshotUnusable(
                UnusableReason.CORRUPT, f"{relative}: {size} bytes, expected {digest.bytes}"
            )
    pieces = [
        (relative, n, pool.submit(_chunk_crc32, found[relative], n * digest.chunk_bytes, digest.chunk_bytes))
        for relative, digest in expected.items()
        for n in range(len(digest.crc32))
    ]
    for relative, n, crc in pieces:
        if crc.result() != expected[relative].crc32[n]:
            raise SnapshotUnusable(UnusableReason.CORRUPT, f"{relative}: checksum mismatch in chunk {n}")


# --- files


def _payload_files(payload: Path) -> dict[str, Path]:
    if not payload.is_dir():
        raise FileNotFoundError(f"{payload} is not a directory")
    return {
        path.relative_to(payload).as_posix(): path
        for path in sorted(payload.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _chunk_crc32(path: Path, offset: int, length: int) -> int:
    crc = 0
    with path.open("rb") as file:
        file.seek(offset)
        while length > 0 and (chunk := file.read(min(_CHUNK, length))):
            crc = zlib.crc32(chunk, crc)  # releases the GIL on large buffers
            length -= len(chunk)
    return crc


def _digest(path: Path) -> FileDigest:
    """One pass over the file: its size and a CRC-32 per ``_DIGEST_CHUNK`` bytes."""
    checksums: list[int] = []
    crc, filled, size = 0, 0, 0
    with path.open("rb") as file:
        while chunk := file.read(min(_CHUNK, _DIGEST_CHUNK - filled)):
            throttle(len(chunk))
            crc = zlib.crc32(chunk, crc)
            filled += len(chunk)
            size += len(chunk)
            if filled == _DIGEST_CHUNK:
                checksums.append(crc)
                crc, filled = 0, 0
    if filled:
        checksums.append(crc)
    return FileDigest(bytes=size, chunk_bytes=_DIGEST_CHUNK, crc32=checksums)


def _digest_payload(payload: Path) -> dict[str, FileDigest]:
    return {relative: _digest(path) for relative, path in _payload_files(payload).items()}


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync_tree(root: Path) -> None:
    """fsync every file (the backend wrote them without) and every directory under ``root``."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_symlink():
            continue
        if path.is_dir():
            _fsync_dir(path)
        else:
            with path.open("rb") as file:
                os.fsync(file.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete_all_but(directory: Path, live: str) -> None:
    """Remove older snapshots and whatever a crashed writer left behind."""
    for path in directory.iterdir():
        stale = (
            path.name.startswith(_TMP_PREFIX)
            or path.name.startswith(f"{CURRENT}{_TMP_PREFIX}")
            or (_SNAPSHOT_NAME.match(path.name) is not None and path.name != live)
        )
        if not stale:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
