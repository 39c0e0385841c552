"""Webhook mode: signed deliveries verified, deduplicated, ordered; polling only as a safety net."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from relay.emulator import token_from_secret
from testbed import TEST_SECRET, RelayServer, free_port
from testbed.sse import follow, iter_events, snapshots

PATH = "/api/webhooks/replicate"
SECRET = ""  # the emulator's signing secret, read by the `hooked` fixture


def signed(prediction: dict[str, Any], *, msg_id: str | None = None, when: float | None = None,
           secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A delivery signed by an independent implementation of the scheme (standardwebhooks)."""
    body = json.dumps(prediction)
    msg_id = msg_id or f"msg_{time.monotonic_ns()}"
    stamp = datetime.fromtimestamp(when if when is not None else time.time(), tz=UTC)
    signature = Webhook(secret or SECRET).sign(msg_id, stamp, body)
    return body.encode(), {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())),
                           "webhook-signature": signature, "content-type": "application/json"}


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server in webhook mode: the emulator delivers to the server's own address."""
    port = free_port()
    server = RelayServer({"RELAY_PUBLIC_URL": f"http://127.0.0.1:{port}", "RELAY_POLL_INTERVAL": "0.1"},
                         tmp_path_factory.mktemp("hooked"), port=port).start()
    # Relay fetches the secret itself from the (emulated) API; the tests sign with the same one.
    global SECRET
    SECRET = httpx.get(f"{server.url}/emulator/v1/webhooks/default/secret",
                       headers={"Authorization": f"Bearer {token_from_secret(TEST_SECRET)}"}).json()["key"]
    yield server
    server.stop()


@pytest.fixture
def client(hooked: RelayServer) -> Any:
    with httpx.Client(base_url=hooked.url, timeout=10) as c:
        yield c


def create(client: httpx.Client, **input: Any) -> dict[str, Any]:
    answer = client.post("/api/predictions", json={"model": "relay/image-demo", "input": input})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def upstream_gets(client: httpx.Client, prediction_id: str) -> int:
    stats = client.get("/emulator/_emulator/stats").json()
    return int(stats.get("per_prediction", {}).get(prediction_id, {}).get("GET", 0))


def test_webhooks_drive_the_stream_with_almost_no_polling(client: httpx.Client) -> None:
    created = create(client, prompt="pushed", steps=15, step_delay=0.2, boot_delay=0.3)
    events = follow(client, created["stream_url"])
    shots = snapshots(events)
    assert shots[-1]["status"] == "succeeded" and events[-1].kind == "done"
    percents = [s["progress"]["percent"] for s in shots if s["progress"]]
    assert percents == sorted(percents) and len(percents) >= 3
    # A ~3.5 s prediction polled every 0.1 s would cost dozens of GETs; webhooks leave a handful.
    assert upstream_gets(client, created["id"]) <= 4


def genuine_prediction(client: httpx.Client) -> dict[str, Any]:
    created = create(client, prompt="held", steps=2, step_delay=0.01, boot_delay=300)
    return {"id": created["id"], "status": "starting", "input": {}, "output": None, "logs": None,
            "error": None, "created_at": "2026-01-01T00:00:00Z"}, created  # type: ignore[return-value]


def test_a_genuine_delivery_is_applied_once_and_repeats_are_answered_2xx(client: httpx.Client) -> None:
    prediction, created = genuine_prediction(client)  # type: ignore[misc]
    stream = iter_events(client, created["stream_url"])
    assert next(stream).data["status"] == "starting"
    update = {**prediction, "status": "processing", "logs": " 50%|█████     | 1/2 [00:00<00:00, 9.0it/s]\n"}
    body, headers = signed(update, msg_id="msg_repeat_1")
    first = client.post(PATH, content=body, headers=headers)
    again = client.post(PATH, content=body, headers=headers)
    assert first.status_code == 200 and first.json()["outcome"] == "new"
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    grown = next(stream)  # the log's growth comes first, as a delta, then the snapshot
    assert grown.kind == "logs" and grown.data == {"id": created["id"], "offset": 0, "text": update["logs"]}
    event = next(stream)
    assert event.data["status"] == "processing" and event.data["progress"]["percent"] == 50.0
    # An older state delivered late is ignored.
    body, headers = signed({**prediction, "status": "starting"})
    assert client.post(PATH, content=body, headers=headers).json()["outcome"] == "stale"
    done = {**update, "status": "canceled", "completed_at": "2026-01-01T00:00:09Z"}
    body, headers = signed(done)
    assert client.post(PATH, content=body, headers=headers).status_code == 200
    rest = list(stream)
    assert [e.kind for e in rest] == ["message", "done"] and rest[0].data["status"] == "canceled"
    # After the terminal state nothing more is applied.
    body, headers = signed({**update, "logs": update["logs"] + "more\n"})
    assert client.post(PATH, content=body, headers=headers).json()["outcome"] in ("same", "stale")


