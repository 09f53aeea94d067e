"""ArcFace-family recognizer: aligned 112x112 crops -> L2-normalised embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from onnx import numpy_helper

from schemas.events import ModelInfo

BATCH_DIM = "batch"


class Recognizer(Protocol):
    model_info: ModelInfo

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 before L2 normalisation (its norm is a quality signal)."""
        ...


def _fixed_batch_of_one(value: onnx.ValueInfoProto) -> bool:
    dims = value.type.tensor_type.shape.dim
    return len(dims) > 0 and dims[0].HasField("dim_value") and dims[0].dim_value == 1


def with_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose batch dimension is symbolic, so one run embeds many crops.

    Exported models often hard-code batch 1 twice: in the graph's input/output shapes and in a
    constant Reshape target such as [1, -1]. Both are rewritten: dim 0 becomes "batch" and a
    Reshape target's leading 1 becomes 0 ("copy that dimension from the input"). A model whose
    inputs are already dynamic is returned unchanged (as a copy).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializer_names = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializer_names]
    if not any(_fixed_batch_of_one(i) for i in real_inputs):
        return out
    for value in [*real_inputs, *graph.output]:
        if _fixed_batch_of_one(value):
            value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    # Intermediate shape hints would still say 1; onnxruntime re-infers them.
    del graph.value_info[:]

    reshape_shapes = {n.input[1] for n in graph.node if n.op_type == "Reshape" and len(n.input) > 1}
    for tensor in graph.initializer:
        if tensor.name in reshape_shapes:
            _free_leading_one(tensor)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in reshape_shapes:
            for attr in node.attribute:
                if attr.name == "value":
                    _free_leading_one(attr.t)
    return out


def _free_leading_one(tensor: onnx.TensorProto) -> None:
    shape = numpy_helper.to_array(tensor)
    if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
        shape = shape.copy()
        shape[0] = 0
        tensor.CopyFrom(numpy_helper.from_array(shape, tensor.name))


def dynamic_batch_bytes(model_path: Path) -> bytes:
    return with_dynamic_batch(onnx.load(str(model_path))).SerializeToString()


class ArcFaceRecognizer:
    """InsightFace's `ArcFaceONNX` (its preprocessing: RGB, (x - 127.5) / 127.5) on an injected
    session, in micro-batches of at most `max_batch` crops."""

    def __init__(self, session: Any, *, model_file: Path, model_info: ModelInfo, max_batch: int = 32) -> None:
        # ArcFaceONNX reads model_file only to choose its input normalisation.
        self._arcface = ArcFaceONNX(model_file=str(model_file), session=session)
        self.model_info = model_info
        batch = session.get_inputs()[0].shape[0]
        self._max_batch = max_batch if not isinstance(batch, int) else max(1, min(batch, max_batch))

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.model_info.dim), np.float32)
        parts = [
            self._arcface.get_feat(list(crops[i : i + self._max_batch]))
            for i in range(0, len(crops), self._max_batch)
        ]
        return np.concatenate(parts, axis=0).astype(np.float32).reshape(len(crops), -1)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        features = self.features(crops)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return features / np.maximum(norms, 1e-12)
