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
from core.quality_policy import BARS
from engine.decode import decode_image
from engine.gate import scored
from engine.liveness import FacepluginLiveness
from engine.packs import locate
from engine.pipeline import FaceEngine
from engine.quality import DefaultQuality
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


def _final_quality(engine: FaceEngine, data: bytes):  # type: ignore[no-untyped-def]
    """The face as a worker sees it: heuristic factors from prepare, quality from the norm."""
    prepared = engine.prepare(data)
    _, qualities = engine.embed_scored([f.crop for f in prepared.faces])
    return scored(prepared.faces, qualities)[0]


def test_every_sample_clears_every_bar_but_high(engine: FaceEngine, samples: list[Sample]) -> None:
    for sample in samples:
        face = _final_quality(engine, sample.path.read_bytes())
        assert face.quality >= BARS["medium"], sample.path  # measured 0.51-0.99
        assert set(face.quality_factors) == {"detection", "size", "sharpness", "pose"}


def test_blurred_and_tiny_faces_score_lower_and_say_why(engine: FaceEngine, samples: list[Sample]) -> None:
    reasons = []
    for sample in samples[::6]:
        bgr = cv2.imread(str(sample.path))
        if bgr is None:  # the WebP-named-.jpg sample: decode it our way
            bgr = decode_image(sample.path.read_bytes(), engine.limits).bgr
        original = _final_quality(engine, sample.path.read_bytes())
        width = original.bbox.width
        blurred = _final_quality(engine, _png(cv2.GaussianBlur(bgr, (0, 0), width / 10)))
        assert blurred.quality < original.quality - 0.2, sample.path
        reasons.append(blurred.quality_reason.split()[0])
        k = 16 / width
        tiny = cv2.resize(bgr, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        try:
            small = _final_quality(engine, _png(tiny))
        except FacestreamError as exc:
            assert exc.code == ErrorCode.NO_FACE
            continue
        assert small.quality < original.quality, sample.path
        assert small.quality_reason.split()[0] in ("size", "sharpness"), small.quality_reason
    # The heuristic explains most blurs; a crop reaching past the image's edge (black border)
    # looks sharp to it, which is one reason it is no longer the quality score.
    assert reasons.count("sharpness") >= len(reasons) / 2, reasons


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