def assert_refused(answer: httpx.Response, statuses: tuple[int, ...] = (400, 403)) -> None:
    assert answer.status_code in statuses, answer.text
    body = answer.json()
    assert body["success"] is False and body["code"] and "Traceback" not in answer.text
    assert SECRET not in answer.text and SECRET.split("_")[1] not in answer.text


def test_forged_and_stale_deliveries_change_nothing(client: httpx.Client) -> None:
    prediction, created = genuine_prediction(client)  # type: ignore[misc]
    fake = {**prediction, "status": "succeeded", "output": ["https://evil.example/x.png"]}
    wrong_key = "whsec_" + base64.b64encode(b"another-secret-another-secret-32").decode()
    cases = [
        signed(fake, secret=wrong_key),
        signed(fake, when=time.time() - 301),
        signed(fake, when=time.time() + 301),
    ]
    body, headers = signed(prediction)
    cases.append((body.replace(b"starting", b"succeeded"), headers))  # tampered body
    for body, headers in cases:
        assert_refused(client.post(PATH, content=body, headers=headers), (403,))
    events = follow(client, created["stream_url"] + "&lastEventId=0-0", limit=1)
    assert events[0].data["status"] == "starting"


def test_malformed_deliveries_are_4xx(client: httpx.Client) -> None:
    prediction = {"id": "abc", "status": "processing"}
    body, headers = signed(prediction)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert_refused(client.post(PATH, content=body, headers={k: v for k, v in headers.items() if k != name}))
    assert_refused(client.post(PATH, content=body, headers={**headers, "webhook-timestamp": "soon"}))
    assert_refused(client.post(PATH, content=body, headers={**headers, "webhook-signature": "v1,!!!notbase64"}))
    assert_refused(client.post(PATH, content=body, headers={**headers, "webhook-signature": "v1,YQ"}))
    assert_refused(client.post(PATH, content=body, headers={**headers, "webhook-signature": "nonsense"}))
    assert_refused(client.post(PATH, content=b"", headers=headers))
    for raw in (b"\xff\xfe not utf-8", b"not json", b"[1, 2]", b'{"no": "id"}', b'{"id": "x", "status": "odd"}'):
        stamp = datetime.now(tz=UTC)
        sig = Webhook(SECRET).sign("msg_raw", stamp, raw.decode("utf-8", "replace"))
        answer = client.post(PATH, content=raw, headers={"webhook-id": f"msg_{raw!r}",
                                                         "webhook-timestamp": str(int(stamp.timestamp())),
                                                         "webhook-signature": sig})
        assert_refused(answer)
    huge = client.post(PATH, content=b"x" * (5 * 2**20), headers=headers)
    assert huge.status_code == 413


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.strip)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(webhook_id=header_text, timestamp=header_text, signature=header_text, body=st.binary(max_size=300))
def test_random_deliveries_never_succeed_or_crash(client: httpx.Client, webhook_id: str, timestamp: str,
                                                   signature: str, body: bytes) -> None:
    answer = client.post(PATH, content=body, headers={
        "webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": signature})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["success"] is False and "Traceback" not in answer.text


def test_text_model_tokens_arrive_as_output_events_in_order(client: httpx.Client) -> None:
    answer = client.post("/api/predictions", json={"model": "relay/text-demo", "input": {
        "prompt": "count", "max_tokens": 20, "token_delay": 0.05, "boot_delay": 0}})
    events = follow(client, answer.json()["stream_url"])
    chunks = [e.data["text"] for e in events if e.kind == "output"]
    final = snapshots(events)[-1]
    assert final["status"] == "succeeded"
    assert "".join(chunks) == "".join(final["output"])
