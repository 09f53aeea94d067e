"""A faust App configured from Settings for the image-processing workers."""

from __future__ import annotations

import faust

from core.kafka import client_options
from core.settings import Settings


def make_faust_app(settings: Settings, name: str) -> faust.App:
    security = client_options(settings)
    credentials: faust.SASLCredentials | faust.SSLCredentials | None = None
    if settings.kafka_security_protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=security.get("ssl_context"),
        )
    elif "ssl_context" in security:
        credentials = faust.SSLCredentials(security["ssl_context"])
    return faust.App(
        f"{settings.topic_prefix}-{name}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=credentials,
        # faust would otherwise open a web server on 0.0.0.0:6066.
        web_enabled=False,
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        producer_acks=-1,
        producer_max_request_size=settings.max_message_bytes,
        consumer_max_fetch_size=settings.max_message_bytes,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=settings.batch_max_size * 2,
        # Inference on a large batch can take seconds on CPU: give it room before a rebalance.
        broker_max_poll_interval=300.0,
        # A killed worker's partitions move to a live one after this, not faust's default 60 s.
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_session_timeout_s / 3,
        stream_buffer_maxsize=settings.batch_max_size * 4,
    )
