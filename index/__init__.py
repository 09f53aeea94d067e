"""Vector indexes of face embeddings: one interface, backends by name, atomic snapshots.

from index import create, read_snapshot, search_persons
idx = create(settings.index_backend, dim=512, model_id=model.id)
"""

from index.base import (
    Hit,
    IndexCorrupt,
    IndexStats,
    PersonMatch,
    VectorIndex,
    rank_persons,
    search_persons,
)
from index.registry import backend_class, create, load, names, register
from index.snapshot import (
    LoadedSnapshot,
    SnapshotManifest,
    SnapshotUnusable,
    UnusableReason,
    read_snapshot,
    write_snapshot,
)

__all__ = [
    "Hit",
    "IndexCorrupt",
    "IndexStats",
    "LoadedSnapshot",
    "PersonMatch",
    "SnapshotManifest",
    "SnapshotUnusable",
    "UnusableReason",
    "VectorIndex",
    "backend_class",
    "create",
    "load",
    "names",
    "rank_persons",
    "read_snapshot",
    "register",
    "search_persons",
    "write_snapshot",
]
