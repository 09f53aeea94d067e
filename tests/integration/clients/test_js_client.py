"""The Node/JS client's own tests (`node --test clients/js`) against the live stack."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.pipeline.stack import API_KEY, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

REPO = Path(__file__).resolve().parents[3]


def test_node_client_suite_passes_against_the_stack(stack: Stack, faces: Path) -> None:
    node = shutil.which("node")
    assert node, "node (>= 20) is needed for the JS client tests"
    env = {
        **os.environ,
        "FACESTREAM_API_URL": stack.api_url,
        "FACESTREAM_API_KEY": API_KEY,
        "FACESTREAM_FACES_DIR": str(faces),
    }
    done = subprocess.run(
        [node, "--test", "clients/js"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-5000:]
    assert "# fail 0" in report and "# skipped 0" in report, report[-3000:]
