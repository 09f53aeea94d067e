"""Replies to a reply topic that does not exist are dropped, not retried forever."""

from __future__ import annotations

from schemas.envelope import Envelope
from schemas.events import ErrorInfo, IdentifyFailed
from streams.handlers.output import Output
from streams.reply_topics import ReplyTopics
from tests.unit.streams.factories import known_reply_topics, metrics, settings


def _reply(topic: str) -> Output:
    failed = IdentifyFailed(request_id="r", error=ErrorInfo(code="no_face", message="none"))
    return Output(topic=topic, key="r", envelope=Envelope.wrap(failed, correlation_id="r"))


async def test_replies_to_missing_reply_topics_are_dropped_others_kept() -> None:
    config = settings()
    live = config.topics.replies("api-1")
    gone = config.topics.replies("api-retired")
    replies = known_reply_topics(config, live)
    outputs = [_reply(live), _reply(gone), _reply(config.topics.identify_results)]

    kept = await replies.deliverable(outputs)

    assert [o.topic for o in kept] == [live, config.topics.identify_results]


async def test_topic_list_is_refreshed_at_most_every_min_refresh() -> None:
    config = settings()
    calls = []

    async def lister(_: object) -> set[str]:
        calls.append(1)
        return set()

    replies = ReplyTopics(config, metrics(), lister=lister, min_refresh_s=3600)
    for _ in range(5):
        await replies.deliverable([_reply(config.topics.replies("nobody"))])
    assert len(calls) == 1
