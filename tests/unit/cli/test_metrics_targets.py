"""Every process of the local stack gets its own metrics port, listed for Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

from cli.metrics_targets import assign_ports, file_sd, write_targets

NAMES = ["api", "enroll-worker", "identify-worker", "projector", "eraser", "replica-1", "replica-2"]


def test_no_two_processes_share_a_port_and_the_api_keeps_its_own_route() -> None:
    ports = assign_ports(NAMES, 0)
    assert ports["api"] == 0
    others = [p for n, p in ports.items() if n != "api"]
    assert len(set(others)) == len(NAMES) - 1
    assert min(others) == 9101
    assert assign_ports(NAMES, 9200)["enroll-worker"] == 9200


def test_targets_carry_the_jobs_the_alerts_and_dashboard_use(tmp_path: Path) -> None:
    groups = file_sd(assign_ports(NAMES, 0), api_host="127.0.0.1", api_port=8000)
    by_service = {g["labels"]["service"]: g for g in groups}
    assert by_service["api"] == {
        "targets": ["127.0.0.1:8000"],
        "labels": {"job": "facestream-api", "service": "api"},
    }
    assert by_service["replica-2"]["labels"]["job"] == "facestream-replicas"
    assert by_service["projector"]["labels"]["job"] == "facestream-workers"
    path = write_targets(groups, 8000, tmp_path)
    assert path.name == "targets-8000.json"
    assert json.loads(path.read_text()) == groups
