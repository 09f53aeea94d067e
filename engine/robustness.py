"""Run a real engine over labelled photos and their degraded copies, and score what comes out.

Protocol: the clean photos are the gallery; every photo, clean or degraded, is a probe against
the clean photos of *other* images (leave-one-out: a probe never meets its own source).

- found: the share of probes in which the detector found a face at all;
- rank-1: the share of all probes (a missed face counts as a miss) whose nearest gallery face
  belongs to the right person — identification through the whole pipeline;
- genuine/impostor: probe-vs-gallery cosine scores, summarised with d' (separation);
- per probe: the quality score (`DefaultQuality`) and the recognizer's pre-normalisation
  embedding norm, the two quality signals the EDC compares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacestreamError
from engine.decode import DecodeLimits, decode_image
from engine.degrade import degrade
from engine.pipeline import FaceEngine

CLEAN = "clean"


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str


@dataclass
class Probe:
    source: int  # index of the photo it came from
    identity: str
    variant: str
    size: tuple[int, int] = (0, 0)
    error: str | None = None  # the engine's code when no face came out
    quality: float = 0.0
    weakest: str = ""
    norm: float = 0.0
    detect_ms: float = 0.0
    vector: np.ndarray | None = field(default=None, repr=False)


def variant_images(
    photos: Sequence[Photo],
    variants: Sequence[str],
    *,
    face_widths: Sequence[float | None],
    limits: DecodeLimits,
) -> list[tuple[int, str, bytes]]:
    """(photo index, variant, bytes): the clean file as it is, and each degraded copy (none for
    a photo whose clean face was not found: `face_widths[i]` is None)."""
    out: list[tuple[int, str, bytes]] = []
    for i, photo in enumerate(photos):
        data = photo.path.read_bytes()
        out.append((i, CLEAN, data))
        width = face_widths[i]
        if not variants or width is None:
            continue
        bgr = decode_image(data, limits).bgr
        out.extend((i, v, degrade(bgr, v, face_width=width)) for v in variants)
    return out


def run_probes(
    engine: FaceEngine, photos: Sequence[Photo], images: Sequence[tuple[int, str, bytes]]
) -> list[Probe]:
    """Every image through the engine without a quality bar; one probe per image."""
    probes: list[Probe] = []
    for index, variant, data in images:
        probe = Probe(source=index, identity=photos[index].identity, variant=variant)
        start = time.perf_counter()
        try:
            prepared = engine.prepare(data)
        except FacestreamError as exc:
            probe.error = exc.code.value
            probe.detect_ms = (time.perf_counter() - start) * 1000
            probes.append(probe)
            continue
        face = prepared.faces[0]
        raw = engine.features([face.crop])[0]
        probe.size = prepared.size
        probe.quality = face.quality
        probe.weakest = (
            min(face.quality_factors, key=lambda k: face.quality_factors[k]) if face.quality_factors else ""
        )
        probe.norm = float(np.linalg.norm(raw))
        probe.vector = raw / max(probe.norm, 1e-12)
        probe.detect_ms = prepared.timings.get("detect_ms", 0.0)
        probes.append(probe)
    return probes


@dataclass(frozen=True)
class Comparisons:
    """Probe-vs-gallery comparisons, flattened: one row per (probe, other clean photo)."""

    probe: np.ndarray  # index into the probe list
    gallery: np.ndarray  # index into the probe list (a clean probe)
    score: np.ndarray
    genuine: np.ndarray  # bool


def comparisons(probes: Sequence[Probe]) -> Comparisons:
    clean = [i for i, p in enumerate(probes) if p.variant == CLEAN and p.vector is not None]
    gallery = np.stack([probes[i].vector for i in clean]) if clean else np.zeros((0, 1))  # type: ignore[misc]
    rows: list[tuple[int, int, float, bool]] = []
    for i, p in enumerate(probes):
        if p.vector is None or not clean:
            continue
        sims = gallery @ p.vector
        for k, g in enumerate(clean):
            if probes[g].source != p.source:
                rows.append((i, g, float(sims[k]), probes[g].identity == p.identity))
    if not rows:
        empty = np.zeros(0)
        return Comparisons(empty.astype(int), empty.astype(int), empty, empty.astype(bool))
    a = np.array(rows, dtype=object)
    return Comparisons(a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2].astype(float), a[:, 3].astype(bool))


def rank1_hits(probes: Sequence[Probe], comps: Comparisons) -> dict[int, bool]:
    """Probe index -> whether its nearest gallery face (other sources) is the right person."""
    hits: dict[int, bool] = {}
    for i in np.unique(comps.probe):
        mine = comps.probe == i
        best = int(np.argmax(comps.score[mine]))
        hits[int(i)] = bool(comps.genuine[mine][best])
    return hits


def d_prime(genuine: np.ndarray, impostor: np.ndarray) -> float | None:
    if genuine.size < 2 or impostor.size < 2:
        return None
    spread = np.sqrt((genuine.var() + impostor.var()) / 2)
    return float((genuine.mean() - impostor.mean()) / spread) if spread > 0 else None


def summarise(
    probes: Sequence[Probe], variant: str, comps: Comparisons, hits: dict[int, bool]
) -> dict[str, object]:
    """found, rank-1, genuine/impostor means and d' for one variant's probes."""
    mine = [i for i, p in enumerate(probes) if p.variant == variant]
    found = [i for i in mine if probes[i].vector is not None]
    in_variant = np.isin(comps.probe, mine)
    gen, imp = comps.score[in_variant & comps.genuine], comps.score[in_variant & ~comps.genuine]
    separation = d_prime(gen, imp)
    return {
        "variant": variant,
        "probes": len(mine),
        "found": len(found),
        "rank1": round(sum(hits.get(i, False) for i in mine) / len(mine), 4) if mine else None,
        "genuine_mean": round(float(gen.mean()), 4) if gen.size else None,
        "impostor_mean": round(float(imp.mean()), 4) if imp.size else None,
        "d_prime": round(separation, 3) if separation is not None else None,
        "detect_ms_p50": round(float(np.median([probes[i].detect_ms for i in mine])), 1) if mine else None,
    }
