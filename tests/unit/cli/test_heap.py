"""Every facestream process reuses freed large buffers (core/heap.py)."""

from __future__ import annotations

import os
import subprocess
import sys

# A process entered through `cli`: a photo-sized buffer copied as a request copies it, again
# and again; then the page faults per round (each a fresh page touched for the first time).
PROBE = """
import cli, resource
photo = bytes(range(256)) * 9650  # 2.4 MB
def copies():
    body = bytearray(photo)
    record = bytes(body)
    image = record[16:]
    del body, record, image
for _ in range(5):
    copies()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    copies()
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(round((after - before) / 50))
"""


def _faults_per_round(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_a_photo_copied_again_and_again_lands_on_pages_already_faulted_in() -> None:
    # With glibc's defaults each round faults its ~1,800 pages in again (1,777 measured).
    assert _faults_per_round() < 50


def test_an_operator_setting_wins() -> None:
    # An operator's trim threshold alone leaves glibc's dynamic mmap threshold in charge.
    assert _faults_per_round(MALLOC_TRIM_THRESHOLD_="131072") > 500
