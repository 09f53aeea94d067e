"""Decode benchmark: reduced-size JPEG decoding for detection vs full decode, in one run.

On the sample photos (``--faces``, a folder per person with ``manifest.csv``) and group scenes,
three decode policies, timed photo by photo in turn (so load on the host hits each alike):
  * ``full``: every pixel (``draft_min_side=0``);
  * ``twice``: DCT-scaled to >= 2x the detection size (the previous default);
  * ``reduced``: DCT-scaled to >= the detection size; the crop comes from a finer decode only
    where the face needs more pixels (``engine.crop``).
Reported per size class: decode time and decode+detect+align (``prepare``) time, each policy's
ratio to ``full``; and recognition parity: cosine similarity of each photo's embedding under a
policy vs under ``full`` (the lowest is usually a huge face, where ``full`` warps the full image
down ~15x without filtering and the DCT-scaled source aliases less), leave-one-out rank-1 and
the genuine / impostor score distributions per policy.

    .venv/bin/python -m bench.decode [--faces ../shared/faces] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.engine import load_paths, size_class
from core.errors import FacestreamError
from core.settings import Settings
from engine.decode import DecodeLimits, decode_image
from engine.evaluation import pair_scores, rank1_leave_one_out
from engine.factory import build_engine
from engine.pipeline import FaceEngine

REPO = Path(__file__).resolve().parents[1]


def policies(settings: Settings) -> dict[str, DecodeLimits]:
    base = DecodeLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    return {
        "full": base,
        "twice": DecodeLimits(
            base.max_bytes, base.max_pixels, draft_min_side=2 * settings.detection_max_side
        ),
        "reduced": DecodeLimits(base.max_bytes, base.max_pixels, draft_min_side=settings.detection_max_side),
    }


def with_limits(engine: FaceEngine, limits: DecodeLimits) -> FaceEngine:
    variant = copy.copy(engine)
    variant._limits = limits  # the same sessions, another decode policy
    return variant


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    limits = policies(settings)
    engine = build_engine(settings)
    engines = {name: with_limits(engine, lim) for name, lim in limits.items()}
    paths = load_paths(args.faces)
    labels = [p.parent.name for p in paths]
    scenes = sorted((args.faces / "scenes").glob("*"))
    decode_ms: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    prepare_ms: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    crops: dict[str, list[np.ndarray | None]] = {name: [] for name in limits}
    scene_faces: dict[str, dict[str, int]] = {name: {} for name in limits}
    order = list(limits)
    for turn, path in enumerate([*paths, *scenes]):
        data = path.read_bytes()
        size = decode_image(data, limits["full"]).original_size
        group = size_class(*size)
        names = order if turn % 2 == 0 else list(reversed(order))
        for _ in range(args.rounds):
            for name in names:
                start = time.perf_counter()
                decode_image(data, limits[name])
                decode_ms[group][name].append(_ms(start))
        for name in names:
            start = time.perf_counter()
            try:
                prepared = engines[name].prepare(data)
            except FacestreamError:
                prepared = None
            prepare_ms[group][name].append(_ms(start))
            if path in scenes:
                scene_faces[name][path.name] = prepared.face_count if prepared else 0
            else:
                crops[name].append(prepared.faces[0].crop if prepared else None)
    found = [i for i in range(len(paths)) if all(crops[name][i] is not None for name in limits)]
    vectors = {name: engine.embed([crops[name][i] for i in found]) for name in limits}  # type: ignore[misc]
    kept = [labels[i] for i in found]
    parity: dict[str, Any] = {}
    for name in limits:
        cos = np.sum(vectors[name] * vectors["full"], axis=1)
        genuine, impostor = pair_scores(vectors[name], kept)
        parity[name] = {
            "cosine_vs_full_min": round(float(cos.min()), 4),
            "cosine_vs_full_mean": round(float(cos.mean()), 4),
            "worst_photo": paths[found[int(cos.argmin())]].relative_to(args.faces).as_posix(),
            "rank1": rank1_leave_one_out(vectors[name], kept),
            "genuine_mean": round(float(genuine.mean()), 4),
            "impostor_mean": round(float(impostor.mean()), 4),
            "genuine_min": round(float(genuine.min()), 4),
            "impostor_max": round(float(impostor.max()), 4),
        }
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "detection_max_side": settings.detection_max_side,
        "photos": len(paths),
        "faces_found_by_every_policy": len(found),
        "by_size": {},
        "recognition": parity,
        "scene_faces": scene_faces,
    }
    for group in sorted(decode_ms):
        entry: dict[str, Any] = {"n_photos": len(prepare_ms[group]["full"])}
        for what, table in (("decode", decode_ms[group]), ("prepare", prepare_ms[group])):
            p50 = {name: float(np.percentile(table[name], 50)) for name in limits}
            total = {name: float(np.sum(table[name])) for name in limits}
            entry[what] = {
                "p50_ms": {k: round(v, 2) for k, v in p50.items()},
                "ratio_vs_full_total": {k: round(total[k] / total["full"], 3) for k in limits},
            }
        report["by_size"][group] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
