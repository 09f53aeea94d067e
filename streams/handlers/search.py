"""Answering an IdentifyQuery from the index: this shard's ranked candidates, no decision."""

from __future__ import annotations

from collections.abc import Sequence

from index.base import PersonMatch
from schemas.events import Candidate, FaceSearched, IdentifyQuery, StageTimings


def answer(
    query: IdentifyQuery,
    matches: Sequence[PersonMatch],
    *,
    replica_id: str,
    gallery_size: int,
    search_ms: float,
    shard: str = "",
    partitions: Sequence[int] = (),
) -> FaceSearched:
    return FaceSearched(
        request_id=query.request_id,
        candidates=[
            Candidate(person_id=m.person_id, similarity=round(float(m.similarity), 6), face_id=m.face_id)
            for m in matches[: query.top_k]
        ],
        threshold=query.threshold,
        top_k=query.top_k,
        model=query.embedding.model.id,
        bbox=query.bbox,
        quality=query.quality,
        replica_id=replica_id,
        gallery_size=gallery_size,
        timings=StageTimings(**{**query.timings.model_dump(), "search_ms": search_ms}),
        shard=shard,
        partitions=list(partitions),
        face_index=query.face_index,
        face_count=query.face_count,
    )
