from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from core.settings import Settings
from engine.recognizer import ArcFaceRecognizer, dynamic_batch_bytes, with_dynamic_batch
from engine.sessions import create_session, providers, session_options
from schemas.events import ModelInfo

DIM = 8
FLAT = 3 * 112 * 112


def tiny_arcface(*, shape_as_constant_node: bool = False, batch: int | str = 1) -> onnx.ModelProto:
    """input [1,3,112,112] -> Reshape([1,-1]) -> MatMul -> output [1,8], like fr_feature.onnx."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((FLAT, DIM)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w"], ["output"], name="matmul"),
    ]
    initializers = [weight, shape]
    if shape_as_constant_node:
        nodes.insert(0, helper.make_node("Constant", [], ["shape"], value=shape, name="const"))
        initializers = [weight]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, DIM])],
        initializers,
        value_info=[helper.make_tensor_value_info("flat", TensorProto.FLOAT, [batch, FLAT])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _crops(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(n)]


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("constant_node", [False, True])
def test_dynamic_batch_runs_many_and_matches_one_by_one(constant_node: bool) -> None:
    model = tiny_arcface(shape_as_constant_node=constant_node)
    fixed, dynamic = _session(model), _session(with_dynamic_batch(model))
    assert isinstance(dynamic.get_inputs()[0].shape[0], str)
    blob = np.random.default_rng(2).standard_normal((5, 3, 112, 112)).astype(np.float32)
    batched = dynamic.run(None, {"input": blob})[0]
    single = np.concatenate([fixed.run(None, {"input": blob[i : i + 1]})[0] for i in range(5)])
    assert batched.shape == (5, DIM)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception):  # noqa: B017 - the original really is batch-1 only
        fixed.run(None, {"input": blob})


def test_dynamic_batch_leaves_the_input_model_alone_and_skips_dynamic_models() -> None:
    model = tiny_arcface()
    with_dynamic_batch(model)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    already = tiny_arcface(batch="N")
    assert with_dynamic_batch(already) == already


def test_arcface_recognizer_embeds_unit_vectors_in_micro_batches(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_arcface(), str(path))
    info = ModelInfo(pack="t", recognizer="tiny", version="1", dim=DIM)
    session = create_session(dynamic_batch_bytes(path), Settings(inference_threads=1))
    recognizer = ArcFaceRecognizer(session, model_file=path, model_info=info, max_batch=3)
    crops = _crops(7)
    out = recognizer.embed(crops)
    assert out.shape == (7, DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([recognizer.embed([c]) for c in crops])
    np.testing.assert_allclose(out, one_by_one, atol=1e-5)
    assert recognizer.embed([]).shape == (0, DIM)
    assert recognizer.model_info == info


def test_fixed_batch_session_falls_back_to_one_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_arcface(), str(path))
    info = ModelInfo(pack="t", recognizer="tiny", version="1", dim=DIM)
    session = create_session(path, Settings())
    recognizer = ArcFaceRecognizer(session, model_file=path, model_info=info, max_batch=16)
    assert recognizer.embed(_crops(3)).shape == (3, DIM)


def test_session_settings() -> None:
    assert providers(Settings(device="cpu")) == ["CPUExecutionProvider"]
    cuda = providers(Settings(device="cuda"))
    assert cuda[-1] == "CPUExecutionProvider"  # falls back where onnxruntime lacks CUDA
    assert session_options(Settings(inference_threads=3)).intra_op_num_threads == 3
    spinning = "session.intra_op.allow_spinning"
    assert session_options(Settings()).get_session_config_entry(spinning) == "0"
    assert session_options(Settings(inference_spinning=True)).get_session_config_entry(spinning) == "1"
