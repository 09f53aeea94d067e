"""Model migration without re-enrollment: re-embed the retained enrollment images under another
model pack into a new embeddings topic, and compare the two galleries on a labelled set.

The serving pipeline is untouched: the new topic and its index exist beside the current ones,
and the switch is a configuration change the operator makes when the comparison satisfies them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.crypto import ImageCipher
from core.errors import ErrorCode, FacestreamError
from core.kafka import LogCut, decode, encode, key_bytes, make_consumer, make_producer
from core.logging import get_logger
from core.settings import Settings
from core.vectors import to_embedding
from engine.types import Engine
from index.base import VectorIndex, search_persons
from schemas.envelope import Envelope
from schemas.events import EnrollmentImage, FaceEmbedded
from streams.handlers.enroll import embedding_headers

log = get_logger(__name__)

BATCH = 32


@dataclass(frozen=True)
class ReembedReport:
    target_topic: str
    model: str
    images: int
    embedded: int
    tombstones: int
    failed: dict[str, int]
    seconds: float
    images_per_s: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _embed(engine: Engine, images: list[EnrollmentImage], opened: list[bytes]) -> list[FaceEmbedded | str]:
    """CPU work, in a thread: the new pack's fact for each image, or why it failed."""
    prepared: list[object] = []
    for data in opened:
        try:
            prepared.append(engine.prepare(data))
        except FacestreamError as exc:
            prepared.append(exc.code.value)
    ready = [p for p in prepared if not isinstance(p, str)]
    crops = [p.faces[0].crop for p in ready]  # type: ignore[attr-defined]
    embedded, qualities = engine.embed_scored(crops) if crops else (np.zeros((0, 0)), None)
    vectors = iter(embedded)
    # The new pack's own quality (its embedding norm where it calibrates one), not the old one's.
    scores = iter(qualities if qualities is not None else [None] * len(crops))
    results: list[FaceEmbedded | str] = []
    for image, outcome in zip(images, prepared, strict=True):
        if isinstance(outcome, str):
            results.append(outcome)
            continue
        face = outcome.faces[0]  # type: ignore[attr-defined]
        score = next(scores)
        results.append(
            FaceEmbedded(
                face_id=image.face_id,
                person_id=image.person_id,
                gallery=image.gallery,
                enrollment_id=image.enrollment_id,
                embedding=to_embedding(next(vectors), engine.model),
                quality=face.quality if score is None else round(float(score), 4),
                det_score=face.det_score,
                bbox=face.bbox,
                content_hash=image.content_hash,
                filename=image.filename,
            )
        )
    return results


async def reembed(settings: Settings, engine: Engine, *, target_topic: str) -> ReembedReport:
    """Every retained image (up to the end offsets seen at start) through `engine`, onto
    `target_topic` under the same face ids; erasures (tombstones) are carried over."""
    source = settings.topics.enrollment_images
    cipher = ImageCipher(settings.image_encryption_key.get_secret_value())
    consumer = make_consumer(settings, group_id=None)
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    started = time.perf_counter()
    images = embedded = tombstones = 0
    failed: Counter[str] = Counter()
    try:
        async for records in LogCut(consumer, source).batches(max_records=BATCH):
            batch: list[EnrollmentImage] = []
            opened: list[bytes] = []
            for record in records:
                if record.value is None:
                    tombstones += 1
                    await producer.send_and_wait(target_topic, None, record.key)
                    continue
                images += 1
                try:
                    image = decode(record.value, EnrollmentImage).payload
                    opened.append(
                        cipher.open(image.image, bound_to=image.face_id) if image.sealed else image.image
                    )
                    batch.append(image)
                except FacestreamError as exc:
                    failed[exc.code.value] += 1
            if batch:
                for result in await asyncio.to_thread(_embed, engine, batch, opened):
                    if isinstance(result, str):
                        failed[result] += 1
                        continue
                    envelope = Envelope.wrap(result, correlation_id=result.enrollment_id)
                    headers = [(k, v.encode()) for k, v in embedding_headers(result).items()]
                    await producer.send(
                        target_topic, encode(envelope), key_bytes(result.face_id), headers=headers
                    )
                    embedded += 1
                await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    seconds = time.perf_counter() - started
    return ReembedReport(
        target_topic=target_topic,
        model=engine.model.id,
        images=images,
        embedded=embedded,
        tombstones=tombstones,
        failed=dict(failed),
        seconds=round(seconds, 3),
        images_per_s=round(images / seconds, 2) if seconds else 0.0,
    )


def compare_galleries(
    labelled: dict[str, list[Path]],
    current: tuple[Engine, VectorIndex],
    candidate: tuple[Engine, VectorIndex],
) -> dict[str, object]:
    """Rank-1 answers of both galleries on a labelled set: how often they agree, and how often
    each names the folder's person."""
    photos = agree = right_current = right_candidate = 0
    refused: Counter[str] = Counter()
    for person, paths in labelled.items():
        for path in paths:
            data = path.read_bytes()
            answers: list[str | None] = []
            for engine, index in (current, candidate):
                try:
                    prepared = engine.prepare(data)
                except FacestreamError as exc:
                    answers.append(None)
                    refused[exc.code.value] += 1
                    continue
                (matches,) = search_persons(index, engine.embed([prepared.faces[0].crop]), 1)
                answers.append(matches[0].person_id if matches else None)
            photos += 1
            agree += answers[0] == answers[1]
            right_current += answers[0] == person
            right_candidate += answers[1] == person
    if not photos:
        raise FacestreamError(ErrorCode.INVALID_PARAMETER, "the labelled set has no photos")
    return {
        "photos": photos,
        "agreement": round(agree / photos, 4),
        "rank1_current": round(right_current / photos, 4),
        "rank1_candidate": round(right_candidate / photos, 4),
        "refused": dict(refused),
    }
