"""The notebooks run against a live stack (its own topic prefix and scratch database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pipeline.conftest import faces_dir as _faces_dir
from tests.integration.pipeline.conftest import scratch_database_url, stack  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def faces() -> Path:
    return _faces_dir()
