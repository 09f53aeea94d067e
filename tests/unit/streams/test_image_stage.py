"""analyse_batch and parse_messages."""

from __future__ import annotations

import numpy as np
import pytest

from core.quality_policy import BARS
from engine.fake import DeterministicFakeEngine
from schemas.events import EnrollFace
from streams.image_stage import analyse_batch, parse_messages
from tests.unit.streams.factories import (
    MessageFactory,
    enroll_command,
    identify_command,
    metrics,
    settings,
)


class ExplodingEngine(DeterministicFakeEngine):
    def prepare(self, image: bytes):  # type: ignore[no-untyped-def]
        if image == b"BOOM":
            raise RuntimeError("decoder bug")
        return super().prepare(image)


def test_analyse_batch_embeds_good_images_and_keeps_errors() -> None:
    envelopes = [
        enroll_command(image=b"FAKE:a:1"),
        enroll_command(image=b"FAKE-NOFACE"),
        enroll_command(image=b"BOOM"),
        enroll_command(image=b"FAKE:b:1"),
    ]
    items = analyse_batch(ExplodingEngine(), envelopes)
    assert [i.envelope for i in items] == envelopes
    good, noface, boom, other = items
    assert good.vector is not None and other.vector is not None
    assert np.isclose(np.linalg.norm(good.vector), 1.0, atol=1e-5)
    assert good.timings.embed_ms >= 0.0
    assert noface.vector is None and noface.error is not None and noface.error.code == "no_face"
    assert boom.error is not None and boom.error.code == "internal_error"
    assert "RuntimeError" in boom.error.message
    assert boom.timings.embed_ms == 0.0


def test_analyse_batch_all_bad_never_calls_embed() -> None:
    class NoEmbed(DeterministicFakeEngine):
        def embed(self, crops):  # type: ignore[no-untyped-def]
            raise AssertionError("embed called")

    items = analyse_batch(NoEmbed(), [enroll_command(image=b"junk")])
    assert items[0].error is not None and items[0].error.code == "undecodable_image"
    assert analyse_batch(NoEmbed(), []) == []


def test_same_identity_is_closer_than_different_ones() -> None:
    items = analyse_batch(
        DeterministicFakeEngine(),
        [enroll_command(image=i) for i in (b"FAKE:a:1", b"FAKE:a:2", b"FAKE:b:1")],
    )
    a1, a2, b1 = (i.vector for i in items)
    assert float(a1 @ a2) > 0.8 > float(a1 @ b1)


def test_parse_messages_splits_commands_from_poison() -> None:
    config = settings()
    m = metrics()
    msgs = MessageFactory(config.topics.enroll_requests)
    good = msgs.envelope(enroll_command(), reply_to="facestream.replies.v1.x")
    parsed, letters = parse_messages(
        [good, msgs.raw(b"[]"), msgs.raw(None)],
        EnrollFace,
        stage="enroll",
        topics=config.topics,
        metrics=m,
    )
    assert len(parsed) == 1
    envelope, headers = parsed[0]
    assert envelope.payload.person_id == "alice"
    assert headers["reply_to"] == "facestream.replies.v1.x"
    assert len(letters) == 2
    assert (
        m.registry.get_sample_value(
            "facestream_errors_total", {"stage": "enroll", "reason": "invalid_message"}
        )
        == 2.0
    )


# A face just under the `auto` bar, and one just above it.
UNDER_AUTO = f"FAKE:a:1:{BARS['auto'] - 0.01:.4f}".encode()
OVER_AUTO = f"FAKE:a:1:{BARS['auto'] + 0.01:.4f}".encode()


def test_the_commands_filter_sets_the_bar() -> None:
    items = analyse_batch(
        DeterministicFakeEngine(),
        [
            enroll_command(image=UNDER_AUTO, quality_filter="auto"),
            enroll_command(image=OVER_AUTO, quality_filter="auto"),
            enroll_command(image=UNDER_AUTO, quality_filter="none"),
        ],
    )
    refused, kept, unfiltered = items
    assert refused.error is not None and refused.error.code == "low_quality"
    assert kept.vector is not None and unfiltered.vector is not None


@pytest.mark.parametrize(("default", "refused"), [("auto", True), ("none", False)])
def test_a_command_without_a_filter_gets_the_operations_default(default: str, refused: bool) -> None:
    (item,) = analyse_batch(DeterministicFakeEngine(), [identify_command(image=UNDER_AUTO)], default)
    assert (item.error is not None and item.error.code == "low_quality") is refused


def test_the_filter_in_the_command_wins_over_the_workers_default() -> None:
    # Resolved once by the facade: the worker never re-decides it.
    (item,) = analyse_batch(
        DeterministicFakeEngine(), [identify_command(image=UNDER_AUTO, quality_filter="none")], "high"
    )
    assert item.vector is not None
