"""The clients run against the same kind of live stack the pipeline tests use (its own topic
prefix and scratch database), and the Python client is imported from clients/python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.pipeline.conftest import faces_dir as _faces_dir
from tests.integration.pipeline.conftest import scratch_database_url, stack  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[3]
PYTHON_CLIENT = REPO / "clients" / "python"
if str(PYTHON_CLIENT) not in sys.path:
    sys.path.insert(0, str(PYTHON_CLIENT))

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]


@pytest.fixture(scope="session")
def faces() -> Path:
    return _faces_dir()
