"""Which of several detected faces an image stands for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

from core.errors import ErrorCode, FacestreamError

Policy = Literal["largest", "best_score", "reject", "all"]
POLICIES: tuple[str, ...] = ("largest", "best_score", "reject", "all")
F = TypeVar("F")


def select_faces(faces: Sequence[F], policy: str, *, area: list[float], score: list[float]) -> list[F]:
    """Apply the multi-face policy; `area` and `score` run parallel to `faces`.

    Raises NO_FACE for an empty list and MULTIPLE_FACES under "reject" when there are several.
    "all" keeps every face, largest first.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown multi-face policy {policy!r}; expected one of {POLICIES}")
    if not faces:
        raise FacestreamError(ErrorCode.NO_FACE, "no face found in the image")
    order = sorted(range(len(faces)), key=lambda i: (-area[i], -score[i]))
    if len(faces) == 1 or policy == "largest":
        return [faces[order[0]]]
    if policy == "best_score":
        return [faces[max(range(len(faces)), key=lambda i: (score[i], area[i]))]]
    if policy == "reject":
        raise FacestreamError(
            ErrorCode.MULTIPLE_FACES,
            f"{len(faces)} faces found; this request accepts images with exactly one face",
        )
    return [faces[i] for i in order]  # "all"
