"""Answering an IdentifyQuery from the index: best person, or unknown below the threshold."""

from __future__ import annotations

from collections.abc import Sequence

from index.base import PersonMatch
from schemas.events import Candidate, FaceIdentified, IdentifyQuery, StageTimings


def answer(
    query: IdentifyQuery,
    matches: Sequence[PersonMatch],
    *,
    replica_id: str,
    gallery_size: int,
    search_ms: float,
    shard: str = "",
    partitions: Sequence[int] = (),
) -> FaceIdentified:
    candidates = [
        Candidate(person_id=m.person_id, similarity=round(float(m.similarity), 6), face_id=m.face_id)
        for m in matches[: query.top_k]
    ]
    best = candidates[0] if candidates else None
    known = best is not None and best.similarity >= query.threshold
    return FaceIdentified(
        request_id=query.request_id,
        person_id=best.person_id if known and best else None,
        similarity=best.similarity if best else None,
        unknown=not known,
        threshold=query.threshold,
        candidates=candidates,
        model=query.embedding.model.id,
        bbox=query.bbox,
        replica_id=replica_id,
        gallery_size=gallery_size,
        timings=StageTimings(**{**query.timings.model_dump(), "search_ms": search_ms}),
        shard=shard,
        partitions=list(partitions),
        face_index=query.face_index,
        face_count=query.face_count,
    )
