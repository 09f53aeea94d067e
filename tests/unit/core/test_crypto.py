"""Sealed retained images: AES-256-GCM bound to the face id."""

from __future__ import annotations

import base64
import os

import pytest

from core.crypto import ImageCipher
from core.errors import FacestreamError


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_seal_and_open() -> None:
    cipher = ImageCipher(_key())
    sealed = cipher.seal(b"jpeg bytes", bound_to="face-1")
    assert sealed != b"jpeg bytes"
    assert cipher.open(sealed, bound_to="face-1") == b"jpeg bytes"


def test_another_face_id_or_key_cannot_open_it() -> None:
    cipher = ImageCipher(_key())
    sealed = cipher.seal(b"jpeg bytes", bound_to="face-1")
    with pytest.raises(FacestreamError):
        cipher.open(sealed, bound_to="face-2")
    with pytest.raises(FacestreamError):  # crypto-shredding: the old key is gone
        ImageCipher(_key()).open(sealed, bound_to="face-1")


def test_no_key_means_plain_bytes_and_bad_keys_are_refused() -> None:
    assert not ImageCipher("").enabled
    assert ImageCipher("").seal(b"x", bound_to="f") == b"x"
    with pytest.raises(ValueError):
        ImageCipher(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError):
        ImageCipher("not base64!")
