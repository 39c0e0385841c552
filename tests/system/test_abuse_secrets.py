"""REPLICATE_API_TOKEN and the webhook secret never leave the server.

Relay runs with a random `r8_…` token against a standalone emulator (which
accepts any bearer token) in webhook mode, so it holds both secrets. The test
then goes through every path it can reach, upstream failures included, records
every response (status line, headers, body, stream bytes) and the server's whole
log at DEBUG, and searches all of it for either secret.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from relay.emulator.models import MODELS
from testbed import TEST_SECRET, EmulatorServer, RelayServer, free_port, wait_until

IMAGE = {"prompt": "secret keeper", "steps": 3, "step_delay": 0.02, "boot_delay": 0}


class Recorder:
    """An httpx client that keeps everything the server sent back."""

    def __init__(self, base_url: str) -> None:
        self.seen: list[str] = []
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def keep(self, answer: httpx.Response, body: str | None = None) -> httpx.Response:
        head = f"{answer.status_code} {answer.reason_phrase}\n" + "".join(
            f"{k}: {v}\n" for k, v in answer.headers.multi_items())
        self.seen.append(head + (answer.text if body is None else body))
        return answer

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.keep(self.client.request(method, url, **kwargs))

    def stream_until(self, url: str, marker: str, **kwargs: Any) -> str:
        """Read a stream until `marker` appears (or it ends); the text read is kept."""
        text = ""
        with self.client.stream("GET", url, **kwargs) as answer:
            if answer.status_code == 200:
                for chunk in answer.iter_text():
                    text += chunk
                    if marker in text:
                        break
            else:
                text = answer.read().decode()
            self.keep(answer, text)
        return text

    def create(self, model: str = "relay/image-demo", **input: Any) -> httpx.Response:
        return self.request("POST", "/api/predictions", json={"model": model, "input": input or IMAGE})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayServer, EmulatorServer, str, str]]:
    emulator = EmulatorServer(tmp_path_factory.mktemp("emulator")).start()
    token = "r8_" + secrets.token_urlsafe(28)
    port = free_port()
    server = RelayServer({
        "REPLICATE_API_TOKEN": token,
        "REPLICATE_BASE_URL": emulator.url,
        "RELAY_ALLOWED_MODELS": "relay/image-demo,relay/text-demo",
        "RELAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RELAY_WEBHOOK_RECONCILE": "0.3",  # poll too, so upstream faults reach the watchers
        "RELAY_LOG_LEVEL": "DEBUG",
    }, tmp_path_factory.mktemp("relay"), port=port).start()
    webhook_secret = httpx.get(emulator.url + "/v1/webhooks/default/secret",
                               headers={"Authorization": f"Bearer {token}"}).json()["key"]
    yield server, emulator, token, webhook_secret
    server.stop(signal.SIGINT)
    emulator.stop()


def test_no_response_event_or_log_line_carries_a_secret(setup: tuple[RelayServer, EmulatorServer, str, str]) -> None:
    server, emulator, token, webhook_secret = setup
    relay = Recorder(server.url)
    assert relay.request("GET", "/healthz").json()["backend"] == "replicate"

    # Predictions that succeed, stream tokens, fail, and are canceled; each stream read to its end.
    image = relay.create().json()
    text = relay.create("relay/text-demo", prompt="hi", max_tokens=8, token_delay=0.02, boot_delay=0).json()
    failing = relay.create(**{**IMAGE, "fail_at_step": 2}).json()
    for created in (image, text, failing):
        assert "event: done" in relay.stream_until(created["stream_url"], "event: done")
    slow = relay.create(**{**IMAGE, "steps": 200, "step_delay": 0.05}).json()
    relay.stream_until(slow["stream_url"], "progress")
    watch = "&".join(f"watch={c['stream_url'].split('token=')[1]}" for c in (image, slow))
    multiplexed = relay.client.stream("GET", f"/api/events?{watch}")
    # Upstream failing while the slow one is followed: degraded, then recovered.
    emulator.fault(status=500, count=4, path_prefix="/v1/predictions/")
    with multiplexed as answer:
        seen = ""
        for chunk in answer.iter_text():
            seen += chunk
            if '"state":"ok"' in seen:
                break
        relay.keep(answer, seen)
    assert '"state":"degraded"' in seen
    assert relay.request("POST", slow["cancel_url"]).status_code == 200
    relay.stream_until(slow["stream_url"], "event: done")
    relay.request("GET", image["stream_url"], headers={"Last-Event-ID": "0-0"})

    # Refused by Relay's own schema check; then upstream refusing and failing at create: 422, 5xx,
    # 429, refused credentials, unreachable.
    assert relay.create(prompt="x", steps=100000).status_code == 400
    emulator.fault(status=422, count=1, path_prefix="/v1/models")
    assert relay.create().status_code == 422
    emulator.fault(status=500, count=1, path_prefix="/v1/models")
    assert relay.create().status_code == 503
    emulator.fault(status=429, count=1, retry_after=1, path_prefix="/v1/models")
    assert relay.create().status_code == 503
    emulator.fault(status=401, count=1, path_prefix="/v1/models")
    assert relay.create().status_code == 502
    emulator.fault(status=403, count=1, path_prefix="/v1/predictions")
    relay.request("POST", image["cancel_url"])
    emulator.fault(status=404, count=1, path_prefix="/v1/predictions")
    version = MODELS["relay/image-demo"].version_id
    relay.request("POST", "/api/predictions", json={"version": f"relay/image-demo:{version}", "input": IMAGE})
    emulator.clear_faults()

    # Relay's own refusals and error routes.
    signer = URLSafeTimedSerializer(TEST_SECRET, salt="relay-stream")
    for method, url, kwargs in [
        ("POST", "/api/predictions", {"json": {"model": "evil/model", "input": {}}}),
        ("POST", "/api/prediction", {"json": {"version": "a" * 64, "input": {}}}),
        ("POST", "/api/predictions", {"content": b"{", "headers": {"content-type": "application/json"}}),
        ("POST", "/api/predictions", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("POST", "/api/predictions", {"json": {"model": "relay/image-demo", "input": {"p": "x" * 70000}}}),
        ("POST", "/api/predictions", {"json": {"model": "relay/image-demo"}, "headers": {"Origin": "https://e.x"}}),
        ("GET", f"/api/predictions/unknown/events?token={signer.dumps('unknown')}", {}),
        ("GET", "/api/predictions/x/events?token=forged", {}),
        ("GET", "/api/events?watch=forged", {}),
        ("POST", "/api/predictions/x/cancel?token=forged", {}),
        ("POST", "/api/webhooks/replicate", {"content": b"{}"}),
        ("POST", "/api/webhooks/replicate", {"content": b'{"id": "x", "status": "succeeded"}', "headers": {
            "webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,Zm9v"}}),
        ("GET", "/nowhere", {}), ("DELETE", "/api/models", {}),
        ("GET", "/", {}), ("GET", "/embed", {}), ("GET", "/api/models", {}), ("GET", "/metrics", {}),
        ("GET", "/openapi.yaml", {}), ("GET", "/healthz", {}),
    ]:
        relay.request(method, url, **kwargs)

    # Let the log settle: the last request's access line is written after its answer.
    wait_until(lambda: '"GET /healthz' in server.log().split("POST /api/webhooks/replicate")[-1])
    log = server.log()
    everything = "\n".join(relay.seen) + "\n" + log
    # The paths where a secret could slip out were really taken (and logged at DEBUG).
    assert '"state":"degraded"' in everything and "upstream degraded" in log and "credentials" in log
    secret_body = webhook_secret.removeprefix("whsec_")
    for name, value in [("REPLICATE_API_TOKEN", token), ("its random part", token.removeprefix("r8_")),
                        ("the webhook secret", webhook_secret), ("its key", secret_body)]:
        assert value not in everything, f"{name} leaked"
    relay.client.close()
