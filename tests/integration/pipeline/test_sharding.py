"""Two shards (replica groups holding different embeddings partitions) answer exactly as one
replica holding everything; read-your-writes across shards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.services import ServiceEndpoints
from tests.integration.pipeline.conftest import faces_dir, running_stack, scratch_database
from tests.integration.pipeline.stack import Stack
from tests.integration.pipeline.test_end_to_end import HELD_BACK, PEOPLE, _files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

SHARDS = {
    "shard-a": {
        "FACESTREAM_REPLICA_ID": "shard-a-1",
        "FACESTREAM_REPLICA_GROUP": "shard-a",
        "FACESTREAM_REPLICA_PARTITIONS": "0,1",
    },
    "shard-b": {
        "FACESTREAM_REPLICA_ID": "shard-b-1",
        "FACESTREAM_REPLICA_GROUP": "shard-b",
        "FACESTREAM_REPLICA_PARTITIONS": "2",
    },
}


@pytest.fixture(scope="module")
def sharded(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The `all` policy too: identify answers every face; enrollment keeps the largest.
    with (
        scratch_database(services) as url,
        running_stack(
            services,
            url,
            tmp_path_factory.mktemp("sharded"),
            replicas=SHARDS,
            FACESTREAM_MULTI_FACE_POLICY="all",
        ) as stack,
    ):
        yield stack


def _identify(stack: Stack, person: str, **params: object) -> dict:
    with stack.client() as client:
        response = client.post(
            "/identify", files={"image": ("p.jpg", HELD_BACK[person].read_bytes())}, params=params
        )
    assert response.status_code == 200, response.text
    return response.json()


def _sizes(stack: Stack) -> dict[str, int]:
    return {r["group"]: r["size"] for r in stack.replicas() if r["ready"]}


def test_read_your_writes_across_shards(sharded: Stack) -> None:
    person = "marissa_mayer"
    with sharded.client() as client:
        response = client.post(f"/enroll/{person}", files=_files(PEOPLE[person][1:]))
    assert response.status_code == 201, response.text
    offsets = response.json()["offsets"]
    wanted = ",".join(f"{p}:{o}" for p, o in offsets.items())
    body = _identify(sharded, person, min_offsets=wanted)
    assert body["person_id"] == person and body["partial"] is False


def test_an_erasure_is_applied_by_both_shard_groups(sharded: Stack) -> None:
    person, source = "shard.erase", max(PEOPLE, key=lambda p: len(PEOPLE[p]))
    with sharded.client() as client:
        response = client.post(f"/enroll/{person}", files=_files(PEOPLE[source][1:]))
        assert response.status_code == 201, response.text
        accepted = sorted(a["face_id"] for a in response.json()["accepted"])
        erased = client.delete(f"/persons/{person}")
    assert erased.status_code == 202, erased.text

    def done() -> dict | None:
        with sharded.client() as client:
            body = client.get(f"/erasures/{erased.json()['erasure_id']}").json()
        return body if body.get("status") == "done" else None

    receipt = sharded.wait_for("the erasure done in both shards", done)
    assert [(s["group"], s["applied"]) for s in receipt["shards"]] == [("shard-a", True), ("shard-b", True)]
    assert receipt["face_ids"] == accepted
    body = _identify(sharded, source, top_k=100)
    assert person not in {c["person_id"] for c in body["candidates"]}


def test_two_shards_answer_like_one_replica_holding_everything(sharded: Stack) -> None:
    total = 0
    with sharded.client() as client:
        for person, paths in PEOPLE.items():
            response = client.post(f"/enroll/{person}", files=_files(paths[1:]))
            assert response.status_code == 201, response.text
        total = sum(len(paths) - 1 for paths in PEOPLE.values())
    sharded.wait_for("both shards filled", lambda: sum(_sizes(sharded).values()) == total)
    assert all(size > 0 for size in _sizes(sharded).values())

    split = {person: _identify(sharded, person, top_k=5) for person in PEOPLE}
    assert all(a["shards"] == ["shard-a", "shard-b"] and not a["partial"] for a in split.values())
    assert {p: a["person_id"] for p, a in split.items()} == {p: p for p in PEOPLE}

    for name in SHARDS:
        sharded.kill(name, sig=15)
    sharded.start("whole", "replica", FACESTREAM_REPLICA_ID="whole-1", FACESTREAM_REPLICA_GROUP="whole")
    sharded.wait_for("one replica holding everything", lambda: _sizes(sharded) == {"whole": total})

    whole = {person: _identify(sharded, person, top_k=5) for person in PEOPLE}
    for person in PEOPLE:
        assert whole[person]["shards"] == ["whole"]
        assert whole[person]["person_id"] == split[person]["person_id"]
        assert [c["person_id"] for c in whole[person]["candidates"]] == [
            c["person_id"] for c in split[person]["candidates"]
        ]
        for a, b in zip(whole[person]["candidates"], split[person]["candidates"], strict=True):
            assert a["similarity"] == pytest.approx(b["similarity"], abs=1e-5)


def test_policy_all_answers_every_face_of_a_group_photo(sharded: Stack) -> None:
    couple = faces_dir() / "scenes" / "couple.jpg"
    with sharded.client() as client:
        response = client.post("/identify", files={"image": ("couple.jpg", couple.read_bytes())})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["faces"]) == 2 and not body["partial"]
    first, second = body["faces"]
    assert (
        first["bbox"]["width"] * first["bbox"]["height"] >= second["bbox"]["width"] * second["bbox"]["height"]
    )
    assert body["person_id"] == first["person_id"] and body["bbox"] == first["bbox"]
