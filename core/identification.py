"""The one place that decides who a probe face is.

Each shard ranks persons by their best face in its partitions; a person's faces may sit in
several partitions, so the merge keeps each person's best similarity over all shards, and
only then compares the best with the threshold the request carried. The result is exactly
what one replica holding every partition would answer. The facade uses it for REST answers;
a consumer of the results topic merges the shard answers of one request the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.settings import Settings
from schemas.events import Candidate, FaceSearched, StageTimings


@dataclass(frozen=True)
class Identification:
    person_id: str | None
    similarity: float | None
    unknown: bool
    threshold: float
    candidates: list[Candidate]
    model: str
    gallery_size: int
    shards: list[str]
    timings: StageTimings


def merge(answers: Sequence[FaceSearched]) -> Identification:
    """Every shard's answer to one probe face -> the identification. The threshold and top-k
    were resolved once, by whoever accepted the request, and travel in every answer."""
    if not answers:
        raise ValueError("no shard answered")
    first = answers[0]
    best: dict[str, Candidate] = {}
    for answer in answers:
        for candidate in answer.candidates:
            current = best.get(candidate.person_id)
            if current is None or candidate.similarity > current.similarity:
                best[candidate.person_id] = candidate
    ranked = sorted(best.values(), key=lambda c: (-c.similarity, c.person_id))[: first.top_k]
    top = ranked[0] if ranked else None
    known = top is not None and top.similarity >= first.threshold
    # Identical shard groups (a blue/green pair during a swap) hold the same faces: count each
    # partition set once.
    sizes = {tuple(a.partitions) or (a.shard,): a.gallery_size for a in answers}
    return Identification(
        person_id=top.person_id if known and top else None,
        similarity=top.similarity if top else None,
        unknown=not known,
        threshold=first.threshold,
        candidates=ranked,
        model=first.model,
        gallery_size=sum(sizes.values()),
        shards=sorted({a.shard for a in answers}),
        timings=max(answers, key=lambda a: a.timings.search_ms).timings,
    )


@dataclass(frozen=True)
class IdentifyPolicy:
    top_k: int
    threshold: float


def resolve_policy(settings: Settings, *, top_k: int | None, threshold: float | None) -> IdentifyPolicy:
    """The request's own values, else this deployment's. Called once per request by the stage
    that accepts it (the facade; the identify worker only for a camera's command that carries
    none), and carried in the messages from there on."""
    return IdentifyPolicy(
        top_k=top_k or settings.top_k,
        threshold=settings.threshold if threshold is None else threshold,
    )
