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

    return GalleryGate(lookup, operation=operation)  # type: ignore[arg-type]


def test_commands_of_unknown_or_deleting_galleries_are_refused_the_others_get_their_pack() -> None:
    commands = [
        Envelope.wrap(EnrollFace(enrollment_id="e", person_id="p", gallery=g, image=b"x"), correlation_id="c")
        for g in ("staff", "nowhere", "gone", "other", "default")
    ]
    admitted, packs, refused = asyncio.run(gate("enroll").admit(commands))
    assert {i: e.code for i, e in refused.items()} == {
        1: ErrorCode.UNKNOWN_GALLERY,
        2: ErrorCode.GALLERY_DELETING,
    }
    assert len(admitted) == 5
    assert [packs[i] for i in (0, 3, 4)] == ["default", "big-pack", "default"]
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
    admitted, _, refused = asyncio.run(gate("identify").admit(commands))
    assert not refused
    assert [(a.payload.threshold, a.payload.quality_filter) for a in admitted] == [(0.7, "low"), (0.2, "low")]
