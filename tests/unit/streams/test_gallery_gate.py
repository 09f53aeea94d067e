"""A worker acts only on commands of an active gallery on its pack, with the gallery's
policies filled in where a camera's command carries none."""

from __future__ import annotations

import asyncio

from core.errors import ErrorCode
from core.galleries import Gallery, GalleryRegistry, default_gallery
from core.settings import Settings
from schemas.envelope import Envelope
from schemas.events import EnrollFace, GalleryDefined, GalleryDeleted, IdentifyFace
from streams.gallery_gate import GalleryGate


def gate(operation: str) -> GalleryGate:
    registry = GalleryRegistry(default_gallery(Settings(_env_file=None)))  # type: ignore[call-arg]
    galleries = {
        "staff": Gallery(
            GalleryDefined(
                gallery="staff",
                pack="default",
                threshold=0.7,
                quality_filter_enroll="high",
                quality_filter_identify="low",
            )
        ),
        "other": Gallery(GalleryDefined(gallery="other", pack="big-pack")),
        "gone": Gallery(
            GalleryDefined(gallery="gone", pack="default"),
            "deleting",
            GalleryDeleted(gallery="gone", erasure_id="e", requested_by="k"),
        ),
    }

    async def lookup(gallery: str) -> Gallery | None:
        return galleries.get(gallery) or registry.get(gallery)

    return GalleryGate(lookup, pack="default", operation=operation)  # type: ignore[arg-type]


def test_commands_of_unknown_deleting_or_foreign_pack_galleries_are_refused() -> None:
    commands = [
        Envelope.wrap(EnrollFace(enrollment_id="e", person_id="p", gallery=g, image=b"x"), correlation_id="c")
        for g in ("staff", "nowhere", "gone", "other", "default")
    ]
    admitted, refused = asyncio.run(gate("enroll").admit(commands))
    assert {i: e.code for i, e in refused.items()} == {
        1: ErrorCode.UNKNOWN_GALLERY,
        2: ErrorCode.GALLERY_DELETING,
        3: ErrorCode.MODEL_MISMATCH,
    }
    assert len(admitted) == 5
    # The gallery's policy for a command that carries none; the deployment's default stays None.
    assert admitted[0].payload.quality_filter == "high"
    assert admitted[4].payload.quality_filter is None


def test_identify_gets_the_gallerys_threshold_unless_the_command_has_one() -> None:
    commands = [
        Envelope.wrap(
            IdentifyFace(request_id="r", gallery="staff", image=b"x", threshold=t), correlation_id="c"
        )
        for t in (None, 0.2)
    ]
    admitted, refused = asyncio.run(gate("identify").admit(commands))
    assert not refused
    assert [(a.payload.threshold, a.payload.quality_filter) for a in admitted] == [(0.7, "low"), (0.2, "low")]
