"""Fixtures for tests against the real default model pack and the shared sample photos.

These tests fail (not skip) when the pack is missing: CI runs `facestream models pull default`
before them, so a missing pack is a broken pipeline, not an optional extra.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import FacestreamError
from core.settings import Settings
from engine.factory import build_engine
from engine.pipeline import FaceEngine

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Sample:
    path: Path
    identity: str


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    folder = Path(os.environ.get("FACESTREAM_FACES_DIR", REPO_ROOT.parent / "shared" / "faces"))
    if not (folder / "manifest.csv").is_file():
        pytest.fail(f"sample faces not found at {folder} (set FACESTREAM_FACES_DIR)")
    return folder


@pytest.fixture(scope="session")
def samples(faces_dir: Path) -> list[Sample]:
    with open(faces_dir / "manifest.csv", newline="") as f:
        return [Sample(faces_dir / row["path"], row["identity"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="session")
def engine_settings() -> Settings:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    if not settings.models_dir.is_absolute():
        settings = settings.model_copy(update={"models_dir": REPO_ROOT / settings.models_dir})
    return settings


@pytest.fixture(scope="session")
def make_engine(engine_settings: Settings):
    def make(**overrides: object) -> FaceEngine:
        try:
            return build_engine(engine_settings.model_copy(update=overrides))
        except FacestreamError as exc:
            pytest.fail(f"{exc.message} (models_dir={engine_settings.models_dir})")

    return make


@pytest.fixture(scope="session")
def engine(make_engine) -> FaceEngine:
    return make_engine()
