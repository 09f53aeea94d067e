"""Engine benchmark: per-stage latency by image size, batched vs one-by-one embedding, and the
detector table (every detector the pack ships, on the sample photos, group scenes and degraded
copies).

    .venv/bin/python -m bench.engine [--faces ../shared/faces] [--rounds 3] [--batch 16]
                                     [--detectors-only]

Detector table, per detector: faces found, rank-1 through the whole pipeline and genuine /
impostor separation (d') on the clean photos and on each degraded copy (`engine.degrade`;
probes against the clean photos of other images), faces found on the group scenes, and detection
latency by image size (detectors alternate photo by photo, so load on the host hits both alike).

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


def detector_table(settings: Settings, faces: Path, rounds: int) -> dict:
    from engine.degrade import VARIANTS
    from engine.packs import get_pack
    from engine.quality_eval import face_widths
    from engine.robustness import Photo, comparisons, rank1_hits, run_probes, summarise, variant_images

    pack = get_pack(settings.model_pack)
    kinds = pack.detector_kinds()
    engines = {k: build_engine(settings.model_copy(update={"detector": k})) for k in kinds}
    with (faces / "manifest.csv").open() as fh:
        photos = [Photo(faces / row["path"], row["identity"]) for row in csv.DictReader(fh)]
    reference = engines[pack.detector_kind]
    images = variant_images(
        photos, VARIANTS, face_widths=face_widths(reference, photos), limits=reference.limits
    )
    table: dict = {}
    for kind, engine in engines.items():
        probes = run_probes(engine, photos, images)
        comps = comparisons(probes)
        hits = rank1_hits(probes, comps)
        table[kind] = {"variants": [summarise(probes, v, comps, hits) for v in ("clean", *VARIANTS)]}
    scenes = sorted((faces / "scenes").glob("*")) if (faces / "scenes").is_dir() else []
    for kind, engine in engines.items():
        table[kind]["scenes_faces_found"] = {
            p.name: len(engine._detector.detect(decode_image(p.read_bytes(), engine.limits).bgr))
            for p in scenes
        }
    timings: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in kinds}
    decoded = [decode_image(p.path.read_bytes(), reference.limits) for p in photos]
    for _ in range(rounds):
        for image in decoded:
            for kind, engine in engines.items():
                _, ms = timed(engine._detector.detect, image.bgr)
                timings[kind][size_class(*image.original_size)].append(ms)
    for kind in kinds:
        table[kind]["detect_ms_by_size"] = {
            name: stats(timings[kind][name]) for _, name in SIZE_CLASSES if timings[kind][name]
        }
    table["scrfd"] = {
        "available": False,
        "why": "no registry package ships SCRFD weights (checked: PyPI scrfd 0.3.0, "
        "person-pose-faceid 0.4.2, cerberus-package-1 0.0.5 carry code only); the InsightFace "
        "packs' SCRFD needs `models pull buffalo_l --allow-unverified` (non-commercial)",
    }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_faces = os.environ.get("FACESTREAM_FACES_DIR", str(REPO.parent / "shared" / "faces"))
    parser.add_argument("--faces", type=Path, default=Path(default_faces))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--detectors-only", action="store_true", help="Only the detector table.")
    args = parser.parse_args()

    settings = Settings()
    if not settings.models_dir.is_absolute():
        settings = settings.model_copy(update={"models_dir": REPO / settings.models_dir})
    if args.detectors_only:
        print(json.dumps({"detectors": detector_table(settings, args.faces, args.rounds)}, indent=2))
        return
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
        "detectors": detector_table(settings, args.faces, args.rounds),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
