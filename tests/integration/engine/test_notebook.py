"""The calibration notebook runs top to bottom (as CI does) and draws its plots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.models

REPO = Path(__file__).resolve().parents[3]


def test_calibration_notebook_executes_and_plots(faces_dir: Path, monkeypatch) -> None:
    import nbclient
    import nbformat

    monkeypatch.setenv("FACESTREAM_FACES_DIR", str(faces_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(REPO / "notebooks" / "calibration.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    )
    # The kernel's environment is an argument of execute(), not of the client.
    client.execute(env=dict(os.environ))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot in the notebook's outputs"
    text = "".join(o.get("text", "") for o in outputs)
    assert "rank-1 (leave-one-out): {'accuracy': 1.0" in text
    # The EDC section: both quality signals' curves, the better one chosen, the bars drawn.
    assert "EDC area (heuristic)" in text and "EDC area (norm)" in text
    assert "chosen signal: norm" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 2, "the EDC plot is missing"
