"""Sealing retained enrollment images with AES-256-GCM.

The key comes from settings (in production: from a KMS, injected as an env var). Destroying or
rotating it away makes every image sealed with it unreadable at once — crypto-shredding —
whatever compaction has or has not yet removed from the log.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ErrorCode, FacestreamError

NONCE_BYTES = 12


class ImageCipher:
    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True) if key_b64 else b""
        except binascii.Error as exc:
            raise ValueError("FACESTREAM_IMAGE_ENCRYPTION_KEY is not base64") from exc
        if key and len(key) != 32:
            raise ValueError("FACESTREAM_IMAGE_ENCRYPTION_KEY must be 32 bytes (AES-256), base64-encoded")
        self._aead = AESGCM(key) if key else None

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    def seal(self, data: bytes, *, bound_to: str) -> bytes:
        """`bound_to` (the face id) is authenticated: a sealed image cannot be moved to another key."""
        if self._aead is None:
            return data
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, bound_to.encode())

    def open(self, blob: bytes, *, bound_to: str) -> bytes:
        if self._aead is None:
            return blob
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], bound_to.encode())
        except InvalidTag as exc:
            raise FacestreamError(
                ErrorCode.INVALID_MESSAGE, "retained image cannot be opened with the configured key"
            ) from exc
