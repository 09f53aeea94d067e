"""Merging the answers of several shards into one identification.

Each shard ranks persons by their best face in its partitions; a person's faces may sit in
several partitions, so the merge keeps each person's best similarity over all shards. The
result is exactly what one replica holding every partition would answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.events import Candidate, FaceIdentified, StageTimings


@dataclass(frozen=True)
class Merged:
    person_id: str | None
    similarity: float | None
    unknown: bool
    threshold: float
    candidates: list[Candidate]
    model: str
    gallery_size: int
    shards: list[str]
    timings: StageTimings


def merge_answers(answers: Sequence[FaceIdentified], *, top_k: int) -> Merged:
    best: dict[str, Candidate] = {}
    for answer in answers:
        for candidate in answer.candidates:
            current = best.get(candidate.person_id)
            if current is None or candidate.similarity > current.similarity:
                best[candidate.person_id] = candidate
    ranked = sorted(best.values(), key=lambda c: (-c.similarity, c.person_id))[:top_k]
    first = answers[0]
    top = ranked[0] if ranked else None
    known = top is not None and top.similarity >= first.threshold
    # Identical shard groups (a blue/green pair during a swap) hold the same faces: count each
    # partition set once.
    sizes = {tuple(a.partitions) or (a.shard,): a.gallery_size for a in answers}
    return Merged(
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
