"""`Idempotency-Key` on create: the same key from the same visitor within 24 h is one create.

The first request with a key claims it (an atomic set-if-absent in the store,
marked pending for at most `PENDING_SECONDS`); it then runs the create and
stores its 201 answer for 24 h. A repeat finds the answer and returns it without
reading its body or counting against any cap; a repeat that finds the claim
pending waits (polling the store) until the answer appears. A first request that
fails (refused by a cap, bad input, Replicate's refusal) releases the claim, so
the next attempt is judged afresh rather than answered with an old error.

The scope is the visitor: a grant's `sub`, else the `relay_visitor` cookie; a
request without a valid cookie is scoped by its address, since a client that
retries because it never saw the first answer never saw its cookie either (the
answer is also remembered for the cookie it was given, for repeats that send it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidRequest, RelayError
from .store import Store

__all__ = ["Idempotency"]

DAY = 24 * 3600
PENDING_SECONDS = 60.0
_POLL = 0.05


class RepeatTimedOut(RelayError):
    status = 409
    code = "idempotency_pending"


class Idempotency:
    def __init__(self, store: Store, wait_seconds: float = 30.0) -> None:
        self._store = store
        self._wait = wait_seconds

    @staticmethod
    def check_key(key: str | None) -> str | None:
        if key is None or key == "":
            return None
        if len(key) > 255 or not key.isprintable() or not key.isascii():
            raise InvalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.")
        return key

    @staticmethod
    def slot(scope: str, key: str) -> str:
        return "idem:" + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    def begin(self, slot: str) -> tuple[str | None, dict[str, Any] | None]:
        """(claim token, None) for a first request; (None, first answer) for a repeat."""
        deadline = time.monotonic() + self._wait
        while True:
            token = "pending:" + secrets.token_hex(8)
            if self._store.claim(slot, token, PENDING_SECONDS):
                return token, None
            held = self._store.get(slot)
            if held is not None and not held.startswith("pending:"):
                answer = json.loads(held)
                assert isinstance(answer, dict)
                return None, answer
            if time.monotonic() > deadline:
                raise RepeatTimedOut("A request with this Idempotency-Key is still being answered; "
                                     "retry in a moment.", retry_after=2)
            time.sleep(_POLL)

    def finish(self, slot: str, token: str, answer: dict[str, Any], also: Sequence[str] = ()) -> None:
        if self._store.get(slot) == token:
            text = json.dumps(answer, separators=(",", ":"))
            for each in (slot, *also):
                self._store.put(each, text, DAY)

    def abandon(self, slot: str, token: str) -> None:
        self._store.delete(slot, only_if=token)
