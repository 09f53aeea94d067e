"""An erasure's receipt from its ledger entry, the replicas' heartbeats and the projector's
committed offsets: pure, so that "done" is decided in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from api.erasure_ledger import LedgerEntry
from core.errors import ErrorCode, FacestreamError
from core.settings import TopicNames
from schemas.api import ErasureReceipt, ReplicaProgress, ShardProgress, TombstonePosition
from schemas.events import FaceErased, GalleryErased, PersonErased, ReplicaStatus


def has_applied(status: ReplicaStatus, tombstones: Mapping[int, int]) -> bool:
    """True when the replica has read past every tombstone in the partitions it holds."""
    held = set(status.partitions) or set(status.applied_offsets)
    return all(status.applied_offsets.get(p, 0) > offset for p, offset in tombstones.items() if p in held)


def receipt(
    erasure_id: str,
    entry: LedgerEntry,
    *,
    ready_replicas: Iterable[ReplicaStatus],
    projector_committed: Mapping[tuple[str, int], int],
    topics: TopicNames,
) -> ErasureReceipt:
    """Raises unknown_person / unknown_face when the log held nothing to erase."""
    outcome = entry.outcome
    if outcome is not None and not outcome.found:
        if isinstance(outcome, PersonErased):
            raise FacestreamError(
                ErrorCode.UNKNOWN_PERSON, f"the log holds no face of person {outcome.person_id!r}"
            )
        if isinstance(outcome, FaceErased):
            raise FacestreamError(ErrorCode.UNKNOWN_FACE, f"the log holds no face {outcome.face_id!r}")
    tombstones = dict(outcome.tombstones) if outcome is not None else {}
    replicas = [
        ReplicaProgress(
            replica_id=status.replica_id,
            group=status.group,
            partitions=sorted(status.partitions),
            applied=outcome is not None and has_applied(status, tombstones),
        )
        for status in sorted(ready_replicas, key=lambda s: s.replica_id)
    ]
    groups: dict[str, ShardProgress] = {}
    for progress in replicas:
        group = groups.setdefault(
            progress.group, ShardProgress(group=progress.group, partitions=[], applied=True)
        )
        group.partitions = sorted(set(group.partitions) | set(progress.partitions))
        group.applied = group.applied and progress.applied
    projected = outcome is not None and _projected(entry, tombstones, projector_committed, topics)
    waiting: list[str] = []
    if outcome is None:
        waiting.append("eraser")
    elif not all(r.applied for r in replicas):
        waiting.append("replicas")
    if not projected:
        waiting.append("projection")
    kind, person_id, face_ids = _subject(entry)
    return ErasureReceipt(
        erasure_id=erasure_id,
        kind=kind,
        gallery=entry.gallery,
        face_count=outcome.face_count if isinstance(outcome, GalleryErased) else None,
        person_id=person_id,
        face_ids=face_ids,
        status="done" if not waiting else "pending",
        waiting_for=waiting,  # type: ignore[arg-type]
        requested_at=entry.requested_at,
        erased_at=entry.outcome_at,
        tombstones=[TombstonePosition(partition=p, offset=o) for p, o in sorted(tombstones.items())],
        shards=sorted(groups.values(), key=lambda g: g.group),
        replicas=replicas,
        projection_applied=projected,
    )


Kind = Literal["person", "face", "gallery"]


def _subject(entry: LedgerEntry) -> tuple[Kind, str | None, list[str]]:
    """What was erased: from the eraser's fact once there, else from the request."""
    match entry.outcome:
        case PersonErased(person_id=person, face_ids=faces):
            return "person", person, list(faces)
        case FaceErased(person_id=person, face_id=face):
            return "face", person, [face]
        case GalleryErased():
            return "gallery", None, []
    requested = entry.requested
    return (requested.kind, requested.person_id, []) if requested else ("face", None, [])


def _projected(
    entry: LedgerEntry,
    tombstones: Mapping[int, int],
    committed: Mapping[tuple[str, int], int],
    topics: TopicNames,
) -> bool:
    """The projector committed past the outcome on the ledger and past every tombstone."""
    if entry.outcome_partition is None or entry.outcome_offset is None:
        return False
    if committed.get((topics.erasures, entry.outcome_partition), 0) <= entry.outcome_offset:
        return False
    return all(committed.get((topics.embeddings, p), 0) > offset for p, offset in tombstones.items())
