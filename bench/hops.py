"""Where one identify request's time goes on its way through the stack, hop by hop.

Three sources, all on this machine's wall clock:
  * the client: when it sent the request, when the answer came back, and the stage timings the
    answer carries (decode, detect, align, embed from the worker; search from the replica);
  * the Kafka records the request caused, by their CreateTime (stamped by the producing client
    when it sends): the IdentifyFace (facade), the IdentifyQuery (identify worker), the reply
    (replica) and the audit record the facade writes before it answers;
  * the stack's JSON log: the worker's `batch_taken` (how long the record waited before the
    worker's agent took it), `face_embedded` (its model work done) and the replica's `searched`
    (its search done).

The hops telescope: per request they add up to the latency the client measured. CreateTime
has millisecond resolution, so a hop is ±1 ms per request; means over a run are exact enough.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings
from schemas.envelope import Header

WORK_STAGES = ("decode_ms", "detect_ms", "align_ms", "embed_ms")
# name, (start point, end point): points are keys of `Trace.points`.
HOPS = (
    ("facade: HTTP in -> IdentifyFace produced", ("sent", "request")),
    ("-> worker's agent takes it (broker, faust, batch window)", ("request", "taken")),
    ("worker: taken -> work starts (parse, gallery gate, executor)", ("taken", "work_start")),
    ("worker: decode+detect+align+embed", ("work_start", "work_end")),
    ("worker: work done -> IdentifyQuery produced", ("work_end", "query")),
    ("-> replica starts its search (fetch, parse)", ("query", "search_start")),
    ("replica: search", ("search_start", "search_end")),
    ("replica: search done -> reply produced", ("search_end", "reply")),
    ("-> facade has the reply, audit record produced", ("reply", "audit")),
    ("audit acked -> HTTP answer at the client", ("audit", "answered")),
)


@dataclass
class Trace:
    """One request's points in time (wall clock, seconds)."""

    request_id: str
    points: dict[str, float] = field(default_factory=dict)

    def hop(self, start: str, end: str) -> float | None:
        if start in self.points and end in self.points:
            return (self.points[end] - self.points[start]) * 1000
        return None


