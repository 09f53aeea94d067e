"""Fault tests: each module starts its own stack (see harness.launch_stack)."""

from __future__ import annotations

import pytest

from core.errors import FacestreamError
from core.settings import Settings
from engine.factory import build_engine
from tests.integration.faults.harness import small_photos
from tests.integration.pipeline.stack import REPO


@pytest.fixture(scope="session")
def photos() -> list[bytes]:
    """The sample photos downscaled (quick to decode), keeping those the real engine accepts
    with its default quality gate: every enrollment of them is expected to succeed."""
    engine = build_engine(Settings(models_dir=REPO / "var" / "models"))
    usable = []
    for photo in small_photos(max_side=400):
        try:
            engine.prepare(photo)
        except FacestreamError:
            continue
        usable.append(photo)
    assert len(usable) >= 10, f"only {len(usable)} sample photos pass the engine's gates"
    return usable
