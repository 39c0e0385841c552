"""Who may use the emulator's API: a bearer token, checked in constant time.

Two modes. With a required token (the embedded emulator always has one; the
standalone one with `--token`), only that exact token passes: anyone else gets
Replicate's 401. Without one (the standalone default) any non-empty bearer
token passes, as a stand-in for "some Replicate account".

The embedded emulator's token is derived from the app's SECRET_KEY with HMAC,
so every worker and machine sharing that key agrees on it without any file or
message, and nobody without the key can compute it.

Output files and stream URLs are outside this check on purpose: on Replicate
both are capability URLs a browser fetches without credentials.
"""

from __future__ import annotations

import hashlib
import hmac

_LABEL = b"relay-emulator-api-token/v1"


def token_from_secret(secret_key: str) -> str:
    """The embedded emulator's API token for an app with this SECRET_KEY."""
    digest = hmac.new(secret_key.encode(), _LABEL, hashlib.sha256).hexdigest()
    return f"r8_emu_{digest}"


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def allowed(header: str, required: str | None) -> bool:
    """True when the Authorization header carries an acceptable token."""
    token = bearer_token(header)
    if token is None:
        return False
    if required is None:
        return True
    return hmac.compare_digest(token.encode(), required.encode())


def capability(secret: str, kind: str, object_id: str) -> str:
    """An unguessable tag for a public URL of one object (a stream, an output file)."""
    message = f"{kind}\0{object_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def capability_ok(secret: str, kind: str, object_id: str, tag: str) -> bool:
    return hmac.compare_digest(capability(secret, kind, object_id).encode(), tag.encode())
