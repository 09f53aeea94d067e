"""Prometheus rules and the Grafana dashboard query metrics that the code really exports."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.unit.ship.shipfiles import REPO

DEPLOY = REPO / "deploy"


def exported_names() -> set[str]:
    from core.metrics import Metrics

    metrics = Metrics.create()
    names: set[str] = set()
    for family in metrics.registry.collect():
        base = family.name
        names.add(base)
        if family.type == "counter":
            names.add(f"{base}_total")
        if family.type == "histogram":
            names.update({f"{base}_bucket", f"{base}_sum", f"{base}_count"})
    return names


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\bfacestream_[a-z0-9_]+", expr))


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alerts_use_real_metric_names() -> None:
    names = exported_names()
    for rule in rules():
        unknown = referenced(rule["expr"]) - names
        assert not unknown, f"{rule['alert']} queries unknown metrics {unknown}"


def test_the_required_alerts_exist() -> None:
    used = set().union(*(referenced(rule["expr"]) for rule in rules()))
    for metric in (
        "facestream_consumer_lag",
        "facestream_consumer_lag_seconds",
        "facestream_replica_lag",
        "facestream_errors_total",
        "facestream_http_requests_total",
        "facestream_messages_total",  # outcome="dead_letter"
    ):
        assert metric in used, f"no alert on {metric}"
    assert all(rule["labels"]["severity"] in {"warning", "critical"} for rule in rules())


def test_dashboard_queries_real_metrics_through_the_provisioned_datasource() -> None:
    names = exported_names()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "facestream.json").read_text())
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
    for expr in exprs:
        assert referenced(expr) <= names, expr
    covered = set().union(*(referenced(e) for e in exprs))
    assert {"facestream_stage_seconds_bucket", "facestream_index_size", "facestream_consumer_lag"} <= covered


def test_prometheus_scrapes_the_api_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["facestream-api"]["static_configs"][0]["targets"] == ["api:8000"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert str(compose["x-facestream"]["environment"]["FACESTREAM_METRICS_PORT"]) == "9100"
    assert all(sd["port"] == 9100 for job in jobs.values() for sd in job.get("dns_sd_configs", []))


def test_precommit_runs_ruff_lint_with_isort_rules_and_ruff_format() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    ruff = next(r for r in config["repos"] if r["repo"].endswith("astral-sh/ruff-pre-commit"))
    assert {h["id"] for h in ruff["hooks"]} >= {"ruff-check", "ruff-format"}
    pinned = re.search(r'"ruff==([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned and ruff["rev"] == f"v{pinned.group(1)}", "pre-commit's ruff differs from pyproject's"
    assert re.search(r'select = \[[^\]]*"I"', (REPO / "pyproject.toml").read_text()), "isort rules off"
