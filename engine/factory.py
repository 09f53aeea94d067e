"""Build the real engine from settings: locate the pack on disk, create sessions, wire parts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import ErrorCode, FacestreamError
from core.settings import Settings
from engine.decode import DecodeLimits
from engine.detector import Detector, ScrfdDetector, YuNetDetector, create_yunet
from engine.liveness import FacepluginLiveness, LivenessCheck, NoLiveness
from engine.packs import ModelPack, Role, get_pack, locate
from engine.pipeline import FaceEngine
from engine.quality import DefaultQuality
from engine.recognizer import ArcFaceRecognizer, dynamic_batch_bytes
from engine.retinaface import RetinaFaceDetector
from engine.sessions import create_session
from schemas.events import ModelInfo


def _yunet(path: Path, settings: Settings) -> Detector:
    yunet = create_yunet(path, score_threshold=settings.detection_min_score)
    return YuNetDetector(yunet, max_side=settings.detection_max_side)


def _scrfd(path: Path, settings: Settings) -> Detector:
    from insightface.model_zoo.scrfd import SCRFD

    scrfd = SCRFD(model_file=str(path), session=create_session(path, settings))
    return ScrfdDetector(
        scrfd, max_side=settings.detection_max_side, score_threshold=settings.detection_min_score
    )


def _retinaface(path: Path, settings: Settings) -> Detector:
    return RetinaFaceDetector(
        create_session(path, settings),
        max_side=settings.detection_max_side,
        score_threshold=settings.detection_min_score,
    )


DETECTORS: dict[str, Callable[[Path, Settings], Detector]] = {
    "yunet": _yunet,
    "scrfd": _scrfd,
    "retinaface": _retinaface,
}


def _no_liveness(pack: ModelPack, paths: dict[Role, Path], settings: Settings) -> LivenessCheck:
    return NoLiveness()


def _faceplugin_liveness(pack: ModelPack, paths: dict[Role, Path], settings: Settings) -> LivenessCheck:
    if "liveness" not in paths:
        raise FacestreamError(
            ErrorCode.MODEL_NOT_INSTALLED,
            f"liveness=faceplugin needs fr_liveness.onnx, which model pack {pack.name!r} does not "
            f"ship; use the default pack or liveness=none",
        )
    return FacepluginLiveness(create_session(paths["liveness"], settings))


# Setting `liveness` (FACESTREAM_LIVENESS) picks one of these by name.
LIVENESS: dict[str, Callable[[ModelPack, dict[Role, Path], Settings], LivenessCheck]] = {
    "none": _no_liveness,
    "faceplugin": _faceplugin_liveness,
}


def build_liveness(pack: ModelPack, paths: dict[Role, Path], settings: Settings) -> LivenessCheck:
    # getattr: these settings are added to core.settings alongside this code; until then the
    # documented defaults apply.
    name = settings.liveness
    if name not in LIVENESS:
        raise ValueError(f"unknown liveness check {name!r}; known: {', '.join(sorted(LIVENESS))}")
    return LIVENESS[name](pack, paths, settings)


def model_info(pack: ModelPack) -> ModelInfo:
    recognizer = pack.required("recognizer")
    return ModelInfo(
        pack=pack.name,
        recognizer=Path(recognizer.filename).stem,
        version=pack.recognizer_version,
        dim=pack.embedding_dim,
    )


def build_recognizer(pack: ModelPack, path: Path, settings: Settings) -> ArcFaceRecognizer:
    session = create_session(dynamic_batch_bytes(path), settings)
    out_dim = session.get_outputs()[0].shape[-1]
    if isinstance(out_dim, int) and out_dim != pack.embedding_dim:
        raise FacestreamError(
            ErrorCode.MODEL_MISMATCH,
            f"{path.name} outputs {out_dim}-d vectors; pack {pack.name!r} declares {pack.embedding_dim}",
        )
    return ArcFaceRecognizer(
        session, model_file=path, model_info=model_info(pack), max_batch=settings.batch_max_size
    )


def build_engine(settings: Settings) -> FaceEngine:
    pack = get_pack(settings.model_pack)
    paths = locate(pack, settings.models_dir, detector=settings.detector or None)
    detector = DETECTORS[settings.detector or pack.detector_kind](paths["detector"], settings)
    return FaceEngine(
        detector=detector,
        recognizer=build_recognizer(pack, paths["recognizer"], settings),
        quality=DefaultQuality(),
        liveness=build_liveness(pack, paths, settings),
        liveness_threshold=settings.liveness_threshold,
        limits=DecodeLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            # Detection's size: a face the reduced image does not resolve for the 112 px crop
            # is cropped from a finer decode (engine.crop).
            draft_min_side=settings.detection_max_side,
        ),
        multi_face_policy=settings.multi_face_policy,
        quality_norm=pack.quality_norm if settings.quality_signal == "norm" else None,
    )
