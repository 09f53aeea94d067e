"""py-spy profiles of running stack processes while a benchmark drives them: where the time
outside the model goes.

`record(pids, seconds)` samples each process (py-spy, collapsed stacks, idle threads left out)
and `summarise` splits its samples into the model (onnxruntime inference, OpenCV's under YuNet)
and the rest, by category of the leaf frame and by leaf function, so that a report says
"worker: 69% model; outside it, 16% image decode, 4% waiting ...".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# The model's inference: onnxruntime sessions, and OpenCV's DNN under the YuNet detector.
MODEL_FRAMES = ("onnxruntime_inference_collection.py", "YuNetDetector._run")


# What the time outside the model is, by the leaf frame's function or file (first match wins).
CATEGORIES = (
    # librdkafka's poll waits in C with the GIL released: an idle delivery thread, not work.
    (
        "waiting (event loop, idle threads)",
        ("selectors.py:", "Condition.wait", "thread.py:81", "RdProducer._serve"),
    ),
    # uvloop runs its loop in C: a sample there has the Python frame that started the loop as
    # its leaf, whether the loop was polling idle, writing to a socket or scheduling callbacks.
    ("uvloop (in C: polling, idle or not, and its callbacks)", ("asyncio/runners.py:", "mode/worker.py:")),
    ("image decode", ("PIL/", "engine/decode.py")),
    ("model pre/post-processing", ("engine/",)),
    ("socket writes and reads", ("selector_events.py",)),
    ("Kafka clients", ("aiokafka/", "faust/", "mode/", "kafka/", "core/rd_producer.py")),
    ("asyncio, anyio, thread handoffs", ("asyncio/", "anyio/", "threading.py", "concurrent/futures/")),
    ("JSON, pydantic, records", ("pydantic", "json", "core/kafka.py", "_records.py", "schemas/")),
    ("HTTP (uvicorn, starlette, multipart)", ("uvicorn/", "starlette/", "fastapi/", "multipart", "h11/")),
    ("search", ("faiss", "index/")),
)


def category(leaf: str) -> str:
    for name, markers in CATEGORIES:
        if any(marker in leaf for marker in markers):
            return name
    return "other"


@dataclass(frozen=True)
class Profile:
    name: str
    samples: int
    model_share: float
    top_outside_model: list[tuple[str, float]]  # (leaf frame, share of all samples)
    outside_model: dict[str, float]  # category -> share of all samples

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "model_share": round(self.model_share, 3),
            "outside_model": {name: round(share, 3) for name, share in self.outside_model.items()},
            "top_outside_model": [(frame, round(share, 3)) for frame, share in self.top_outside_model],
        }


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise(name: str, collapsed: Path, *, top: int = 10) -> Profile:
    leaves: Counter[str] = Counter()
    total = model = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        if any(marker in stack for marker in MODEL_FRAMES):
            model += count
            continue
        leaves[stack.split(";")[-1]] += count
    return Profile(
        name=name,
        samples=total,
        model_share=model / total if total else 0.0,
        top_outside_model=[(frame, n / total) for frame, n in leaves.most_common(top)] if total else [],
        outside_model=_by_category(leaves, total),
    )


def _by_category(leaves: Counter[str], total: int) -> dict[str, float]:
    shares: Counter[str] = Counter()
    for leaf, count in leaves.items():
        shares[category(leaf)] += count
    return {name: n / total for name, n in shares.most_common()} if total else {}


def pids_of(pattern: str) -> list[int]:
    """Processes whose command line matches; when this process names a topic prefix
    (FACESTREAM_TOPIC_PREFIX), only those of the stack with the same prefix."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    pids = [int(p) for p in found.stdout.split()]
    prefix = os.environ.get("FACESTREAM_TOPIC_PREFIX")
    return [pid for pid in pids if prefix is None or _environ(pid).get("FACESTREAM_TOPIC_PREFIX") == prefix]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}
