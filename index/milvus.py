"""``milvus``: a Milvus collection through pymilvus' ``MilvusClient`` on Milvus Lite (a local file).

Entities: primary key ``id`` = the face's int64 label, ``vector`` = the unit embedding,
``face_id`` and ``person_id`` as fields; metric ``IP`` on unit vectors, i.e. true cosine;
``consistency_level="Strong"`` so a search sees every earlier insert and delete.

Working store: ``uri`` (a ``*.db`` path of this index's own, wiped at construction) or, by
default, a scratch directory the index creates and deletes when closed or collected.
``save`` copies the collection into a fresh Milvus Lite store ``<snapshot>/milvus.db`` and
closes it; ``load`` copies that store to scratch (opening writes lock and WAL files, and a
snapshot must stay byte-for-byte as its manifest says), reads it back into the working
store, and deletes the scratch copy. ``index_type`` (``FLAT`` default: exact) is passed to
Milvus. Against a Milvus server the same calls apply with ``uri="http://host:19530"``;
see docs/index.md.
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

STORE_FILE = "milvus.db"
_BATCH = 1000
_MAX_LIMIT = 16_384  # Milvus' top-k limit


def _release(client: Any, scratch: str | None) -> None:
    with contextlib.suppress(Exception):
        client.close()
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


@register("milvus")
class MilvusIndex(LabelledIndex):
    def __init__(
        self,
        *,
        dim: int,
        model_id: str,
        uri: str | None = None,
        collection: str = "faces",
        index_type: str = "FLAT",
    ) -> None:
        super().__init__(dim=dim, model_id=model_id)
        if not collection.replace("_", "").isalnum() or not collection[0].isalpha():
            raise invalid(
                f"collection must start with a letter and hold letters, digits, '_': {collection!r}"
            )
        self._pymilvus = require("pymilvus", "pymilvus[milvus_lite]", "milvus")
        self._uri, self._collection, self._index_type = uri, collection, index_type
        scratch = None
        if uri is None:
            scratch = tempfile.mkdtemp(prefix="facestream-milvus-")
            uri = str(Path(scratch) / STORE_FILE)
        self._client = self._pymilvus.MilvusClient(uri)
        self._finalizer = weakref.finalize(self, _release, self._client, scratch)
        self._reset_vectors()

    def close(self) -> None:
        self._finalizer()

    # --- LabelledIndex hooks

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError("milvus stores the ids as fields: _add_entries is used")

    def _add_entries(
        self, labels: np.ndarray, faces: list[str], persons: list[str], vectors: np.ndarray
    ) -> None:
        rows = [
            {"id": label, "vector": vector, "face_id": face, "person_id": person}
            for label, vector, face, person in zip(
                labels.tolist(), vectors.tolist(), faces, persons, strict=True
            )
        ]
        _insert(self._client, self._collection, rows)

    def _remove_vectors(self, labels: np.ndarray) -> None:
        self._client.delete(self._collection, ids=labels.tolist())

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        labels = np.full((len(queries), k), -1, dtype=np.int64)
        if k > _MAX_LIMIT:
            raise invalid(f"milvus answers at most {_MAX_LIMIT} neighbours, {k} asked")
        answers = self._client.search(self._collection, data=queries.tolist(), limit=k, output_fields=["id"])
        for row, hits in enumerate(answers):
            for col, hit in enumerate(list(hits)[:k]):
                scores[row, col], labels[row, col] = hit["distance"], int(hit["id"])
        return scores, labels

    def _reset_vectors(self) -> None:
        if self._client.has_collection(self._collection):
            self._client.drop_collection(self._collection)
        _create(self._pymilvus, self._client, self._collection, self.dim, self._index_type)

    def _vector_count(self) -> int:
        result = self._client.query(self._collection, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def _stored_labels(self) -> np.ndarray:
        ids = [int(row["id"]) for row in _scan(self._client, self._collection, ["id"])]
        return np.asarray(ids, dtype=np.int64)

    def _vector_bytes(self) -> int:
        return len(self) * (self.dim * 4 + 200)  # vector + id fields and row overhead, roughly

    def _options(self) -> dict[str, Any]:
        return {"uri": self._uri, "collection": self._collection, "index_type": self._index_type}

    def _save_vectors(self, directory: Path) -> None:
        target = self._pymilvus.MilvusClient(str(directory / STORE_FILE))
        try:
            _create(self._pymilvus, target, self._collection, self.dim, self._index_type)
            _copy(self._client, target, self._collection)
        finally:
            target.close()
        for lock in (directory / STORE_FILE).rglob("LOCK"):
            lock.unlink()

    def _load_vectors(self, directory: Path) -> None:
        if not (directory / STORE_FILE).exists():
            raise IndexCorrupt(f"{directory} holds no {STORE_FILE} store")
        with tempfile.TemporaryDirectory(prefix="facestream-milvus-") as scratch:
            copy = Path(scratch) / STORE_FILE
            shutil.copytree(directory / STORE_FILE, copy)
            source = self._pymilvus.MilvusClient(str(copy))
            try:
                if not source.has_collection(self._collection):
                    raise IndexCorrupt(f"{directory / STORE_FILE} has no collection {self._collection!r}")
                source.load_collection(self._collection)
                self._reset_vectors()
                _copy(source, self._client, self._collection)
            finally:
                source.close()


def _create(pymilvus: Any, client: Any, collection: str, dim: int, index_type: str) -> None:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
    schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("face_id", pymilvus.DataType.VARCHAR, max_length=512)
    schema.add_field("person_id", pymilvus.DataType.VARCHAR, max_length=512)
    client.create_collection(collection, schema=schema, consistency_level="Strong")
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type=index_type, metric_type="IP")
    # sync=False: pymilvus would poll every 0.5 s for an index over an empty collection.
    client.create_index(collection, index, sync=False)
    client.load_collection(collection)


def _insert(client: Any, collection: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _BATCH):
        client.insert(collection, rows[start : start + _BATCH])


def _scan(client: Any, collection: str, fields: list[str]) -> Any:
    iterator = client.query_iterator(collection, batch_size=_BATCH, filter="", output_fields=fields)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def _copy(source: Any, target: Any, collection: str) -> None:
    rows: list[dict[str, Any]] = []
    for row in _scan(source, collection, ["id", "vector", "face_id", "person_id"]):
        rows.append({key: row[key] for key in ("id", "vector", "face_id", "person_id")})
        if len(rows) == _BATCH:
            _insert(target, collection, rows)
            rows = []
    _insert(target, collection, rows)
