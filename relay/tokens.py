"""Signed, expiring capability tokens bound to one prediction id.

A stream token lets its holder watch one prediction; a cancel token lets them
cancel it. They are signed with SECRET_KEY (so every worker that shares the key
accepts them) under different salts, so a shared watch link cannot cancel.

Tokens are itsdangerous's URL-safe timed tokens, made by itsdangerous. Checking
one is done here, by the same rules: every stream open checks a token, and
itsdangerous's layers (a signer made per call, three base64 decodes, a datetime)
cost several times the check itself, which is one HMAC (bench/open_cost.py).
tests/unit/test_tokens.py holds the two to the same verdicts, tampered tokens included.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
from typing import Any, Literal

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

__all__ = ["Purpose", "TokenSigner"]

Purpose = Literal["stream", "cancel"]
_MAX_TOKEN = 512


class _KeyOnceSigner(TimestampSigner):
    """itsdangerous's timestamp signer, its HMAC key derived once per secret and salt.

    The serializer makes a new signer for every sign, and each one derives its key
    again (a hash of salt and secret); tokens are unchanged.
    """

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        return _derived_key(secret, self.salt, self.key_derivation, self.digest_method)


@functools.lru_cache(maxsize=32)
def _derived_key(secret: bytes, salt: bytes, derivation: str, digest: Any) -> bytes:
    signer = TimestampSigner(secret, salt=salt, key_derivation=derivation, digest_method=digest)
    return TimestampSigner.derive_key(signer)


class TokenSigner:
    def __init__(self, secret_key: str, max_age: int) -> None:
        self._max_age = max_age
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret_key, salt=f"relay-{purpose}", signer=_KeyOnceSigner)
            for purpose in ("stream", "cancel")
        }
        # The HMAC keys itsdangerous signs with (its default: SHA-1 over salt and secret).
        self._keys = {purpose: serializer.make_signer(serializer.salt).derive_key()
                      for purpose, serializer in self._serializers.items()}

    def sign(self, prediction_id: str, purpose: Purpose) -> str:
        token = self._serializers[purpose].dumps(prediction_id)
        assert isinstance(token, str)
        return token

    def verify(self, token: str | None, purpose: Purpose) -> str | None:
        """The prediction id the token grants, or None if forged, expired or malformed."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        payload = self._unsigned(token, self._keys[purpose])
        if payload is None:
            return None
        try:
            value = self._serializers[purpose].load_payload(payload)
        except (BadData, UnicodeError, ValueError):
            return None
        return value if isinstance(value, str) else None

    def grants(self, token: str | None, purpose: Purpose, prediction_id: str) -> bool:
        """True when the token is valid and bound to exactly this prediction."""
        return self.verify(token, purpose) == prediction_id

    def _unsigned(self, token: str, key: bytes) -> bytes | None:
        """The payload of `payload.timestamp.signature` when the signature is right and the
        timestamp at most max_age old (itsdangerous's rules: whole seconds, none from the future)."""
        try:
            signed = token.encode("ascii")
        except UnicodeError:
            return None
        value, dot, signature = signed.rpartition(b".")
        payload, dot2, stamp = value.rpartition(b".")
        if not dot or not dot2:
            return None
        expected = base64.urlsafe_b64encode(hmac.digest(key, value, hashlib.sha1)).rstrip(b"=")
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            issued = int.from_bytes(base64.urlsafe_b64decode(stamp + b"=" * (-len(stamp) % 4)), "big")
        except (binascii.Error, ValueError):
            return None
        age = int(time.time()) - issued
        return payload if 0 <= age <= self._max_age else None
