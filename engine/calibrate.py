"""Run an engine over a labelled folder and persist a chosen threshold (`facestream eval`).

Dataset layout: DATASET_DIR/<identity>/<image files>, a folder per person (LFW-style); or a root
holding such a folder as `people/` (then `scenes/` and other siblings are ignored), or a
`manifest.csv` with `path,identity` columns (paths relative to the root). Files are sniffed by
content, not extension; anything the engine refuses (no face, low quality,
undecodable...) is reported as a failure with its code, never silently dropped.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacestreamError
from engine.types import Engine

THRESHOLD_ENV = "FACESTREAM_THRESHOLD"


@dataclass(frozen=True)
class Sample:
    path: Path
    identity: str


@dataclass
class EmbeddedSet:
    embeddings: np.ndarray  # (n, dim), rows L2-normalised
    labels: list[str]
    paths: list[Path]
    failures: list[dict[str, str]] = field(default_factory=list)  # path, code, message


MANIFEST = "manifest.csv"
PEOPLE = "people"


def load_dataset(root: Path) -> list[Sample]:
    """A manifest.csv if the root has one; else the folder-per-person tree under `people/` if
    there is one, else under the root itself."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if (root / MANIFEST).is_file():
        return _from_manifest(root)
    return _from_folders(root / PEOPLE if (root / PEOPLE).is_dir() else root)


def _from_manifest(root: Path) -> list[Sample]:
    with open(root / MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "identity"} <= set(rows[0]):
        raise ValueError(f"{root / MANIFEST} needs `path,identity` columns and at least one row")
    samples = [Sample(root / row["path"], row["identity"]) for row in rows]
    missing = [str(s.path) for s in samples if not s.path.is_file()]
    if missing:
        raise FileNotFoundError(f"{root / MANIFEST} lists missing files: {', '.join(missing[:3])}")
    return samples


def _from_folders(root: Path) -> list[Sample]:
    """Every regular, non-hidden file one level below each non-hidden identity folder."""
    samples = [
        Sample(path, person.name)
        for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for path in sorted(person.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]
    if not samples:
        raise ValueError(
            f"{root} holds no images in per-person folders (DATASET_DIR/<person>/<image>, "
            f"DATASET_DIR/{PEOPLE}/<person>/<image>, or DATASET_DIR/{MANIFEST})"
        )
    return samples


def embed_dataset(engine: Engine, samples: list[Sample], *, batch: int = 32) -> EmbeddedSet:
    """One embedding per sample (the face the engine's multi-face policy picks first)."""
    crops, labels, paths, failures = [], [], [], []
    for sample in samples:
        try:
            prepared = engine.prepare(sample.path.read_bytes())
        except FacestreamError as exc:
            failures.append({"path": str(sample.path), "code": exc.code.value, "message": exc.message})
            continue
        crops.append(prepared.faces[0].crop)
        labels.append(sample.identity)
        paths.append(sample.path)
    parts = [engine.embed(crops[i : i + batch]) for i in range(0, len(crops), batch)]
    embeddings = np.concatenate(parts) if parts else np.zeros((0, engine.model.dim), np.float32)
    return EmbeddedSet(embeddings, labels, paths, failures)


def config_threshold(threshold: float, decimals: int = 4) -> float:
    """Round *up*, so the persisted threshold never accepts more impostors than the measured one."""
    factor = 10**decimals
    return min(1.0, math.ceil(threshold * factor - 1e-9) / factor)


def write_env_threshold(path: Path, threshold: float, *, key: str = THRESHOLD_ENV) -> None:
    """Set `key=<threshold>` in a .env-style file: replace the (last) existing assignment, keep
    every other line and comment, append when absent; written atomically."""
    path = Path(path)
    lines = path.read_text().splitlines() if path.exists() else []
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(key)}\s*=")
    entry = f"{key}={threshold}"
    hits = [i for i, line in enumerate(lines) if pattern.match(line)]
    if hits:
        for i in hits[:-1]:
            lines[i] = "# " + lines[i] + "  # superseded by facestream eval --write-config"
        lines[hits[-1]] = entry
    else:
        lines.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
