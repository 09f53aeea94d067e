"""Quality gate, liveness experiment, hostile inputs and `facestream eval` on the real default
pack and the shared sample photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from core.errors import ErrorCode, FacestreamError
from engine.decode import decode_image
from engine.liveness import FacepluginLiveness
from engine.packs import locate
from engine.pipeline import FaceEngine
from engine.quality import DEFAULT_QUALITY_MIN, DefaultQuality
from engine.sessions import create_session
from tests.integration.engine.conftest import Sample
from tests.integration.engine.spoofs import ATTACKS
from tests.unit.engine.hostile import HOSTILE

pytestmark = [
    pytest.mark.models,
    pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning"),
]


def _png(bgr: np.ndarray) -> bytes:
    return cv2.imencode(".png", bgr)[1].tobytes()


def test_every_sample_passes_the_default_quality_gate(engine: FaceEngine, samples: list[Sample]) -> None:
    for sample in samples:
        face = engine.prepare(sample.path.read_bytes()).faces[0]
        assert face.quality >= DEFAULT_QUALITY_MIN + 0.3, sample.path  # measured 0.92-0.96
        assert set(face.quality_factors) == {"detection", "size", "sharpness", "pose"}


def test_blurred_and_tiny_faces_are_rejected_with_the_factor(
    engine: FaceEngine, samples: list[Sample]
) -> None:
    for sample in samples[::6]:
        bgr = cv2.imread(str(sample.path))
        if bgr is None:  # the WebP-named-.jpg sample: decode it our way
            bgr = decode_image(sample.path.read_bytes(), engine._limits).bgr
        width = engine.prepare(sample.path.read_bytes()).faces[0].bbox.width
        blurred = cv2.GaussianBlur(bgr, (0, 0), width / 25)
        with pytest.raises(FacestreamError) as info:
            engine.prepare(_png(blurred))
        assert info.value.code == ErrorCode.LOW_QUALITY and "sharpness" in info.value.message, sample.path
        k = 22 / width
        tiny = cv2.resize(bgr, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        with pytest.raises(FacestreamError) as info:
            engine.prepare(_png(tiny))
        assert info.value.code in (ErrorCode.LOW_QUALITY, ErrorCode.NO_FACE), sample.path
        if info.value.code == ErrorCode.LOW_QUALITY:
            assert "size" in info.value.message


@pytest.mark.parametrize(("name", "make", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_inputs_with_the_real_engine(engine: FaceEngine, name, make, code) -> None:
    with pytest.raises(FacestreamError) as info:
        engine.prepare(make())
    assert info.value.code == code, info.value.message


def test_liveness_experiment(engine: FaceEngine, engine_settings, samples: list[Sample]) -> None:
    """What fr_liveness.onnx's classes mean, measured (numbers go to docs/engine.md)."""
    path = locate("default", engine_settings.models_dir)["liveness"]
    check = FacepluginLiveness(create_session(path, engine_settings))
    detector = engine._detector  # type: ignore[attr-defined]

    def probabilities(bgr: np.ndarray) -> np.ndarray | None:
        faces = detector.detect(bgr)
        if not faces:
            return None
        return check.probabilities(bgr, max(faces, key=lambda f: f.area).bbox)

    images = [decode_image(s.path.read_bytes(), engine._limits).bgr for s in samples]  # type: ignore[attr-defined]
    real = np.array([probabilities(b) for b in images])
    results = {"real": real}
    for name in ("recapture_all", "perspective_border", "moire"):
        rng = np.random.default_rng(1)
        found = [probabilities(ATTACKS[name](b, rng)) for b in images]
        results[name] = np.array([p for p in found if p is not None])
    for name, probs in results.items():
        spoof = 1 - probs[:, 0]
        print(
            f"{name:20s} n={len(probs)} mean p={probs.mean(0).round(3)} "
            f"flagged@0.5={(spoof > 0.5).mean():.2f} flagged@0.9={(spoof > 0.9).mean():.2f}"
        )
    assert real[:, 0].mean() > 0.95  # class 0 is "live"
    assert (1 - real[:, 0] > 0.5).mean() <= 0.05
    assert (1 - results["recapture_all"][:, 0] > 0.5).mean() >= 0.8
    assert results["recapture_all"][:, 1].mean() > 0.8  # class 1 carries the spoof evidence
    assert max(p[:, 2].mean() for p in results.values()) < 0.05  # class 2: never seen


def test_liveness_gate_in_the_pipeline(engine: FaceEngine, engine_settings, samples: list[Sample]) -> None:
    path = locate("default", engine_settings.models_dir)["liveness"]
    gated = FaceEngine(
        detector=engine._detector,  # type: ignore[attr-defined]
        recognizer=engine._recognizer,  # type: ignore[attr-defined]
        quality=DefaultQuality(),
        limits=engine._limits,  # type: ignore[attr-defined]
        liveness=FacepluginLiveness(create_session(path, engine_settings)),
        liveness_threshold=0.5,
    )
    real = samples[0].path.read_bytes()
    assert "liveness_ms" in gated.prepare(real).timings
    spoof = ATTACKS["recapture_all"](decode_image(real, engine._limits).bgr, np.random.default_rng(1))  # type: ignore[attr-defined]
    with pytest.raises(FacestreamError) as info:
        gated.prepare(_png(spoof))
    assert info.value.code == ErrorCode.SPOOF_SUSPECTED


def test_eval_cli_on_the_sample_set(faces_dir: Path, engine_settings, tmp_path: Path, monkeypatch) -> None:
    from cli.main import main

    monkeypatch.setenv("FACESTREAM_MODELS_DIR", str(engine_settings.models_dir))
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    env_file = tmp_path / "calibrated.env"
    env_file.write_text("FACESTREAM_TOP_K=5\nFACESTREAM_THRESHOLD=0.45\n")
    result = CliRunner().invoke(
        main, ["eval", str(faces_dir / "people"), "--json", "--write-config", str(env_file)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rank1"]["accuracy"] == 1.0 and report["rank1"]["probes"] == 61
    assert report["failures"] == []
    assert 0.2 < report["threshold"] < 0.6  # measured 0.392 at FAR 1e-3
    assert report["recommended"]["far"] <= 1e-3 and report["recommended"]["tar"] > 0.95
    assert report["genuine"]["mean"] > 0.6 and report["impostor"]["mean"] < 0.1
    by_far = {p["target_far"]: p for p in report["tar_at_far"]}
    assert by_far[1e-2]["resolved"] and by_far[1e-3]["resolved"] and not by_far[1e-4]["resolved"]
    assert report["min_resolvable_far"] == pytest.approx(1 / report["pairs"]["impostor"])
    assert {"threshold", "far", "frr", "tar"} <= set(report["roc"][0])
    assert env_file.read_text() == f"FACESTREAM_TOP_K=5\nFACESTREAM_THRESHOLD={report['threshold']}\n"


def test_eval_cli_reports_a_missing_pack_cleanly(faces_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from cli.main import main

    monkeypatch.setenv("FACESTREAM_MODELS_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(main, ["eval", str(faces_dir / "people"), "--json"])
    assert result.exit_code == 1
    assert "model_not_installed" in result.output and "facestream models pull default" in result.output
