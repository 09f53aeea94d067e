"""API keys with roles, from FACESTREAM_API_KEYS ("key:role,key:role")."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ErrorCode, FacestreamError


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


@dataclass(frozen=True)
class Principal:
    key_id: str  # a non-secret name for logs: the key's first characters
    role: Role
    bucket: str  # rate-limit identity: a digest of the key, never the key itself

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]


def parse_api_keys(spec: str) -> dict[str, Role]:
    keys: dict[str, Role] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, role = item.rpartition(":")
        if not sep or not key:
            raise ValueError("FACESTREAM_API_KEYS entries must look like key:role")
        try:
            keys[key] = Role(role)
        except ValueError:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(Role)}") from None
    return keys


class KeyRing:
    def __init__(self, keys: dict[str, Role]) -> None:
        self._keys = keys

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise FacestreamError(ErrorCode.UNAUTHORIZED, "missing X-API-Key header")
        for key, role in self._keys.items():
            # Constant-time comparison: response timing must not leak key prefixes.
            if hmac.compare_digest(key.encode(), presented.encode()):
                digest = hashlib.sha256(key.encode()).hexdigest()[:16]
                return Principal(key_id=key[:4] + "…", role=role, bucket=digest)
        raise FacestreamError(ErrorCode.UNAUTHORIZED, "unknown API key")


def require(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise FacestreamError(ErrorCode.FORBIDDEN, f"role {principal.role.value} may not {permission.value}")
