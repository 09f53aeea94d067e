"""API keys with roles, per gallery, from FACESTREAM_API_KEYS ("key:role,key:role@gallery")."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ErrorCode, FacestreamError
from schemas.events import DEFAULT_GALLERY, GALLERY_ID_PATTERN


class Role(StrEnum):
    ADMIN = "admin"
    ENROLLER = "enroller"
    IDENTIFIER = "identifier"
    VIEWER = "viewer"


class Permission(StrEnum):
    ENROLL = "enroll"
    IDENTIFY = "identify"
    MANAGE = "manage"  # delete persons and faces
    READ = "read"  # persons, stats
    OVERRIDE_THRESHOLD = "override_threshold"
    OVERRIDE_QUALITY = "override_quality"  # choose the quality filter of one request
    ADMINISTER = "administer"  # delete or replay a gallery (creating one needs an unscoped admin)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENROLLER: frozenset(
        {Permission.ENROLL, Permission.MANAGE, Permission.READ, Permission.OVERRIDE_QUALITY}
    ),
    Role.IDENTIFIER: frozenset(
        {Permission.IDENTIFY, Permission.OVERRIDE_THRESHOLD, Permission.OVERRIDE_QUALITY}
    ),
    Role.VIEWER: frozenset({Permission.READ}),
}


EVERY_GALLERY = "*"


@dataclass(frozen=True)
class Principal:
    key_id: str  # a non-secret name for logs: the key's first characters
    grants: Mapping[str, Role]  # gallery (or EVERY_GALLERY) -> role
    bucket: str  # rate-limit identity: a digest of the key, never the key itself

    def role_in(self, gallery: str) -> Role | None:
        return self.grants.get(gallery) or self.grants.get(EVERY_GALLERY)

    def sees(self, gallery: str) -> bool:
        return self.role_in(gallery) is not None

    @property
    def unscoped(self) -> bool:
        """A key for every gallery (only such an admin creates galleries)."""
        return EVERY_GALLERY in self.grants

    def can(self, permission: Permission, gallery: str = DEFAULT_GALLERY) -> bool:
        role = self.role_in(gallery)
        return role is not None and permission in GRANTS[role]


Keys = dict[str, dict[str, Role]]  # key -> gallery (or EVERY_GALLERY) -> role


def parse_api_keys(spec: str) -> Keys:
    """`key:role` (every gallery) or `key:role@gallery` (`@a|b` for several); a key may appear
    in several entries, with a role per gallery."""
    keys: Keys = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, grant = item.rpartition(":")
        if not sep or not key:
            raise ValueError("FACESTREAM_API_KEYS entries must look like key:role or key:role@gallery")
        role_name, at, scope = grant.partition("@")
        try:
            role = Role(role_name)
        except ValueError:
            raise ValueError(f"unknown role {role_name!r}; roles: {', '.join(Role)}") from None
        galleries = scope.split("|") if at else [EVERY_GALLERY]
        for gallery in galleries:
            if gallery != EVERY_GALLERY and not re.fullmatch(GALLERY_ID_PATTERN, gallery):
                raise ValueError(f"invalid gallery {gallery!r} in FACESTREAM_API_KEYS")
            keys.setdefault(key, {})[gallery] = role
    return keys


class KeyRing:
    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise FacestreamError(ErrorCode.UNAUTHORIZED, "missing X-API-Key header")
        for key, grants in self._keys.items():
            # Constant-time comparison: response timing must not leak key prefixes.
            if hmac.compare_digest(key.encode(), presented.encode()):
                digest = hashlib.sha256(key.encode()).hexdigest()[:16]
                return Principal(key_id=key[:4] + "…", grants=grants, bucket=digest)
        raise FacestreamError(ErrorCode.UNAUTHORIZED, "unknown API key")


def require(principal: Principal, permission: Permission, gallery: str = DEFAULT_GALLERY) -> None:
    role = principal.role_in(gallery)
    if role is None:
        # The same answer whether the gallery exists or not: a scoped key learns nothing of others.
        raise FacestreamError(ErrorCode.FORBIDDEN, f"this key has no access to gallery {gallery!r}")
    if permission not in GRANTS[role]:
        raise FacestreamError(ErrorCode.FORBIDDEN, f"role {role.value} may not {permission.value}")
