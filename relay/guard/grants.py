"""Grants: a host site's signed permission to create (RELAY_GRANT_SECRET, docs/spend-guard.md).

    grant = b64url(payload) + "." + b64url(HMAC-SHA256(secret, b64url(payload)))
    payload = {"sub": visitor, "exp": unix seconds, "models": [...], "max": n}

Sent as `Authorization: Relay-Grant <grant>`. The signature is checked first,
over the payload's text exactly as sent, with `hmac.compare_digest`; only then
is the payload read. `exp` is required; `sub`, `models` and `max` are optional
(no `models`: any allowed model; no `max`: no use limit). base64url may come with
or without padding. Anything wrong answers `403 grant_required`; the use count
(`max`) is kept by budget.py in the guard's store, keyed by the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import Forbidden

__all__ = ["Grant", "GrantRequired", "mint", "read_grant"]

_SCHEME = "relay-grant"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class GrantRequired(Forbidden):
    code = "grant_required"


@dataclass(frozen=True, slots=True)
class Grant:
    sub: str | None
    exp: float
    models: tuple[str, ...] | None
    max: int | None
    key: str  # identifies this grant's use count

    def allows(self, model: str | None) -> bool:
        if self.models is None:
            return True
        return model is not None and model.lower() in self.models


def _b64decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _refuse(why: str) -> GrantRequired:
    return GrantRequired(f"Creating here needs a valid grant from the site you came from ({why}).")


def read_grant(headers: Mapping[str, str], secret: str, now: float | None = None) -> Grant:
    """The request's verified grant; GrantRequired when it is missing or not valid."""
    header = headers.get("Authorization", "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() != _SCHEME or not value.strip():
        raise _refuse("send it as Authorization: Relay-Grant <grant>")
    body, dot, signature = value.strip().partition(".")
    if not dot or not body or not signature or len(value) > 4096:
        raise _refuse("it is malformed")
    try:
        given = _b64decode(signature)
        raw = _b64decode(body)
    except (ValueError, binascii.Error):
        raise _refuse("it is malformed") from None
    # Sign the payload's text as sent, so padded and unpadded forms both verify.
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    unpadded = hmac.new(secret.encode(), body.rstrip("=").encode(), hashlib.sha256).digest()
    if not (hmac.compare_digest(given, expected) | hmac.compare_digest(given, unpadded)):
        raise _refuse("its signature does not match")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _refuse("it is malformed") from None
    if not isinstance(payload, dict):
        raise _refuse("it is malformed")
    exp, sub, models, uses = payload.get("exp"), payload.get("sub"), payload.get("models"), payload.get("max")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise _refuse("it has no expiry")
    if exp <= (time.time() if now is None else now):
        raise _refuse("it has expired")
    if sub is not None and (not isinstance(sub, str) or not 0 < len(sub) <= 256):
        raise _refuse("its sub is not a string")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise _refuse("its models is not a list of names")
    if uses is not None and (isinstance(uses, bool) or not isinstance(uses, int) or uses < 0):
        raise _refuse("its max is not a whole number")
    return Grant(sub=sub, exp=float(exp), models=tuple(m.lower() for m in models) if models is not None else None,
                 max=uses, key=hashlib.sha256(given).hexdigest()[:32])


def mint(secret: str, payload: Mapping[str, object]) -> str:
    """Make a grant (what a host site's backend does; used by tests and docs)."""
    body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return body + "." + _b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
