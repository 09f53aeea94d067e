#!/usr/bin/env python3
"""Edge / camera example: publish one photo onto the identify request topic, print the answer.

Self-contained on purpose (aiokafka only): an edge box does not install facestream. It writes
the documented envelope (schemas/envelope.py, schemas/events.py `IdentifyFace`) and reads the
shared results topic, where answers to producers that name no reply topic are published.

Each replica group answers with a `FaceSearched`: its ranked candidates and the threshold the
request resolved to. With one replica group (the default) that record is the whole answer;
with several, merge the answers of one request as `core.identification.merge` does (each
person's best similarity over the groups; known when the best reaches the threshold).

Identification runs against one gallery: `--gallery` (default `default`, the gallery of the
routes without one) goes into the command's `gallery` field and, for any other gallery, into a
`gallery` Kafka header. A gallery that does not exist or is being deleted is answered with a
failure carrying the code `unknown_gallery` or `gallery_deleting`.

    FACESTREAM_KAFKA_BOOTSTRAP=127.0.0.1:19092 python clients/edge_producer.py photo.jpg
    python clients/edge_producer.py --gallery watchlist photo.jpg
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import struct
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

DEFAULT_GALLERY = "default"
# schemas/events.py GALLERY_ID_PATTERN: 1-63 of [a-z0-9_-], starting alphanumeric.
GALLERY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def identify_record(image: bytes, *, request_id: str, camera: str, gallery: str = DEFAULT_GALLERY) -> bytes:
    """The binary command (core/image_records.py): b"FSI1", the metadata's length (u32 LE),
    the envelope as JSON without the image, then the image bytes as they are. (A JSON
    envelope with the image base64-encoded in `payload.image` is accepted too.)"""
    envelope = {
        "event_id": uuid.uuid4().hex,
        "type": "IdentifyFace",
        "schema_version": 1,
        "time": datetime.now(UTC).isoformat(),
        "correlation_id": request_id,
        "payload": {"request_id": request_id, "gallery": gallery, "source": camera},
    }
    meta = json.dumps(envelope).encode()
    return b"FSI1" + struct.pack("<I", len(meta)) + meta + image


def record_headers(request_id: str, gallery: str = DEFAULT_GALLERY) -> list[tuple[str, bytes]]:
    """Kafka headers of the command: the correlation id, the type, and the gallery (only for a
    gallery other than `default`, as the pipeline writes them)."""
    headers = [("correlation_id", request_id.encode()), ("event_type", b"IdentifyFace")]
    if gallery != DEFAULT_GALLERY:
        headers.append(("gallery", gallery.encode()))
    return headers


def gallery_id(value: str) -> str:
    """argparse type: a gallery id, checked before anything is sent."""
    if not GALLERY_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a gallery id (1-63 of [a-z0-9_-], starting with a letter or digit)"
        )
    return value


async def identify(
    image: bytes, *, bootstrap: str, prefix: str, camera: str, gallery: str = DEFAULT_GALLERY
) -> dict:
    requests = f"{prefix}.identify.requests.v1"
    results = f"{prefix}.identify.results.v1"
    request_id = uuid.uuid4().hex
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_request_size=32 * 2**20
    )
    await consumer.start()
    await producer.start()
    try:
        # Listen from the current end before publishing, so the answer cannot slip past.
        partitions = [TopicPartition(results, p) for p in consumer.partitions_for_topic(results) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(results, p) for p in consumer.partitions_for_topic(results) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        await producer.send_and_wait(
            requests,
            identify_record(image, request_id=request_id, camera=camera, gallery=gallery),
            key=request_id.encode(),
            headers=record_headers(request_id, gallery),
        )
        async for record in consumer:
            answer = json.loads(record.value)
            if answer.get("correlation_id") == request_id:
                return answer
    finally:
        await producer.stop()
        await consumer.stop()
    raise RuntimeError("the results consumer stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("FACESTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    parser.add_argument("--prefix", default=os.environ.get("FACESTREAM_TOPIC_PREFIX", "facestream"))
    parser.add_argument("--camera", default="edge-example")
    parser.add_argument(
        "--gallery",
        type=gallery_id,
        default=os.environ.get("FACESTREAM_GALLERY", DEFAULT_GALLERY),
        help="the gallery to identify against (default: FACESTREAM_GALLERY, else default)",
    )
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        request = identify(
            args.image.read_bytes(),
            bootstrap=args.bootstrap,
            prefix=args.prefix,
            camera=args.camera,
            gallery=args.gallery,
        )
        answer = asyncio.run(asyncio.wait_for(request, args.timeout))
    except TimeoutError:
        print(f"no answer within {args.timeout:g}s", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