def _config(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
        "group.id": f"{settings.topic_prefix}.bench-hops",  # required; nothing is committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }


class RecordTimes:
    """CreateTime of the records produced to some topics between `mark()` and `read()`, by the
    correlation id in their headers (the request id for an identify)."""

    def __init__(self, settings: Settings, topics: dict[str, str]) -> None:
        self.settings = settings
        self.topics = topics  # point name -> topic
        self.starts: dict[tuple[str, int], int] = {}

    def _watermarks(self, consumer: Consumer) -> dict[tuple[str, int], int]:
        marks = {}
        for topic in self.topics.values():
            found = consumer.list_topics(topic, timeout=10).topics.get(topic)
            for partition in sorted(found.partitions) if found is not None and found.error is None else []:
                marks[(topic, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )[1]
        return marks

    def mark(self) -> None:
        consumer = Consumer(_config(self.settings))
        try:
            self.starts = self._watermarks(consumer)
        finally:
            consumer.close()

    def read(self) -> dict[str, dict[str, float]]:
        """point name -> correlation id -> CreateTime (s) of the first such record."""
        consumer = Consumer(_config(self.settings))
        try:
            ends = self._watermarks(consumer)
            pending = {tp for tp, end in ends.items() if end > self.starts.get(tp, 0)}
            consumer.assign([TopicPartition(t, p, self.starts.get((t, p), 0)) for t, p in pending])
            points = {topic: name for name, topic in self.topics.items()}
            found: dict[str, dict[str, float]] = {name: {} for name in self.topics}
            while pending:
                for message in consumer.consume(num_messages=500, timeout=5) or [None]:
                    if message is None:
                        pending.clear()  # nothing more within the timeout
                        break
                    tp = (message.topic(), message.partition())
                    if message.error() is not None or message.offset() >= ends[tp] - 1:
                        pending.discard(tp)
                    if message.error() is not None:
                        continue
                    headers = dict(message.headers() or ())
                    correlation = headers.get(Header.CORRELATION_ID)
                    if correlation is not None:
                        times = found[points[message.topic()]]
                        times.setdefault(correlation.decode(), message.timestamp()[1] / 1000)
            return found
        finally:
            consumer.close()


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def log_times(lines: Iterable[str], event: str) -> dict[str, tuple[float, dict[str, Any]]]:
    """correlation id -> (time, fields) of the first `event` line in a JSON log."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for line in lines:
        if f'"{event}"' not in line:
            continue
        try:
            fields = json.loads(line)
        except ValueError:
            continue
        correlation = fields.get("correlation_id")
        if fields.get("event") == event and correlation and "timestamp" in fields:
            found.setdefault(correlation, (_stamp(fields["timestamp"]), fields))
    return found


def batches_taken(lines: Iterable[str], stage: str) -> dict[str, float]:
    """correlation id -> how long its record waited (ms) before its stage's worker took it."""
    found: dict[str, float] = {}
    for line in lines:
        if '"batch_taken"' not in line:
            continue
        try:
            fields = json.loads(line)
        except ValueError:
            continue
        if fields.get("event") != "batch_taken" or fields.get("stage") != stage:
            continue
        pairs = zip(fields.get("correlation_ids", []), fields.get("waited_ms", []), strict=False)
        for correlation, waited in pairs:
            if correlation and waited is not None:
                found.setdefault(correlation, float(waited))
    return found


def read_log_since(path: Path, offset: int) -> list[str]:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace").splitlines()


def assemble(
    answers: list[tuple[str, float, float, dict[str, float]]],
    records: dict[str, dict[str, float]],
    log_lines: list[str],
) -> list[Trace]:
    """One trace per answered request: (request id, sent, answered, timings_ms) from the client."""
    embedded = log_times(log_lines, "face_embedded")
    taken = batches_taken(log_lines, "identify")
    searched = log_times(log_lines, "searched")
    traces = []
    for request_id, sent, answered, timings in answers:
        trace = Trace(request_id, {"sent": sent, "answered": answered})
        for name, times in records.items():
            if request_id in times:
                trace.points[name] = times[request_id]
        work_s = sum(timings.get(stage, 0.0) for stage in WORK_STAGES) / 1000
        if request_id in embedded:
            trace.points["work_end"] = embedded[request_id][0]
            trace.points["work_start"] = embedded[request_id][0] - work_s
        if request_id in taken and "request" in trace.points:
            trace.points["taken"] = trace.points["request"] + taken[request_id] / 1000
        elif "work_start" in trace.points:
            trace.points["taken"] = trace.points["work_start"]  # a worker that logs no batch_taken
        if request_id in searched:
            done, fields = searched[request_id]
            trace.points["search_end"] = done
            search_ms = float(fields.get("search_ms", timings.get("search_ms", 0.0)))
            trace.points["search_start"] = done - search_ms / 1000
        elif "reply" in trace.points:
            # A replica that does not log its searches (older code): its search ends at its reply.
            trace.points["search_end"] = trace.points["reply"]
            trace.points["search_start"] = trace.points["reply"] - timings.get("search_ms", 0.0) / 1000
        traces.append(trace)
    return traces


def breakdown(traces: list[Trace]) -> dict[str, Any]:
    """Per hop: mean, p50 and p95 (ms) over the requests whose every point was found; the means
    add up to the mean latency of those requests."""
    complete = [t for t in traces if all(t.hop(a, b) is not None for _, (a, b) in HOPS)]
    if not complete:
        return {"requests": 0, "traced": 0}
    hops = {}
    for name, (start, end) in HOPS:
        values = [t.hop(start, end) or 0.0 for t in complete]
        hops[name] = {
            "mean_ms": round(statistics.fmean(values), 1),
            "p50_ms": round(float(np.percentile(values, 50)), 1),
            "p95_ms": round(float(np.percentile(values, 95)), 1),
        }
    totals = [t.hop("sent", "answered") or 0.0 for t in complete]
    work = {"worker: decode+detect+align+embed", "replica: search"}
    outside = [sum(t.hop(a, b) or 0.0 for name, (a, b) in HOPS if name not in work) for t in complete]
    return {
        "requests": len(traces),
        "traced": len(complete),
        "latency_mean_ms": round(statistics.fmean(totals), 1),
        "latency_p50_ms": round(float(np.percentile(totals, 50)), 1),
        "outside_the_work_mean_ms": round(statistics.fmean(outside), 1),
        "outside_the_work_p50_ms": round(float(np.percentile(outside, 50)), 1),
        "hops": hops,
    }
