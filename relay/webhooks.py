"""Receiving Replicate's signed webhooks.

The signature is checked by the `replicate` client's own validator (the
standard-webhooks scheme) with an explicit 5-minute tolerance. That validator
raises plain ValueError for a non-numeric timestamp and binascii.Error for bad
base64, and some of its messages include the signing key: every failure is
therefore caught here and answered with a fixed sentence.
"""

from __future__ import annotations

import binascii
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import redis
from replicate.webhook import Webhooks, WebhookSigningSecret

from .errors import Forbidden, InvalidRequest, UpstreamError, UpstreamUnavailable

__all__ = ["TOLERANCE_SECONDS", "SeenIds", "WebhookReceiver"]

log = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SeenIds:
    """webhook-ids already applied, remembered for an hour (Replicate retries within about a minute).

    An id is recorded only after its delivery was applied, so a delivery that
    failed half-way (Redis away, say) is applied when Replicate retries it.
    With Redis the memory is shared, since a retry may reach another process.
    """

    def __init__(self, client: redis.Redis | None = None, ttl: float = 3600.0, capacity: int = 100_000) -> None:
        self._redis = client
        self._ttl = ttl
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, webhook_id: str) -> bool:
        if self._redis is not None:
            try:
                return bool(self._redis.exists(f"relay:webhook:{webhook_id}"))
            except (redis.RedisError, OSError):
                return False  # applying twice is harmless: the hub drops a repeated state
        with self._lock:
            self._expire(time.monotonic())
            return webhook_id in self._seen

    def record(self, webhook_id: str) -> None:
        if self._redis is not None:
            try:
                self._redis.set(f"relay:webhook:{webhook_id}", "1", ex=int(self._ttl))
            except (redis.RedisError, OSError):
                pass
            return
        with self._lock:
            self._seen[webhook_id] = time.monotonic()

    def _expire(self, now: float) -> None:
        while self._seen and (len(self._seen) >= self._capacity or
                              next(iter(self._seen.values())) < now - self._ttl):
            self._seen.popitem(last=False)


class WebhookReceiver:
    """Verifies a delivery and returns the prediction it carries."""

    def __init__(self, secret: str | None, fetch_secret: Callable[[], str], seen: SeenIds | None = None) -> None:
        self._secret = secret
        self._fetch_secret = fetch_secret
        self._lock = threading.Lock()
        self.seen = seen or SeenIds()

    def _signing_secret(self) -> str:
        with self._lock:
            if self._secret is None:
                try:
                    self._secret = self._fetch_secret()
                except (UpstreamError, UpstreamUnavailable):
                    log.error("could not fetch the webhook signing secret from Replicate")
                    raise UpstreamUnavailable("Webhook secret unavailable; retry later.",
                                              retry_after=5) from None
            return self._secret

    def check_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The signature headers, refused (4xx) when one is missing or the timestamp is off.

        Runs before the body is read, so a delivery that cannot be genuine costs no upload.
        """
        values = {name: headers.get(name, "") for name in _HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise InvalidRequest(f"The webhook lacks the {missing[0]} header.", code="invalid_webhook")
        timestamp = values["webhook-timestamp"]
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise InvalidRequest("The webhook-timestamp header is not a Unix time.", code="invalid_webhook")
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            raise Forbidden("The webhook signature or timestamp is not valid.", code="invalid_signature")
        return values

    def verify(self, headers: Mapping[str, str], raw: bytes) -> tuple[str, dict[str, Any]]:
        """(webhook-id, prediction) of a genuine delivery; raises a 4xx RelayError otherwise."""
        values = self.check_headers(headers)
        if not raw:
            raise InvalidRequest("The webhook has an empty body.", code="invalid_webhook")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("The webhook body is not UTF-8 text.", code="invalid_webhook") from None
        try:
            Webhooks.validate(headers=values, body=body,
                              secret=WebhookSigningSecret(key=self._signing_secret()),
                              tolerance=TOLERANCE_SECONDS)
        except (UpstreamUnavailable, UpstreamError):
            raise
        except (ValueError, binascii.Error, TypeError):
            # The validator's own errors (WebhookValidationError is a ValueError) and
            # the plain ValueError / binascii.Error it lets through.
            raise Forbidden("The webhook signature or timestamp is not valid.",
                            code="invalid_signature") from None
        try:
            prediction = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidRequest("The webhook body is not JSON.", code="invalid_webhook") from None
        if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
            raise InvalidRequest("The webhook body is not a prediction.", code="invalid_webhook")
        return values["webhook-id"], prediction
