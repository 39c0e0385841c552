"""Signed, expiring capability tokens bound to one prediction id.

A stream token lets its holder watch one prediction; a cancel token lets them
cancel it. They are signed with SECRET_KEY (so every worker that shares the key
accepts them) under different salts, so a shared watch link cannot cancel.
itsdangerous compares signatures in constant time.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

__all__ = ["Purpose", "TokenSigner"]

Purpose = Literal["stream", "cancel"]


class _KeyOnceSigner(TimestampSigner):
    """itsdangerous's timestamp signer, its HMAC key derived once per secret and salt.

    The serializer makes a new signer for every sign and check, and each one
    derives its key again (a hash of salt and secret). Every stream open checks a
    token, so the key is remembered; tokens are unchanged.
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

    def sign(self, prediction_id: str, purpose: Purpose) -> str:
        token = self._serializers[purpose].dumps(prediction_id)
        assert isinstance(token, str)
        return token

    def verify(self, token: str | None, purpose: Purpose) -> str | None:
        """The prediction id the token grants, or None if forged, expired or malformed."""
        if not token or len(token) > 512:
            return None
        try:
            value = self._serializers[purpose].loads(token, max_age=self._max_age)
        except (BadData, UnicodeError, ValueError):
            return None
        return value if isinstance(value, str) else None

    def grants(self, token: str | None, purpose: Purpose, prediction_id: str) -> bool:
        """True when the token is valid and bound to exactly this prediction."""
        return self.verify(token, purpose) == prediction_id
