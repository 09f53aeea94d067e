"""Backends are found by name; nothing chooses a backend with if/elif."""

from __future__ import annotations

import sys

import pytest

from core.errors import ErrorCode, FacestreamError
from core.settings import Settings
from index import backend_class, create, names, register
from index.faiss_flat import FaissFlatIndex
from index.registry import _BACKENDS


def test_the_default_backend_is_registered() -> None:
    default = Settings().index_backend
    assert default in names()
    assert backend_class(default) is FaissFlatIndex
    index = create(default, dim=8, model_id="m@1")
    assert (index.backend, index.dim, index.model_id) == (default, 8, "m@1")


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(FacestreamError) as caught:
        create("no-such-backend", dim=8, model_id="m")
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert "faiss-flat" in caught.value.message


def test_a_name_cannot_be_taken_twice_or_be_malformed() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register("faiss-flat")
        class Impostor(FaissFlatIndex):
            pass

    with pytest.raises(ValueError, match="invalid"):
        register("Bad Name!")


def test_registering_a_new_backend_makes_it_available() -> None:
    try:

        @register("test-extra")
        class Extra(FaissFlatIndex):
            pass

        assert "test-extra" in names()
        assert create("test-extra", dim=4, model_id="m").backend == "test-extra"
    finally:
        _BACKENDS.pop("test-extra", None)


@pytest.mark.parametrize("dim, model_id", [(0, "m"), (-3, "m"), (True, "m"), (8, "")])
def test_invalid_construction(dim: object, model_id: object) -> None:
    with pytest.raises(FacestreamError) as caught:
        create("faiss-flat", dim=dim, model_id=model_id)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize(
    "backend, module, package",
    [
        ("qdrant", "qdrant_client", "qdrant-client"),
        ("milvus", "pymilvus", "pymilvus"),
        ("scann", "scann", "scann"),
    ],
)
def test_a_missing_library_is_a_clear_error_and_breaks_nothing_else(
    monkeypatch: pytest.MonkeyPatch, backend: str, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    assert backend in names() and "faiss-flat" in names()
    with pytest.raises(FacestreamError) as caught:
        create(backend, dim=8, model_id="m")
    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert package in caught.value.message
    assert len(create("faiss-flat", dim=8, model_id="m")) == 0
