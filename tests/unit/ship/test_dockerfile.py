"""The Dockerfile names real files and real commands of the repository."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.unit.ship.shipfiles import REPO, facestream_calls, is_cli_invocation

DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(ARGs declared before the first FROM with their defaults, stages in order)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, base))
        elif not stages and keyword == "ARG":
            key, _, default = rest.partition("=")
            global_args[key.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse(DOCKERFILE.read_text())
    return {s.name: s for s in parsed}


def dockerignored() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_stages_cpu_default_and_gpu_variant(stages: dict[str, Stage]) -> None:
    assert {"base", "builder", "runtime", "gpu"} <= set(stages)
    assert stages["base"].base.startswith("python:3.11-slim")
    assert stages["gpu"].base.startswith("nvidia/cuda:") and "cudnn" in stages["gpu"].base
    # The last stage is the default target: it must be the CPU image.
    assert list(stages.values())[-1].base == "runtime"


def test_copy_sources_exist_and_are_in_the_build_context(stages: dict[str, Stage]) -> None:
    names = list(stages)
    ignored = dockerignored()
    for position, stage in enumerate(stages.values()):
        for keyword, args in stage.instructions:
            if keyword not in {"COPY", "ADD"}:
                continue
            words = shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            sources = paths[:-1]
            assert sources, f"{stage.name}: COPY {args}"
            origin = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            if origin is not None:
                assert origin in names[:position], f"COPY --from={origin} before that stage exists"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"{stage.name}: COPY source {source} is not in the repo"
                top = Path(source).parts[0]
                assert top not in ignored, f"{source} is excluded by .dockerignore"


def test_run_commands_name_real_packages_and_commands(stages: dict[str, Stage]) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    makefile = (REPO / "Makefile").read_text()
    runs = [args for stage in stages.values() for keyword, args in stage.instructions if keyword == "RUN"]
    text = "\n".join(runs)
    calls = facestream_calls(text)
    assert ["models", "pull", "default"] in calls
    for call in calls:
        assert is_cli_invocation(call), f"RUN names `facestream {' '.join(call)}`, which the CLI lacks"
    assert "facestream models pull default" in text
    # insightface goes in exactly as `make setup` installs it.
    pin = re.search(r"pip install -q --no-deps (insightface==\S+)", makefile)
    assert pin and f"pip install --no-deps {pin.group(1)}" in text
    # What the GPU stage swaps out is what pyproject pins; what it swaps in is real.
    for package in re.search(r"pip uninstall -y ([\w\- ]+)", text).group(1).split():  # type: ignore[union-attr]
        assert f'"{package}==' in pyproject, f"uninstalls {package}, which pyproject does not pin"
    assert "onnxruntime-gpu==" in text and "faiss-gpu-cu12==" in text
    assert "nodejs npm" in text, "models pull needs npm in the builder"


def test_runtime_images_are_non_root_with_the_api_healthcheck(stages: dict[str, Stage]) -> None:
    from api.app import create_app
    from core.settings import Settings

    paths = set(create_app(Settings()).openapi()["paths"])
    for name in ("runtime", "gpu"):
        instructions = stages[name].instructions
        users = [args for keyword, args in instructions if keyword == "USER"]
        assert users and users[-1] not in {"root", "0"}, f"{name} runs as root"
        health = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
        assert health, f"{name} has no HEALTHCHECK"
        probe = re.search(r"/health/\w+", health[0])
        assert probe and probe.group(0) == "/health/live" and probe.group(0) in paths
        entry = [args for keyword, args in instructions if keyword == "ENTRYPOINT"][-1]
        assert (
            entry == '["facestream"]'
            and 'facestream = "cli.main:main"' in (REPO / "pyproject.toml").read_text()
        )
        cmd = [args for keyword, args in instructions if keyword == "CMD"][-1]
        assert is_cli_invocation(eval(cmd))  # a JSON list of strings


def test_global_args_have_defaults() -> None:
    global_args, _ = parse(DOCKERFILE.read_text())
    assert global_args and all(global_args.values())
