"""``qdrant``: a Qdrant collection through qdrant-client's local mode (no server).

Points: id = the face's int64 label (``LabelledIndex``), vector = the unit embedding,
payload ``{"face_id", "person_id"}``; distance ``Cosine``, so scores are true cosines.

Working store: ``location=":memory:"`` (default) or a directory of this index's own (wiped
at construction; one live index per directory; local mode persists every point to SQLite).
``save`` copies the collection into a fresh local-mode store under ``<snapshot>/qdrant``
and closes it; ``load`` copies that store to a scratch directory (opening a local store
writes a lock file, and a snapshot must stay byte-for-byte as its manifest says), reads
the points back into the working store, and deletes the scratch copy.

Local mode answers by brute force in numpy: exact, meant for development and galleries up
to some 10^4-10^5 faces. Production Qdrant is a server (``QdrantClient(url=...)``); the
adapter's calls are the same, see docs/index.md.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from index.base import IndexCorrupt, invalid
from index.labelled import LabelledIndex
from index.registry import register
from index.store import require

STORE_DIR = "qdrant"
_BATCH = 1024


def _close(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.close()


@register("qdrant")
class QdrantIndex(LabelledIndex):
    def __init__(
        self, *, dim: int, model_id: str, location: str = ":memory:", collection: str = "faces"
    ) -> None:
        super().__init__(dim=dim, model_id=model_id)
        if not collection.replace("_", "").replace("-", "").isalnum():
            raise invalid(f"collection must be letters, digits, '-' or '_', got {collection!r}")
        self._qdrant = require("qdrant_client", "qdrant-client", "qdrant")
        self._models = self._qdrant.models
        self._location, self._collection = location, collection
        self._client = self._open(location)
        self._finalizer = weakref.finalize(self, _close, self._client)
        self._reset_vectors()

    def _open(self, location: str) -> Any:
        if location == ":memory:":
            return self._qdrant.QdrantClient(location=":memory:")
        Path(location).mkdir(parents=True, exist_ok=True)
        return self._qdrant.QdrantClient(path=location)

    def close(self) -> None:
        self._finalizer()

    # --- LabelledIndex hooks

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError("qdrant stores payloads: _add_entries is used")

    def _add_entries(
        self, labels: np.ndarray, faces: list[str], persons: list[str], vectors: np.ndarray
    ) -> None:
        _upsert(self._client, self._models, self._collection, labels.tolist(), vectors, faces, persons)

    def _remove_vectors(self, labels: np.ndarray) -> None:
        selector = self._models.PointIdsList(points=labels.tolist())
        self._client.delete(self._collection, points_selector=selector, wait=True)

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        requests = [self._models.QueryRequest(query=row.tolist(), limit=k) for row in queries]
        answers = self._client.query_batch_points(self._collection, requests=requests)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        labels = np.full((len(queries), k), -1, dtype=np.int64)
        for row, answer in enumerate(answers):
            for col, point in enumerate(answer.points[:k]):
                scores[row, col], labels[row, col] = point.score, int(point.id)
        return scores, labels

    def _reset_vectors(self) -> None:
        if self._client.collection_exists(self._collection):
            self._client.delete_collection(self._collection)
        _create(self._client, self._models, self._collection, self.dim)

    def _vector_count(self) -> int:
        return int(self._client.count(self._collection, exact=True).count)

    def _stored_labels(self) -> np.ndarray:
        ids = [int(p.id) for p in _scroll(self._client, self._collection, vectors=False)]
        return np.asarray(ids, dtype=np.int64)

    def _vector_bytes(self) -> int:
        return len(self) * (self.dim * 4 + 200)  # vector + point object and payload, roughly

    def _options(self) -> dict[str, Any]:
        return {"location": self._location, "collection": self._collection}

    def _save_vectors(self, directory: Path) -> None:
        target = self._qdrant.QdrantClient(path=str(directory / STORE_DIR))
        try:
            _create(target, self._models, self._collection, self.dim)
            _copy(self._client, target, self._models, self._collection)
        finally:
            target.close()
        for lock in (directory / STORE_DIR).glob(".lock"):
            lock.unlink()

    def _load_vectors(self, directory: Path) -> None:
        if not (directory / STORE_DIR).is_dir():
            raise IndexCorrupt(f"{directory} holds no {STORE_DIR}/ store")
        with tempfile.TemporaryDirectory(prefix="facestream-qdrant-") as scratch:
            copy = Path(scratch) / STORE_DIR
            shutil.copytree(directory / STORE_DIR, copy)
            source = self._qdrant.QdrantClient(path=str(copy))
            try:
                if not source.collection_exists(self._collection):
                    raise IndexCorrupt(f"{directory / STORE_DIR} has no collection {self._collection!r}")
                self._reset_vectors()
                _copy(source, self._client, self._models, self._collection)
            finally:
                source.close()


def _create(client: Any, models: Any, collection: str, dim: int) -> None:
    params = models.VectorParams(size=dim, distance=models.Distance.COSINE)
    client.create_collection(collection, vectors_config=params)


def _upsert(
    client: Any,
    models: Any,
    collection: str,
    ids: list[int],
    vectors: np.ndarray,
    faces: list[str],
    persons: list[str],
) -> None:
    for start in range(0, len(ids), _BATCH):
        end = start + _BATCH
        payloads = [
            {"face_id": f, "person_id": p} for f, p in zip(faces[start:end], persons[start:end], strict=True)
        ]
        batch = models.Batch(ids=ids[start:end], vectors=vectors[start:end].tolist(), payloads=payloads)
        client.upsert(collection, points=batch, wait=True)


def _scroll(client: Any, collection: str, *, vectors: bool) -> Any:
    offset = None
    while True:
        points, offset = client.scroll(
            collection, limit=_BATCH, offset=offset, with_payload=vectors, with_vectors=vectors
        )
        yield from points
        if offset is None:
            return


def _copy(source: Any, target: Any, models: Any, collection: str) -> None:
    batch: list[Any] = []
    for point in _scroll(source, collection, vectors=True):
        batch.append(point)
        if len(batch) == _BATCH:
            _write(target, models, collection, batch)
            batch = []
    _write(target, models, collection, batch)


def _write(target: Any, models: Any, collection: str, points: list[Any]) -> None:
    if points:
        structs = [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points]
        target.upsert(collection, points=structs, wait=True)
