"""Signed webhook deliveries sent by the benchmark itself, to drive a prediction's state.

Relay in webhook mode trusts any delivery signed with the upstream's secret.
The emulator hands that secret out (`GET /emulator/v1/webhooks/default/secret`),
so a benchmark can play Replicate: it signs each new state of a prediction with
the `standardwebhooks` package (an implementation independent of Relay's) and
POSTs it, noting the time right before the request leaves. Relay applies it,
and its subscribers receive the snapshot; the difference is Relay's own
push latency, free of any upstream delay.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from servers import emulator_token
from standardwebhooks.webhooks import Webhook

WEBHOOK_PATH = "/api/webhooks/replicate"


def progress_line(step: int, total: int) -> str:
    """A tqdm line as a Cog model prints it, which Relay reads as progress."""
    percent = int(100 * step / total)
    filled = percent // 10
    return f"{percent:3d}%|{'█' * filled}{' ' * (10 - filled)}| {step}/{total} [00:0{step % 10}<00:00, 9.90it/s]"


class Deliveries:
    """Sends states of predictions to one Relay server as signed webhooks, over a kept-alive connection."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=30)
        secret = self.client.get("/emulator/v1/webhooks/default/secret",
                                 headers={"Authorization": f"Bearer {emulator_token()}"})
        secret.raise_for_status()
        self.webhook = Webhook(secret.json()["key"])
        self.sent = 0

    def prediction(self, prediction_id: str, status: str, logs: str, **fields: Any) -> dict[str, Any]:
        """A prediction body as Replicate sends it (the fields Relay reads)."""
        now = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"id": prediction_id, "status": status, "input": {}, "output": None, "error": None,
                "logs": logs, "metrics": {}, "created_at": fields.pop("created_at", now),
                "started_at": fields.pop("started_at", now), "completed_at": None, **fields}

    def send(self, prediction: dict[str, Any]) -> tuple[float, str]:
        """Sign and POST one delivery; (time.time() right before it left, Relay's outcome)."""
        body = json.dumps(prediction)
        self.sent += 1
        msg_id = f"msg_bench_{time.monotonic_ns()}_{self.sent}"
        stamp = datetime.now(tz=UTC)
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())),
                   "webhook-signature": self.webhook.sign(msg_id, stamp, body),
                   "content-type": "application/json"}
        published = time.time()
        answer = self.client.post(WEBHOOK_PATH, content=body.encode(), headers=headers)
        if answer.status_code >= 300:
            raise RuntimeError(f"Relay refused a delivery: {answer.status_code} {answer.text[:300]}")
        return published, str(answer.json().get("outcome"))

    def close(self) -> None:
        self.client.close()
