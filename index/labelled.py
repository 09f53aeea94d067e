"""The bookkeeping every backend shares, so that a backend only stores vectors under int64 labels.

``LabelledIndex`` keeps face id <-> label and label -> person id, validates and normalises
input (see ``index.base``), implements upsert, erasure, ``k`` clipping, save/load of the id
maps and stats. A backend implements the ``_..._vectors`` hooks over int64 labels. Labels
come from a counter that only grows (an upsert gives the face a fresh one), so a label never
names two faces; ``save``/``load`` preserve labels and the counter.
"""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from index.base import (
    Hit,
    IndexCorrupt,
    IndexStats,
    check_k,
    check_model,
    invalid,
    unit_rows,
)
from index.pacing import throttle

META_FILE = "meta.json"
IDS_FILE = "ids.json"
_SAVE_FORMAT = 1
# Rough cost of one face's bookkeeping: two short str objects, an int, three dict slots.
_BYTES_PER_FACE = 260
_JSON_SLICE = 20_000
# Beyond this many faces in one change, person -> labels is dropped and rebuilt when needed.
_LAZY_PERSONS = 1000


class FrozenVectors(Protocol):
    """A backend's vectors as they were when frozen, writable to a directory later."""

    def save(self, directory: Path) -> None: ...


def _check_ids(face_ids: Sequence[str], person_ids: Sequence[str], n: int) -> None:
    for name, ids in (("face_ids", face_ids), ("person_ids", person_ids)):
        if isinstance(ids, str | bytes):
            raise invalid(f"{name} must be a sequence of strings, not a single string")
        if len(ids) != n:
            raise invalid(f"{len(ids)} {name} given for {n} vectors")
        if set(map(type, ids)) - {str} or "" in ids:  # in C; the loop below names the culprit
            for value in ids:
                if not isinstance(value, str) or not value:
                    raise invalid(f"{name} must be non-empty strings, got {value!r}")


