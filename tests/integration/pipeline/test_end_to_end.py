"""Issue #3's end-to-end proof: real Kafka, real PostgreSQL, real models, every stage."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from tests.integration.pipeline.conftest import faces_dir
from tests.integration.pipeline.stack import REPO, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

# Enrolled last: first it is the "never enrolled" probe, then it must be found like the rest.
LATE_PERSON = "sundar_pichai"


def _people() -> dict[str, list[Path]]:
    root = faces_dir()
    people: dict[str, list[Path]] = defaultdict(list)
    with (root / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            people[row["identity"]].append(root / row["path"])
    return {person: sorted(paths) for person, paths in sorted(people.items())}


PEOPLE = _people()
# All but one photo each is enrolled; the first (sorted) photo is held back as the probe.
HELD_BACK = {person: paths[0] for person, paths in PEOPLE.items()}


def _files(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def _identify(stack: Stack, data: bytes, name: str = "probe.jpg", **params: object) -> tuple[int, dict]:
    with stack.client() as client:
        response = client.post("/identify", files={"image": (name, data)}, params=params)
    return response.status_code, response.json()


def _enroll(stack: Stack, person: str) -> dict:
    with stack.client() as client:
        response = client.post(f"/enroll/{person}", files=_files(PEOPLE[person][1:]))
    assert response.status_code == 201, response.text
    return response.json()


def _gallery_size(stack: Stack) -> int:
    ready = [r for r in stack.replicas() if r["ready"]]
    return max((r["size"] for r in ready), default=-1)


def _no_face_image() -> bytes:
    rng = np.random.default_rng(7)
    sky = np.linspace(40, 220, 480, dtype=np.float32)[:, None, None] * np.ones((480, 640, 3))
    noise = rng.normal(0, 12, size=(480, 640, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(sky + noise, 0, 255).astype(np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def enrolled(stack: Stack) -> dict[str, int]:
    """Every person but LATE_PERSON enrolled; returns accepted faces per person."""
    accepted = {}
    for person in PEOPLE:
        if person != LATE_PERSON:
            body = _enroll(stack, person)
            assert not body["rejected"], body["rejected"]
            accepted[person] = len(body["accepted"])
    total = sum(accepted.values())
    stack.wait_for(f"{total} faces in the index", lambda: _gallery_size(stack) == total)
    return accepted


def test_empty_gallery_answers_unknown(stack: Stack) -> None:
    # First test of the module on a fresh stack: the gallery must be empty, not skipped when not.
    assert _gallery_size(stack) == 0
    status, body = _identify(stack, HELD_BACK["elon_musk"].read_bytes())
    assert status == 200, body
    assert body["unknown"] is True and body["person_id"] is None and body["candidates"] == []


def test_every_held_back_photo_is_identified(stack: Stack, enrolled: dict[str, int]) -> None:
    wrong = {}
    for person, photo in HELD_BACK.items():
        if person == LATE_PERSON:
            continue
        status, body = _identify(stack, photo.read_bytes(), top_k=3)
        assert status == 200, body
        if body["person_id"] != person:
            wrong[person] = body
        assert body["unknown"] is False
        assert body["similarity"] >= body["threshold"]
        assert body["candidates"][0]["person_id"] == body["person_id"]
        assert len(body["candidates"]) == 3
        assert body["model"].startswith("default/")
    assert not wrong, wrong


def test_never_enrolled_person_is_unknown_then_found_after_enrollment(
    stack: Stack, enrolled: dict[str, int]
) -> None:
    probe = HELD_BACK[LATE_PERSON].read_bytes()
    status, body = _identify(stack, probe)
    assert status == 200, body
    assert body["unknown"] is True and body["person_id"] is None
    assert body["similarity"] < body["threshold"]

    accepted = _enroll(stack, LATE_PERSON)["accepted"]
    total = sum(enrolled.values()) + len(accepted)
    stack.wait_for(f"{total} faces in the index", lambda: _gallery_size(stack) == total)
    status, body = _identify(stack, probe)
    assert status == 200 and body["person_id"] == LATE_PERSON, body


def test_picture_without_a_face_is_no_face(stack: Stack) -> None:
    status, body = _identify(stack, _no_face_image(), name="sky.jpg")
    assert (status, body["code"]) == (422, "no_face"), body


def test_bytes_that_are_not_an_image_are_undecodable(stack: Stack) -> None:
    status, body = _identify(stack, b"just some text, definitely not a photo", name="notes.jpg")
    assert (status, body["code"]) == (422, "undecodable_image"), body


def test_enrolling_only_bad_images_is_422_with_reasons(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post(
            "/enroll/nobody.here",
            files=[("images", ("sky.jpg", _no_face_image())), ("images", ("sky2.jpg", _no_face_image()))],
        )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "no_face"
    assert [r["reason"] for r in body["rejected"]] == ["no_face", "no_face"]


def test_person_is_in_the_api_and_in_postgresql(
    stack: Stack, enrolled: dict[str, int], scratch_database_url: str
) -> None:
    person = "angelina_jolie"

    def projected() -> dict | None:
        with stack.client() as client:
            response = client.get(f"/persons/{person}")
        body = response.json()
        return body if response.status_code == 200 and body["face_count"] == enrolled[person] else None

    body = stack.wait_for("projection of the person", projected)
    assert len(body["faces"]) == enrolled[person]
    assert all(f["model_id"].startswith("default/") for f in body["faces"])

    rows = asyncio.run(_tables(scratch_database_url, person))
    assert rows["persons"] == 1
    assert rows["faces"] == enrolled[person]
    assert rows["embedding_bytes"] == {512 * 4}
    assert rows["enrollments"] >= 1 and rows["complete"] >= 1

    with stack.client() as client:
        assert client.get("/persons/nobody.at.all").json()["code"] == "unknown_person"


async def _tables(url: str, person: str) -> dict:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        return {
            "persons": await conn.fetchval("SELECT count(*) FROM persons WHERE person_id=$1", person),
            "faces": await conn.fetchval("SELECT count(*) FROM faces WHERE person_id=$1", person),
            "embedding_bytes": {
                r[0]
                for r in await conn.fetch("SELECT length(embedding) FROM faces WHERE person_id=$1", person)
            },
            "enrollments": await conn.fetchval("SELECT count(*) FROM enrollments WHERE person_id=$1", person),
            "complete": await conn.fetchval(
                "SELECT count(*) FROM enrollments WHERE person_id=$1 AND status='complete'", person
            ),
        }
    finally:
        await conn.close()


def _answers(stack: Stack) -> dict[str, str | None]:
    answers = {}
    for person, photo in HELD_BACK.items():
        status, body = _identify(stack, photo.read_bytes())
        assert status == 200, body
        answers[person] = body["person_id"]
    return answers


def _replica(stack: Stack) -> dict | None:
    replicas = [r for r in stack.replicas() if r["replica_id"] == "replica-a"]
    return replicas[0] if replicas else None


def test_replica_restarts_from_snapshot_then_from_log_alone(stack: Stack, enrolled: dict[str, int]) -> None:
    before = _answers(stack)
    size = _gallery_size(stack)

    # Wait until the snapshot reflects everything applied, then kill the replica hard.
    stack.wait_for(
        "a snapshot of the whole log",
        lambda: (r := _replica(stack)) and r["applied_offsets"] and _snapshot_current(stack),
    )
    stack.kill("replica")
    stack.start("replica", "replica", FACESTREAM_REPLICA_ID="replica-a")
    restarted = stack.wait_for(
        "replica restored from its snapshot",
        lambda: (r := _replica(stack)) and r["ready"] and r["restored_from"] == "snapshot" and r,
    )
    assert restarted["size"] == size
    assert _answers(stack) == before

    # A corrupted snapshot is detected (checksums) and the replica rebuilds from the log.
    stack.kill("replica", sig=15)
    snapshots = Path(stack.env["FACESTREAM_INDEX_DIR"]) / "replica-a"
    live = snapshots / (snapshots / "CURRENT").read_text().strip()
    payload = max(
        (p for p in live.rglob("*") if p.is_file() and p.name != "manifest.json"),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))
    stack.start("replica", "replica", FACESTREAM_REPLICA_ID="replica-a")
    recovered = stack.wait_for(
        "replica rebuilt after a corrupt snapshot",
        lambda: (r := _replica(stack)) and r["ready"] and r["restored_from"] == "log" and r,
    )
    assert recovered["size"] == size
    assert _answers(stack) == before

    stack.kill("replica", sig=15)
    shutil.rmtree(snapshots)
    stack.start("replica", "replica", FACESTREAM_REPLICA_ID="replica-a")
    rebuilt = stack.wait_for(
        "replica rebuilt from the log",
        lambda: (r := _replica(stack)) and r["ready"] and r["restored_from"] == "log" and r,
    )
    assert rebuilt["size"] == size
    assert _answers(stack) == before


def _snapshot_current(stack: Stack) -> bool:
    replica = _replica(stack)
    return bool(replica) and replica["snapshot_offsets"] == replica["applied_offsets"]


def test_edge_producer_example_round_trip(stack: Stack, enrolled: dict[str, int]) -> None:
    photo = HELD_BACK["jeff_bezos"]
    done = subprocess.run(
        [sys.executable, str(REPO / "clients" / "edge_producer.py"), str(photo), "--timeout", "60"],
        env=stack.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["type"] == "FaceSearched"
    best = result["payload"]["candidates"][0]
    assert best["person_id"] == "jeff_bezos" and best["similarity"] >= result["payload"]["threshold"]


def test_erasure_removes_a_person_from_the_replica_and_the_database(
    stack: Stack, enrolled: dict[str, int], scratch_database_url: str
) -> None:
    person = "jeff_bezos"
    stack.wait_for(
        "projection of the person",
        lambda: asyncio.run(_tables(scratch_database_url, person))["faces"] == enrolled[person],
    )
    size = _gallery_size(stack)
    with stack.client() as client:
        response = client.delete(f"/persons/{person}")
    assert response.status_code == 202, response.text
    receipt = stack.wait_for("the erasure receipt done", lambda: _done(stack, response.json()["erasure_id"]))
    assert len(receipt["face_ids"]) == enrolled[person]
    assert receipt["tombstones"] and receipt["projection_applied"]

    stack.wait_for("faces leaving the replica", lambda: _gallery_size(stack) == size - enrolled[person])
    status, body = _identify(stack, HELD_BACK[person].read_bytes())
    assert status == 200 and body["person_id"] != person, body
    rows = stack.wait_for(
        "erasure in PostgreSQL",
        lambda: (r := asyncio.run(_tables(scratch_database_url, person)))["persons"] == 0 and r,
    )
    assert rows["faces"] == 0 and rows["enrollments"] == 0
    with stack.client() as client:
        assert client.get(f"/persons/{person}").json()["code"] == "unknown_person"


def test_erasing_a_single_face(stack: Stack, enrolled: dict[str, int]) -> None:
    person = "katy_perry"
    with stack.client() as client:
        faces = stack.wait_for(
            "projection of the person",
            lambda: (r := client.get(f"/persons/{person}")).status_code == 200 and r.json()["faces"],
        )
        size = _gallery_size(stack)
        response = client.delete(f"/faces/{faces[0]['face_id']}")
        assert response.status_code == 202, response.text
    receipt = stack.wait_for("the erasure receipt done", lambda: _done(stack, response.json()["erasure_id"]))
    assert receipt["face_ids"] == [faces[0]["face_id"]] and receipt["kind"] == "face"
    stack.wait_for("the face leaving the replica", lambda: _gallery_size(stack) == size - 1)


def _done(stack: Stack, erasure_id: str) -> dict | None:
    with stack.client() as client:
        body = client.get(f"/erasures/{erasure_id}").json()
    return body if body.get("status") == "done" else None


def test_consumer_lag_is_reported_by_the_cli_and_stats(stack: Stack, enrolled: dict[str, int]) -> None:
    rows = [json.loads(line) for line in stack.cli("lag", "--json").splitlines()]
    prefix = stack.env["FACESTREAM_TOPIC_PREFIX"]
    groups = {r["group"] for r in rows}
    assert {f"{prefix}-enroll", f"{prefix}-identify", f"{prefix}.projector"} <= groups
    enroll = [r for r in rows if r["group"] == f"{prefix}-enroll"]
    assert sum(r["end"] for r in enroll) >= len(enrolled)
    assert all(r["lag"] >= 0 and r["lag_seconds"] >= 0 for r in rows)
    with stack.client() as client:
        stats = stack.wait_for("lag in /stats", lambda: client.get("/stats").json()["consumer_lag"])
        metrics = client.get("/metrics").text
    assert {r["group"] for r in stats} == groups
    assert "facestream_consumer_lag{" in metrics


def test_replay_builds_a_new_replica_that_takes_over(stack: Stack, enrolled: dict[str, int]) -> None:
    before = _answers(stack)
    size = _gallery_size(stack)
    report = json.loads(stack.cli("replay", "--replica-id", "replica-b"))
    assert report["faces"] == size and report["skipped"] == 0 and report["records_per_s"] > 0

    stack.start("replica-b", "replica", FACESTREAM_REPLICA_ID="replica-b")
    stack.wait_for(
        "replica-b ready from the replayed snapshot",
        lambda: any(
            r["replica_id"] == "replica-b" and r["ready"] and r["restored_from"] == "snapshot"
            for r in stack.replicas()
        ),
    )
    stack.kill("replica", sig=15)  # the swap: the old replica leaves, the new one serves
    stack.wait_for(
        "only replica-b left", lambda: [r["replica_id"] for r in stack.replicas()] == ["replica-b"]
    )
    assert _answers(stack) == before
    stack.kill("replica-b", sig=15)
    stack.start("replica", "replica", FACESTREAM_REPLICA_ID="replica-a")
    stack.wait_for("replica-a back", lambda: (r := _replica(stack)) and r["ready"])


def test_reembed_migrates_the_gallery_without_reenrollment(stack: Stack, enrolled: dict[str, int]) -> None:
    """Retained (sealed) enrollment images re-embedded into a new topic and index; erased faces
    stay erased; the two galleries compared on a labelled set. (Only one pack is installable
    here, so the candidate is the same model: the answers must agree exactly.)"""
    size = _gallery_size(stack)
    report = json.loads(
        stack.cli(
            "replay",
            "--reembed",
            "--pack",
            "default",
            "--replica-id",
            "replica-m",
            "--labelled",
            str(faces_dir() / "people"),
            timeout=600,
        )
    )
    assert report["reembed"]["failed"] == {}
    assert report["reembed"]["tombstones"] >= 1  # the erasure tests' faces
    assert report["replay"]["faces"] == size
    assert report["comparison"]["agreement"] == 1.0
    assert report["comparison"]["rank1_candidate"] == report["comparison"]["rank1_current"]
    prefix = stack.env["FACESTREAM_TOPIC_PREFIX"]
    assert report["switch_with"]["FACESTREAM_EMBEDDINGS_TOPIC"] == f"{prefix}.face.embeddings.default.v1"
