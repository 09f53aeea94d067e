"""Load test: concurrent clients identifying for a fixed time, then more clients, past saturation.

Needs a running stack (`make up`); talks to it on loopback only. Each step runs N clients that
POST /identify back to back for `--duration` seconds (and at most `--max-requests` requests),
with photos of people it enrolled first (tagged, so reruns reuse them). Per step it reports
throughput, p50/p95/p99/max latency and every non-200 answer by status and code; then where
throughput stopped growing (saturation) and what the API answered past it (more latency, or
429 `rate_limited` / 503 `unavailable` / 504 `timeout`). Prints JSON.

    .venv/bin/python -m bench.load --clients 1,2,4,8,16,32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import ipaddress
import itertools
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TAG = "loadbench"


def _loopback_only(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load-test {url}: this benchmark only targets loopback")


def _photos(root: Path, max_side: int) -> dict[str, list[bytes]]:
    people: dict[str, list[bytes]] = defaultdict(list)
    with (root / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            data = (root / row["path"]).read_bytes()
            if max_side:
                image = Image.open(io.BytesIO(data)).convert("RGB")
                image.thumbnail((max_side, max_side))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=90)
                data = buffer.getvalue()
            people[row["identity"]].append(data)
    return dict(sorted(people.items()))


async def _enroll(client: httpx.AsyncClient, people: dict[str, list[bytes]]) -> dict[str, int]:
    """Every person with all but the first photo (the first is the probe)."""
    accepted = {}
    for person, photos in people.items():
        files = [("images", (f"{n}.jpg", p)) for n, p in enumerate(photos[1:])]
        response = await client.post(f"/enroll/{TAG}-{person}", files=files, timeout=120)
        if response.status_code not in (201, 422):
            raise SystemExit(f"enrolling {person} failed: {response.status_code} {response.text}")
        accepted[person] = len(response.json().get("accepted", []))
    return accepted


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


async def _step(url: str, key: str, probes: list[bytes], clients: int, duration: float, cap: int) -> dict:
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def worker(n: int) -> None:
            nonlocal sent
            i = n
            while time.perf_counter() < deadline and sent < cap:
                sent += 1
                probe = probes[i % len(probes)]
                i += clients
                t0 = time.perf_counter()
                try:
                    response = await client.post(
                        "/identify", files={"image": ("probe.jpg", probe)}, timeout=60
                    )
                except httpx.HTTPError as exc:
                    answers[f"transport:{type(exc).__name__}"] += 1
                    continue
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    answers["200"] += 1
                else:
                    code = response.json().get("code", "") if response.content else ""
                    answers[f"{response.status_code}:{code}"] += 1

        await asyncio.gather(*(worker(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    errors = sum(v for k, v in answers.items() if k != "200")
    return {
        "clients": clients,
        "requests": sent,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(answers["200"] / elapsed, 2),
        "p50_ms": _pct(latencies, 50),
        "p95_ms": _pct(latencies, 95),
        "p99_ms": _pct(latencies, 99),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "errors": errors,
        "answers": dict(answers),
    }


def _saturation(steps: list[dict]) -> dict:
    """The first step whose extra clients bought < 10% more throughput: the knee."""
    best = steps[0]
    knee = None
    for previous, step in itertools.pairwise(steps):
        if step["throughput_rps"] > best["throughput_rps"]:
            best = step
        if knee is None and step["throughput_rps"] < previous["throughput_rps"] * 1.10:
            knee = previous
    first_error = next((s for s in steps if s["errors"]), None)
    return {
        "max_throughput_rps": best["throughput_rps"],
        "at_clients": best["clients"],
        "knee_clients": knee["clients"] if knee else None,
        "errors_below_knee": sum(
            s["errors"] for s in steps if knee is None or s["clients"] <= knee["clients"]
        ),
        "first_step_with_errors": (
            {"clients": first_error["clients"], "answers": first_error["answers"]} if first_error else None
        ),
    }


async def main_async(args: argparse.Namespace) -> dict:
    people = _photos(Path(args.faces_dir), args.max_side)
    async with httpx.AsyncClient(base_url=args.url, headers={"X-API-Key": args.key}) as client:
        health = (await client.get("/health", timeout=10)).json()
        if not health.get("ready"):
            raise SystemExit(f"stack not ready: {health}")
        accepted = await _enroll(client, people)
        # Wait until the replicas hold them, so every probe is a real 1:N search.
        for _ in range(120):
            stats = (await client.get("/stats", timeout=10)).json()
            if stats["gallery_size"] >= sum(accepted.values()):
                break
            await asyncio.sleep(0.5)
    probes = [photos[0] for photos in people.values()]
    steps = []
    for clients in args.clients:
        steps.append(await _step(args.url, args.key, probes, clients, args.duration, args.max_requests))
        print(json.dumps(steps[-1]), flush=True, file=sys.stderr)
    return {
        "url": args.url,
        "probes": len(probes),
        "gallery_size": stats["gallery_size"],
        "duration_s_per_step": args.duration,
        "max_requests_per_step": args.max_requests,
        "photo_max_side": args.max_side or "original",
        "steps": steps,
        "saturation": _saturation(steps),
    }


def main() -> None:
    port = os.environ.get("FACESTREAM_API_PORT", "8000")
    key_file = REPO / "var" / "dev-api-key"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}")
    parser.add_argument(
        "--key",
        default=os.environ.get("FACESTREAM_API_KEY")
        or (key_file.read_text().strip() if key_file.exists() else ""),
        help="an admin or identifier key (default: $FACESTREAM_API_KEY, then var/dev-api-key)",
    )
    parser.add_argument(
        "--faces-dir", default=os.environ.get("FACESTREAM_FACES_DIR", str(REPO.parent / "shared" / "faces"))
    )
    parser.add_argument(
        "--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32, 64]
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--max-requests", type=int, default=2000, help="cap per step")
    parser.add_argument("--max-side", type=int, default=0, help="downscale probes (0 = as they are)")
    args = parser.parse_args()
    _loopback_only(args.url)
    if not args.key:
        raise SystemExit("no API key: pass --key, set FACESTREAM_API_KEY, or run `make up` first")
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
