"""The edge producer with --gallery against the live stack: the command reaches the named
gallery's index, and a gallery that does not exist is answered with a failure."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from facestream_client import FacestreamClient

from tests.integration.clients.test_python_client import eventually, photos
from tests.integration.pipeline.stack import API_KEY, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

REPO = Path(__file__).resolve().parents[3]


def edge(stack: Stack, photo: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(REPO / "clients" / "edge_producer.py"), *args, str(photo), "--timeout", "60"],
        env=stack.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_edge_producer_identifies_in_the_named_gallery(stack: Stack, faces: Path) -> None:
    gallery = f"edge-{uuid.uuid4().hex[:8]}"
    pictures = photos(faces, "jennifer_aniston")
    with FacestreamClient(stack.api_url, api_key=API_KEY) as admin:
        admin.create_gallery(gallery)
        with FacestreamClient(stack.api_url, api_key=API_KEY, gallery=gallery) as fs:
            enrolled = eventually("enrollment", lambda: fs.enroll("edge.person", pictures[:-1]))
            assert enrolled.accepted
            # The camera has no read-your-writes: wait until the API's searches find the person.
            eventually("indexed", lambda: fs.identify(pictures[-1]).person_id == "edge.person")

        answer = edge(stack, pictures[-1], "--gallery", gallery)
        assert answer["type"] == "FaceSearched", answer
        assert answer["payload"]["gallery"] == gallery
        best = answer["payload"]["candidates"][0]
        assert best["person_id"] == "edge.person" and best["similarity"] >= answer["payload"]["threshold"]

        missing = edge(stack, pictures[-1], "--gallery", f"nowhere-{uuid.uuid4().hex[:6]}")
        assert missing["type"] == "IdentifyFailed", missing
        assert missing["payload"]["error"]["code"] == "unknown_gallery", missing
        admin.delete_gallery(gallery)
