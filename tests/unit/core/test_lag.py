"""Which consumer groups the lag monitor watches."""

from __future__ import annotations

from core.lag import watched_groups
from core.settings import Settings


def test_every_consumer_group_of_the_pipeline_is_watched() -> None:
    config = Settings(_env_file=None, topic_prefix="acme")  # type: ignore[call-arg]
    groups = watched_groups(config)
    t = config.topics
    assert groups["acme-enroll"] == [t.enroll_requests]
    assert groups["acme-identify"] == [t.identify_requests]
    assert set(groups["acme.projector"]) == {t.embeddings, t.enrollment_outcomes, t.erasures}
    assert groups["acme.replicas"] == [t.identify_queries]
