"""The clients' hermetic tests: the Python client imported from clients/python (it is a
separate package, not installed into the project's environment), scripted API answers."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PYTHON_CLIENT = REPO / "clients" / "python"
if str(PYTHON_CLIENT) not in sys.path:
    sys.path.insert(0, str(PYTHON_CLIENT))
