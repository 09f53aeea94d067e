"""Engine benchmark: per-stage latency by image size, and batched vs one-by-one embedding.

    .venv/bin/python -m bench.engine [--faces ../shared/faces] [--rounds 3] [--batch 16]

Stages are timed separately on each sample photo (decode, detect, align, embed one crop) and
grouped by the photo's size in megapixels. Then every aligned crop is embedded one call per
crop and in batches of --batch, in the same process, and the throughput ratio is printed.
Prints one JSON document on stdout. Uses the configured settings (model pack, device, threads).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from core.settings import Settings
from engine.align import align
from engine.decode import decode_image
from engine.factory import build_engine

REPO = Path(__file__).resolve().parents[1]
SIZE_CLASSES = ((0.5, "<0.5MP"), (2.0, "0.5-2MP"), (8.0, "2-8MP"), (float("inf"), ">8MP"))


def size_class(width: int, height: int) -> str:
    mp = width * height / 1e6
    return next(name for limit, name in SIZE_CLASSES if mp < limit)


def load_paths(root: Path) -> list[Path]:
    with (root / "manifest.csv").open() as fh:
        return [root / row["path"] for row in csv.DictReader(fh)]


def stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "mean_ms": round(float(arr.mean()), 2),
    }


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - start) * 1000.0


def stage_latency(engine, images: list[bytes], rounds: int) -> tuple[dict, list[np.ndarray]]:
    detector, recognizer, limits = engine._detector, engine._recognizer, engine._limits
    per_class: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    crops: list[np.ndarray] = []
    for r in range(rounds):
        for data in images:
            decoded, decode_ms = timed(decode_image, data, limits)
            faces, detect_ms = timed(detector.detect, decoded.bgr)
            face = max(faces, key=lambda f: f.area)
            crop, align_ms = timed(align, decoded.bgr, face.landmarks)
            _, embed_ms = timed(recognizer.embed, [crop])
            cls = per_class[size_class(*decoded.original_size)]
            for stage, ms in (
                ("decode", decode_ms),
                ("detect", detect_ms),
                ("align", align_ms),
                ("embed", embed_ms),
            ):
                cls[stage].append(ms)
            if r == 0:
                crops.append(crop)
    report = {
        name: {stage: stats(values) for stage, values in stages.items()}
        | {"images": len(stages["decode"]) // rounds}
        for name, stages in sorted(
            per_class.items(), key=lambda kv: [n for _, n in SIZE_CLASSES].index(kv[0])
        )
    }
    return report, crops


def batching(engine, crops: list[np.ndarray], batch: int, rounds: int) -> dict:
    recognizer = engine._recognizer
    recognizer.embed(crops[:batch])  # warm-up: allocations for the batch shape
    one, batched = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for crop in crops:
            recognizer.embed([crop])
        one.append(time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(0, len(crops), batch):
            recognizer.embed(crops[i : i + batch])
        batched.append(time.perf_counter() - start)
    one_rate, batch_rate = len(crops) / min(one), len(crops) / min(batched)
    return {
        "crops": len(crops),
        "batch_size": batch,
        "one_by_one_faces_per_s": round(one_rate, 1),
        "batched_faces_per_s": round(batch_rate, 1),
        "batched_over_one_by_one": round(batch_rate / one_rate, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_faces = os.environ.get("FACESTREAM_FACES_DIR", str(REPO.parent / "shared" / "faces"))
    parser.add_argument("--faces", type=Path, default=Path(default_faces))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    settings = Settings()
    if not settings.models_dir.is_absolute():
        settings = settings.model_copy(update={"models_dir": REPO / settings.models_dir})
    engine = build_engine(settings)
    images = [p.read_bytes() for p in load_paths(args.faces)]
    engine.prepare(images[0])  # warm-up
    stages, crops = stage_latency(engine, images, args.rounds)
    report = {
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "device": settings.device},
        "model": engine.model.id,
        "detection_max_side": settings.detection_max_side,
        "rounds": args.rounds,
        "stages_by_size": stages,
        "embedding": batching(engine, crops, args.batch, args.rounds),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
