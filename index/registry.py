"""Index backends by name: ``@register("faiss-flat")`` on the class, ``create(name, ...)`` to build.

Backends shipped with the package are imported on first use, so a backend module only has to
exist and register itself; nothing else names it. A backend class is constructed as
``cls(dim=..., model_id=..., **options)`` and read back with ``cls.load(path)``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ErrorCode, FacestreamError
from index.base import VectorIndex

_BUILTIN_MODULES = (
    "index.faiss_flat",
    "index.faiss_ivfpq",
    "index.faiss_hnsw",
    "index.qdrant",
    "index.milvus",
    "index.scann",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_BACKENDS: dict[str, type[Any]] = {}
_builtins_loaded = False

C = TypeVar("C", bound=type[Any])


def register(name: str) -> Callable[[C], C]:
    """Class decorator: make a backend available as ``name`` and set its ``backend`` to it."""
    if not _NAME.match(name):
        raise ValueError(f"invalid index backend name {name!r}")

    def decorate(cls: C) -> C:
        existing = _BACKENDS.get(name)
        same = existing is not None and (existing.__module__, existing.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        )
        if existing is not None and not same:
            raise ValueError(f"index backend {name!r} is already registered by {existing!r}")
        cls.backend = name
        _BACKENDS[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True


def names() -> list[str]:
    """Registered backend names, sorted."""
    _load_builtins()
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[VectorIndex]:
    return _lookup(name)


def _lookup(name: str) -> type[Any]:
    _load_builtins()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise FacestreamError(
            ErrorCode.INVALID_PARAMETER,
            f"unknown index backend {name!r}; registered: {', '.join(sorted(_BACKENDS))}",
        ) from None


def create(name: str, *, dim: int, model_id: str, **options: Any) -> VectorIndex:
    """A new, empty index of backend ``name``."""
    index: VectorIndex = _lookup(name)(dim=dim, model_id=model_id, **options)
    return index


def load(name: str, path: Path) -> VectorIndex:
    """Read back an index that a ``name`` backend saved into ``path``."""
    return backend_class(name).load(path)
