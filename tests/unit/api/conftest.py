from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.unit.api.factories import make_app


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return make_app(tmp_path)