class LabelledIndex(ABC):
    backend: ClassVar[str] = ""
    _labels_by_face: dict[str, int] | None  # None: not built yet (after a load), see _label_of
    _face_of: dict[int, str]
    _person_of: dict[int, str]
    _labels_of_person: dict[str, set[int]] | None  # None: not built yet (after a load)
    _next_label: int

    def __init__(self, *, dim: int, model_id: str) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise invalid(f"dim must be a positive integer, got {dim!r}")
        if not isinstance(model_id, str) or not model_id:
            raise invalid("model_id must be a non-empty string")
        self._dim = dim
        self._model_id = model_id
        self._forget_all()

    # --- what a backend implements

    @abstractmethod
    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Store unit float32 rows under new int64 labels (none of them present)."""

    def _add_entries(
        self, labels: np.ndarray, faces: list[str], persons: list[str], vectors: np.ndarray
    ) -> None:
        """``_add_vectors`` with the ids, for stores that keep them as payload (Qdrant, Milvus)."""
        self._add_vectors(labels, vectors)

    @abstractmethod
    def _remove_vectors(self, labels: np.ndarray) -> None:
        """Drop the rows of these int64 labels (all of them present)."""

    @abstractmethod
    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner products and labels ``(n, k)``, best first; label -1 where there is none.

        ``1 <= k <= len(self)`` holds.
        """

    @abstractmethod
    def _reset_vectors(self) -> None:
        """Drop every row."""

    @abstractmethod
    def _vector_count(self) -> int: ...

    @abstractmethod
    def _vector_bytes(self) -> int:
        """Estimate of the memory the stored vectors take."""

    @abstractmethod
    def _save_vectors(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_vectors(self, directory: Path) -> None:
        """Replace the rows with those ``_save_vectors`` wrote; may raise anything."""

    def _freeze_vectors(self) -> FrozenVectors | None:
        """The vectors as they are now, unaffected by later changes (copy or copy-on-write),
        cheap enough to take between two applied batches; None where the backend cannot."""
        return None

    def _prepare_vectors(self, adding: int, overwriting: bool) -> None:  # noqa: B027 (optional hook)
        """Do now, with searches still running, the copying the next change would need."""

    def _stored_labels(self) -> np.ndarray | None:
        """The labels the backend holds, if it can tell; checked against the ids on load."""
        return None

    def _options(self) -> dict[str, Any]:
        """Constructor keyword arguments besides dim and model_id, saved and passed on load."""
        return {}

    # --- the VectorIndex interface

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return self._model_id

    def __len__(self) -> int:
        return len(self._face_of)

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._label_of

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self._dim}, model_id={self._model_id!r}, size={len(self)})"

    def person_of(self, face_id: str) -> str | None:
        label = self._label_of.get(face_id)
        return None if label is None else self._person_of[label]

    def add(
        self,
        face_ids: Sequence[str],
        person_ids: Sequence[str],
        vectors: np.ndarray,
        *,
        model_id: str | None = None,
    ) -> None:
        faces, persons, rows = self._prepare(face_ids, person_ids, vectors, model_id)
        self._apply(faces, persons, rows)

    def rebuild(
        self,
        face_ids: Sequence[str],
        person_ids: Sequence[str],
        vectors: np.ndarray,
        *,
        model_id: str | None = None,
    ) -> None:
        faces, persons, rows = self._prepare(face_ids, person_ids, vectors, model_id)
        self._reset_vectors()
        self._forget_all()
        self._apply(faces, persons, rows)

    def remove(self, face_ids: Iterable[str]) -> int:
        if isinstance(face_ids, str | bytes):
            raise invalid("face_ids must be a sequence of strings, not a single string")
        labels = sorted({self._label_of[f] for f in face_ids if f in self._label_of})
        if labels:
            self._remove_vectors(np.asarray(labels, dtype=np.int64))
            for label in labels:
                self._forget(label)
        return len(labels)

    def remove_person(self, person_id: str) -> int:
        labels = self._by_person().get(person_id, set())
        return self.remove([self._face_of[label] for label in labels])

    def search(self, queries: np.ndarray, k: int, *, model_id: str | None = None) -> list[list[Hit]]:
        check_model(self._model_id, model_id)
        k = check_k(k)
        rows = unit_rows(queries, self._dim)
        if rows.shape[0] == 0:
            return []
        if not self._face_of:
            return [[] for _ in range(rows.shape[0])]
        scores, labels = self._search_vectors(rows, min(k, len(self)))
        face_of, person_of = self._face_of, self._person_of
        return [
            [
                Hit(face, person_of[label], min(max(score, -1.0), 1.0))
                for score, label in zip(row_scores, row_labels, strict=True)
                if (face := face_of.get(label)) is not None
            ]
            for row_scores, row_labels in zip(scores.tolist(), labels.tolist(), strict=True)
        ]

    def stats(self) -> IndexStats:
        # Persons counted, not mapped: after a bulk add the person -> labels map is dropped,
        # and building it to count (1M faces: 0.36 s, a set 0.06 s) held a snapshot up.
        by_person = self._labels_of_person
        persons = len(by_person) if by_person is not None else len(set(self._person_of.values()))
        maps = (self._label_of, self._face_of, self._person_of)  # the person map comes and goes
        bookkeeping = sum(sys.getsizeof(d) for d in maps)
        return IndexStats(
            backend=self.backend,
            size=len(self),
            dim=self._dim,
            model_id=self._model_id,
            persons=persons,
            memory_bytes=self._vector_bytes() + bookkeeping + _BYTES_PER_FACE * len(self),
        )

    def save(self, path: Path) -> None:
        self._ids_now().save(path, self._save_vectors)

    def frozen(self) -> FrozenIndex | None:
        """This index as it is now, saveable later while the index goes on changing.

        Cheap (lists of the ids, the vectors copy-on-write); None where the backend cannot
        freeze its vectors, and the caller must keep changes out while it saves.
        """
        vectors = self._freeze_vectors()
        return None if vectors is None else FrozenIndex(self._ids_now(), vectors)

    def prepare_changes(self, faces: Iterable[str], removals: Iterable[str]) -> None:
        """Get ready to add ``faces`` and remove ``removals`` without copying under a lock.

        Reads the index only (safe beside a search): a backend that shares its storage with a
        frozen view or a mapped file, or that must grow it, copies it here, so the change that
        follows under the caller's lock is cheap. Optional: changes work without it.
        """
        faces = list(faces)
        overwriting = any(f in self._label_of for f in faces) or any(f in self._label_of for f in removals)
        self._prepare_vectors(len(faces), overwriting)

    def reserve(self, adding: int) -> None:
        """Make room now for ``adding`` more faces (a rebuild that knows how many come), so
        that the adds that follow do not grow the storage step by step."""
        self._prepare_vectors(adding, False)

    def settle(self) -> int:
        """Move the vectors written since the last call into faster memory, where the backend
        has any (``faiss-flat``: huge pages, ``index.memory.settle``); safe beside searches and
        changes, meant for a background thread. Returns the bytes of vectors settled in all."""
        return 0

    def _ids_now(self) -> _Ids:
        # _face_of and _person_of are filled and emptied together: the same key order.
        return _Ids(
            backend=self.backend,
            dim=self._dim,
            model_id=self._model_id,
            options=self._options(),
            next_label=self._next_label,
            labels=list(self._face_of),
            faces=list(self._face_of.values()),
            persons=list(self._person_of.values()),
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
            ids = json.loads((path / IDS_FILE).read_text(encoding="utf-8"))
            if meta["format"] != _SAVE_FORMAT or meta["backend"] != cls.backend:
                raise IndexCorrupt(
                    f"{path} holds a {meta['backend']!r} index in format {meta['format']},"
                    f" not {cls.backend!r} format {_SAVE_FORMAT}"
                )
            index = cls(dim=int(meta["dim"]), model_id=str(meta["model_id"]), **meta["options"])
            index._load_vectors(path)
            index._restore_ids(ids["labels"], ids["face_ids"], ids["person_ids"])
            index._next_label = max(int(meta["next_label"]), index._next_label)
        except IndexCorrupt:
            raise
        except Exception as exc:
            raise IndexCorrupt(f"cannot load a {cls.backend!r} index from {path}: {exc!r}") from exc
        if len(index) != int(meta["size"]) or index._vector_count() != len(index):
            raise IndexCorrupt(
                f"{path}: {meta['size']} faces announced, {len(index)} ids and"
                f" {index._vector_count()} vectors found"
            )
        stored = index._stored_labels()
        if stored is not None:
            known = np.fromiter(index._face_of, dtype=np.int64, count=len(index))
            if not np.array_equal(np.sort(stored), np.sort(known)):
                raise IndexCorrupt(f"{path}: the stored vectors' labels do not match the ids")
        return index

    # --- bookkeeping

    def _prepare(
        self,
        face_ids: Sequence[str],
        person_ids: Sequence[str],
        vectors: np.ndarray,
        model_id: str | None,
    ) -> tuple[list[str], list[str], np.ndarray]:
        check_model(self._model_id, model_id)
        rows = unit_rows(vectors, self._dim)
        _check_ids(face_ids, person_ids, rows.shape[0])
        last = dict(zip(face_ids, range(len(face_ids)), strict=True))  # within a batch, last wins
        if len(last) == len(face_ids):
            return list(face_ids), list(person_ids), rows
        keep = sorted(last.values())
        return [face_ids[i] for i in keep], [person_ids[i] for i in keep], rows[keep]

    def _apply(self, faces: list[str], persons: list[str], rows: np.ndarray) -> None:
        if not faces:
            return
        label_of = self._label_of
        if label_of and not label_of.keys().isdisjoint(faces):  # a set operation, in C
            replaced = sorted(label_of[f] for f in faces if f in label_of)
            if replaced:
                self._remove_vectors(np.asarray(replaced, dtype=np.int64))
                for label in replaced:
                    self._forget(label)
        labels = np.arange(self._next_label, self._next_label + len(faces), dtype=np.int64)
        self._add_entries(labels, faces, persons, rows)
        self._next_label += len(faces)
        self._remember_all(labels.tolist(), faces, persons)

    def _remember_all(self, labels: list[int], faces: list[str], persons: list[str]) -> None:
        """The new faces' id maps grow by ``dict.update(zip(...))``, in C."""
        self._label_of.update(zip(faces, labels, strict=True))
        self._face_of.update(zip(labels, faces, strict=True))
        self._person_of.update(zip(labels, persons, strict=True))
        by_person = self._labels_of_person
        if by_person is None:
            return
        if len(labels) > _LAZY_PERSONS:
            self._labels_of_person = None  # rebuilt on its first use (an erasure, stats)
            return
        for label, person_id in zip(labels, persons, strict=True):
            by_person.setdefault(person_id, set()).add(label)

    def face_ids(self) -> list[str]:
        """Every face id held, in no particular order."""
        return list(self._face_of.values())

    def _restore_ids(self, labels: list[int], faces: list[str], persons: list[str]) -> None:
        n = len(labels)
        if not (n == len(faces) == len(persons)):
            raise ValueError("id lists of different lengths")
        if self._face_of or not all(type(label) is int for label in labels):
            raise ValueError("labels must be integers, restored into an empty index")
        # Built by dict(zip(...)) in C. Face id -> label (hashing a million new strings: about
        # as long as the rest together) and person -> labels wait for their first use: a
        # restored replica serves searches without them. The snapshot's checksums vouch for
        # the saved ids; labels are checked unique here.
        self._face_of = dict(zip(labels, faces, strict=True))
        self._person_of = dict(zip(labels, persons, strict=True))
        if len(self._face_of) != n:
            raise ValueError("duplicate labels")
        self._labels_by_face = None
        self._labels_of_person = None
        self._next_label = max(labels, default=-1) + 1

    @property
    def _label_of(self) -> dict[str, int]:
        by_face = self._labels_by_face
        if by_face is None:
            by_face = dict(zip(self._face_of.values(), self._face_of, strict=True))
            self._labels_by_face = by_face
        return by_face

    def _by_person(self) -> dict[str, set[int]]:
        by_person = self._labels_of_person
        if by_person is None:
            by_person = {}
            for label, person_id in self._person_of.items():
                by_person.setdefault(person_id, set()).add(label)
            self._labels_of_person = by_person
        return by_person

    def _forget(self, label: int) -> None:
        face_id = self._face_of.pop(label)
        person_id = self._person_of.pop(label)
        del self._label_of[face_id]
        if self._labels_of_person is None:
            return
        labels = self._labels_of_person[person_id]
        labels.discard(label)
        if not labels:
            del self._labels_of_person[person_id]

    def _forget_all(self) -> None:
        self._labels_by_face = {}
        self._face_of = {}
        self._person_of = {}
        self._labels_of_person = {}
        self._next_label = 0


@dataclass(frozen=True, slots=True)
class _Ids:
    """The id maps of an index at one moment, and what ``save`` writes besides the vectors."""

    backend: str
    dim: int
    model_id: str
    options: dict[str, Any]
    next_label: int
    labels: list[int]
    faces: list[str]
    persons: list[str]

    def save(self, path: Path, save_vectors: Callable[[Path], None]) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": _SAVE_FORMAT,
            "backend": self.backend,
            "dim": self.dim,
            "model_id": self.model_id,
            "size": len(self.labels),
            "next_label": self.next_label,
            "options": self.options,
        }
        ids: dict[str, list[Any]] = {
            "labels": self.labels,
            "face_ids": self.faces,
            "person_ids": self.persons,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        _write_json_lists(path / IDS_FILE, ids)
        save_vectors(path)


def _write_json_lists(path: Path, lists: dict[str, list[Any]]) -> None:
    """``json.dump(lists)``, encoded a slice at a time: one ``json.dumps`` of a million ids
    holds the GIL for a third of a second, and a snapshot is written beside searches."""
    with path.open("w", encoding="utf-8") as file:
        file.write("{")
        for n, (key, values) in enumerate(lists.items()):
            file.write(("," if n else "") + json.dumps(key) + ":[")
            for start in range(0, len(values), _JSON_SLICE):
                piece = json.dumps(values[start : start + _JSON_SLICE], separators=(",", ":"))
                file.write(("," if start else "") + piece[1:-1])
                throttle(len(piece))
            file.write("]")
        file.write("}")


class FrozenIndex:
    """What ``write_snapshot`` needs of an index, frozen at one moment (``LabelledIndex.frozen``)."""

    def __init__(self, ids: _Ids, vectors: FrozenVectors) -> None:
        self._ids, self._vectors = ids, vectors

    @property
    def backend(self) -> str:
        return self._ids.backend

    @property
    def dim(self) -> int:
        return self._ids.dim

    @property
    def model_id(self) -> str:
        return self._ids.model_id

    def __len__(self) -> int:
        return len(self._ids.labels)

    def save(self, path: Path) -> None:
        self._ids.save(path, self._vectors.save)

    def stats(self) -> IndexStats:
        return IndexStats(
            backend=self.backend,
            size=len(self),
            dim=self.dim,
            model_id=self.model_id,
            persons=len(set(self._ids.persons)),
            memory_bytes=0,
        )
