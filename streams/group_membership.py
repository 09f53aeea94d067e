"""Whether a stream worker is a member of its consumer group, asked of the broker.

A worker out of its group takes no records, and nothing else notices. aiokafka parks a fatal
error of its group coordinator (a join refused for an inconsistent protocol, a group
authorization failure) until the consumer's next `getmany`; faust reads aiokafka's fetcher
directly and never calls it. Seen here: an identify worker whose join was refused (a member
with another assignment protocol still in the group) stayed alive holding no partition, and
the facade answered 504s until the worker was restarted by hand. A worker that has not been a
member for `absent_limit_s` therefore stops (`streams.faust_app`), and the supervisor starts it
again: a new join, once whatever refused the old one is gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from core.kafka import librdkafka_client_config
from core.settings import Settings

DESCRIBE_TIMEOUT_S = 5.0


class NotInGroup(Exception):
    """This worker has not been a member of its consumer group for too long."""


class MembershipWatch:
    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        client_id: str,
        absent_limit_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.group_id = group_id
        self.client_id = client_id
        self.absent_limit_s = absent_limit_s
        self.clock = clock
        config: dict[str, str | int | float | bool] = {**librdkafka_client_config(settings)}
        self._admin = AdminClient(config)
        self._absent_since: float | None = None

    async def check(self) -> None:
        """Raises NotInGroup once the group has been without this client for `absent_limit_s`.
        A broker that does not answer says nothing either way: its outage is not this."""
        member = await asyncio.to_thread(self._is_member)
        if member is None:
            return
        now = self.clock()
        if member:
            self._absent_since = None
        elif self._absent_since is None:
            self._absent_since = now
        elif now - self._absent_since >= self.absent_limit_s:
            raise NotInGroup(
                f"{self.client_id} has not been a member of group {self.group_id} "
                f"for {now - self._absent_since:.0f}s"
            )

    def _is_member(self) -> bool | None:
        future = self._admin.describe_consumer_groups([self.group_id], request_timeout=DESCRIBE_TIMEOUT_S)
        try:
            group = future[self.group_id].result(timeout=DESCRIBE_TIMEOUT_S * 2)
        except (KafkaException, TimeoutError):
            return None
        return any(member.client_id == self.client_id for member in group.members)
