"""onnxruntime sessions built from settings: execution providers and thread counts."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from core.settings import Settings

log = logging.getLogger(__name__)


def providers(settings: Settings) -> list[str]:
    if settings.device == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        log.warning("device=cuda but onnxruntime has no CUDAExecutionProvider; using CPU")
    return ["CPUExecutionProvider"]


def session_options(settings: Settings) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, settings.inference_threads)
    options.inter_op_num_threads = 1
    # Spinning threads hold a core while they wait for the next operator; every other process
    # of the stack (the broker, the facade, the other worker) wants that core meanwhile.
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if settings.inference_spinning else "0"
    )
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # onnxruntime's own warnings go to stderr, not our logs
    return options


def create_session(model: bytes | Path, settings: Settings) -> ort.InferenceSession:
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=session_options(settings), providers=providers(settings))
