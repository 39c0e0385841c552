"""Signed webhook deliveries, the way Replicate sends them.

The process that creates a prediction with a `webhook` starts one background
thread for it. The thread re-reads the stored record on every tick (so a
cancel from any worker is seen), works out which events are due, and POSTs
the whole prediction. Only the terminal `completed` delivery is retried;
the thread ends once that is delivered or its retries run out.

Signatures follow Standard Webhooks: HMAC-SHA256 over "{id}.{timestamp}.{body}"
keyed with the base64-decoded part of the `whsec_` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .timeline import TERMINAL

log = logging.getLogger(__name__)

DEFAULT_EVENTS = ["output", "completed"]
EVENTS = frozenset({"start", "output", "logs", "completed"})
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
THROTTLE = 0.5  # output/logs deliveries at most this often
TICK = 0.1
TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def post_signed(client: httpx.Client, url: str, secret: str, msg_id: str, body: str) -> bool:
    """One delivery attempt; True when the receiver answered 2xx."""
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    try:
        response = client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        log.info("webhook %s to %s failed: %s", msg_id, url, exc)
        return False
    return 200 <= response.status_code < 300


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


Snapshot = Callable[[], "dict[str, Any] | None"]


class WebhookSender:
    """Follows one prediction and delivers its webhook events."""

    def __init__(self, url: str, events: list[str], secret: str, snapshot: Snapshot) -> None:
        self.url = url
        self.events = set(events)
        self.secret = secret
        self.snapshot = snapshot  # the prediction JSON now, or None if it vanished

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="emulator-webhook", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=TIMEOUT) as client:
                self._follow(client)
        except Exception:  # a background thread has nobody to raise to
            log.exception("webhook delivery for %s stopped", self.url)

    def _follow(self, client: httpx.Client) -> None:
        started = False
        last_output: Any = None
        last_logs: Any = None
        output_sent_at = logs_sent_at = float("-inf")
        while True:
            prediction = self.snapshot()
            if prediction is None:
                return
            now = time.monotonic()
            terminal = prediction["status"] in TERMINAL
            due = set()
            if not started and prediction["started_at"] is not None:
                started = True
                due.add("start")
            if prediction["output"] != last_output and (terminal or now - output_sent_at >= THROTTLE):
                last_output, output_sent_at = prediction["output"], now
                due.add("output")
            if prediction["logs"] != last_logs and (terminal or now - logs_sent_at >= THROTTLE):
                last_logs, logs_sent_at = prediction["logs"], now
                due.add("logs")
            body = json.dumps(prediction)
            if terminal:
                if "completed" in self.events:
                    self._deliver_completed(client, body)
                elif due & self.events:
                    post_signed(client, self.url, self.secret, new_message_id(), body)
                return
            if due & self.events:
                post_signed(client, self.url, self.secret, new_message_id(), body)
            time.sleep(TICK)

    def _deliver_completed(self, client: httpx.Client, body: str) -> None:
        msg_id = new_message_id()  # the same id on every retry, for deduplication
        for delay in (*RETRY_DELAYS, None):
            if post_signed(client, self.url, self.secret, msg_id, body):
                return
            if delay is None:
                log.warning("webhook %s to %s: giving up after retries", msg_id, self.url)
                return
            time.sleep(delay)
