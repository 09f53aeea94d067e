"""API keys and roles."""

from __future__ import annotations

import pytest

from api.auth import KeyRing, Permission, Principal, Role, parse_api_keys, require
from core.errors import ErrorCode, FacestreamError


def test_parse_api_keys() -> None:
    assert parse_api_keys(" a:admin , b:viewer,,") == {"a": {"*": Role.ADMIN}, "b": {"*": Role.VIEWER}}
    assert parse_api_keys("") == {}
    assert parse_api_keys("with:colon:enroller") == {"with:colon": {"*": Role.ENROLLER}}


def test_keys_scoped_to_galleries() -> None:
    keys = parse_api_keys("k:enroller@staff|watch,k:viewer@audit,j:admin")
    assert keys == {
        "k": {"staff": Role.ENROLLER, "watch": Role.ENROLLER, "audit": Role.VIEWER},
        "j": {"*": Role.ADMIN},
    }
    principal = KeyRing(keys).authenticate("k")
    assert principal.sees("staff") and principal.sees("audit") and not principal.sees("default")
    assert not principal.unscoped
    require(principal, Permission.ENROLL, "watch")
    for gallery, permission in (
        ("audit", Permission.ENROLL),
        ("default", Permission.READ),
        ("x", Permission.READ),
    ):
        with pytest.raises(FacestreamError) as info:
            require(principal, permission, gallery)
        assert info.value.code is ErrorCode.FORBIDDEN


@pytest.mark.parametrize("spec", ["nokey", ":admin", "k:root", "k:", "k:Admin", "k:admin@", "k:admin@Bad/G"])
def test_parse_api_keys_errors(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_api_keys(spec)


def test_parse_error_does_not_echo_the_key() -> None:
    with pytest.raises(ValueError) as info:
        parse_api_keys("supersecret:root")
    assert "supersecret" not in str(info.value)


def test_keyring() -> None:
    ring = KeyRing({"secret-1": {"*": Role.VIEWER}})
    principal = ring.authenticate("secret-1")
    assert principal.role_in("any") is Role.VIEWER
    assert "secret-1" not in principal.key_id
    for presented in (None, "", "secret-2", "secret-1 "):
        with pytest.raises(FacestreamError) as info:
            ring.authenticate(presented)
        assert info.value.code is ErrorCode.UNAUTHORIZED


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, set(Permission)),
        (Role.ENROLLER, {Permission.ENROLL, Permission.MANAGE, Permission.READ, Permission.OVERRIDE_QUALITY}),
        (Role.IDENTIFIER, {Permission.IDENTIFY, Permission.OVERRIDE_THRESHOLD, Permission.OVERRIDE_QUALITY}),
        (Role.VIEWER, {Permission.READ}),
    ],
)
def test_grants(role: Role, allowed: set[Permission]) -> None:
    principal = Principal(key_id="k", grants={"*": role}, bucket="b")
    for permission in Permission:
        if permission in allowed:
            require(principal, permission)
        else:
            with pytest.raises(FacestreamError) as info:
                require(principal, permission)
            assert info.value.code is ErrorCode.FORBIDDEN
