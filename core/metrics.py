"""Prometheus metric families, one set per process, created on a registry the entry point owns."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    request_latency: Histogram
    stage_latency: Histogram
    inferences: Counter
    batch_size: Histogram
    errors: Counter
    messages: Counter
    db_ops: Histogram
    index_size: Gauge
    applied_offset: Gauge
    replica_lag: Gauge
    in_flight: Gauge
    consumer_lag: Gauge
    consumer_lag_seconds: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        reg = registry or CollectorRegistry()
        return cls(
            registry=reg,
            requests=Counter(
                "facestream_http_requests",
                "HTTP requests",
                ["route", "method", "status"],
                registry=reg,
            ),
            request_latency=Histogram(
                "facestream_http_request_seconds",
                "HTTP request latency",
                ["route"],
                buckets=STAGE_BUCKETS,
                registry=reg,
            ),
            stage_latency=Histogram(
                "facestream_stage_seconds",
                "Latency of one pipeline stage",
                ["stage"],
                buckets=STAGE_BUCKETS,
                registry=reg,
            ),
            inferences=Counter(
                "facestream_inferences",
                "Model inferences (faces embedded)",
                ["model"],
                registry=reg,
            ),
            batch_size=Histogram(
                "facestream_batch_size",
                "Records per micro-batch",
                ["worker"],
                buckets=(1, 2, 4, 8, 16, 32, 64),
                registry=reg,
            ),
            errors=Counter("facestream_errors", "Errors by reason", ["stage", "reason"], registry=reg),
            messages=Counter(
                "facestream_messages", "Kafka records processed", ["topic", "outcome"], registry=reg
            ),
            db_ops=Histogram(
                "facestream_db_seconds",
                "Database operation latency",
                ["op"],
                buckets=STAGE_BUCKETS,
                registry=reg,
            ),
            index_size=Gauge("facestream_index_size", "Faces in the index", ["replica"], registry=reg),
            applied_offset=Gauge(
                "facestream_replica_applied_offset",
                "Next embeddings offset to apply",
                ["replica", "partition"],
                registry=reg,
            ),
            replica_lag=Gauge(
                "facestream_replica_lag",
                "Embedding records behind the log end",
                ["replica"],
                registry=reg,
            ),
            in_flight=Gauge("facestream_in_flight", "Requests awaiting a reply", registry=reg),
            consumer_lag=Gauge(
                "facestream_consumer_lag",
                "Records not yet processed",
                ["group", "topic", "partition"],
                registry=reg,
            ),
            consumer_lag_seconds=Gauge(
                "facestream_consumer_lag_seconds",
                "Age of the oldest unprocessed record",
                ["group", "topic", "partition"],
                registry=reg,
            ),
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose /metrics for a worker process (the API serves its own route)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
