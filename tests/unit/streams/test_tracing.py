"""One identify or enrollment is one trace: outputs continue the traceparent of their input."""

from __future__ import annotations

from core.kafka import encode
from core.tracing import new_traceparent, trace_id, valid
from engine.fake import DeterministicFakeEngine
from schemas.envelope import Header
from streams.enroll_worker import EnrollProcessor
from streams.identify_worker import IdentifyProcessor
from tests.unit.streams.factories import (
    REPLY_TOPIC,
    FakeSender,
    MessageFactory,
    enroll_command,
    identify_command,
    known_reply_topics,
    metrics,
    settings,
)


async def test_enroll_outputs_continue_the_trace() -> None:
    config = settings()
    parent = new_traceparent()
    command = enroll_command()
    message = MessageFactory(config.topics.enroll_requests).raw(
        encode(command), headers={Header.REPLY_TO: REPLY_TOPIC, "traceparent": parent}
    )
    sender = FakeSender()
    await EnrollProcessor(
        config, DeterministicFakeEngine(), metrics(), sender, known_reply_topics(config)
    ).process([message])
    assert len(sender.sent) == 3  # embedding, outcome, reply
    for sent in sender.sent:
        child = sent.header_map["traceparent"]
        assert valid(child) and trace_id(child) == trace_id(parent) and child != parent


async def test_a_record_without_context_starts_a_trace() -> None:
    config = settings()
    message = MessageFactory(config.topics.identify_requests).envelope(identify_command())
    sender = FakeSender()
    await IdentifyProcessor(
        config, DeterministicFakeEngine(), metrics(), sender, known_reply_topics(config)
    ).process([message])
    assert valid(sender.sent[0].header_map["traceparent"])
