"""The emulator, exercised the way Relay uses it: the real `replicate` client over HTTP.

Every test starts real servers on 127.0.0.1 (werkzeug's threaded server, no
monkey-patching) and waits on conditions with deadlines.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from httpx_sse import connect_sse
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.prediction import Prediction
from standardwebhooks import Webhook
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from relay.emulator import create_emulator

REPO = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer test"}
IMAGE_VERSION = hashlib.sha256(b"relay/image-demo").hexdigest()
TQDM_LINE = re.compile(
    r"^ {0,2}\d{1,3}%\|[ ▏▎▍▌▋▊▉█]{10}\| \d+/\d+ \[\d\d:\d\d<(\d\d:\d\d|\?), +(\d+\.\d\d|\?)(it/s|s/it)\]$"
)
FAST = {"boot_delay": 0, "step_delay": 0.01}

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Served:
    base: str
    server: BaseWSGIServer
    client: Client
    http: httpx.Client
    transport: httpx.HTTPTransport

    def close(self) -> None:
        self.transport.close()
        self.http.close()
        self.server.shutdown()
        self.server.server_close()


def serve(app: Any, prefix: str = "") -> Served:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}{prefix}"
    emulator = getattr(app, "extensions", {}).get("relay_emulator")
    if emulator is not None and emulator.files_url is None:
        emulator.files_url = base  # as `python -m relay.emulator` does with its own address
    transport = httpx.HTTPTransport()
    client = Client(api_token="test", base_url=base, transport=transport)
    return Served(base, server, client, httpx.Client(base_url=base, timeout=10), transport)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def emu(state_dir: Path) -> Iterator[Served]:
    served = serve(create_emulator(state_dir, faults_enabled=True))
    yield served
    served.close()


def create_raw(emu: Served, model: str, input: dict[str, Any], **extra: Any) -> httpx.Response:
    return emu.http.post(f"/v1/models/{model}/predictions", json={"input": input, **extra}, headers=AUTH)


def finished(emu: Served, prediction_id: str) -> Callable[[], Prediction | None]:
    def check() -> Prediction | None:
        p = emu.client.predictions.get(prediction_id)
        return p if p.status in ("succeeded", "failed", "canceled") else None

    return check


# --- image model -------------------------------------------------------------


def test_image_prediction_moves_through_states_with_tqdm_logs_and_a_png(emu: Served) -> None:
    created = create_raw(
        emu, "relay/image-demo", {"prompt": "a lighthouse", "steps": 8, "step_delay": 0.03, "boot_delay": 0.2}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "starting" and body["logs"] == "" and body["output"] is None
    assert re.fullmatch(r"[a-z0-9]{26}", body["id"])
    assert body["urls"]["get"] == f"{emu.base}/v1/predictions/{body['id']}"
    assert "stream" not in body["urls"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["created_at"])

    seen: list[str] = []

    def done() -> Prediction | None:
        p = emu.client.predictions.get(body["id"])
        if not seen or seen[-1] != p.status:
            seen.append(p.status)
        return p if p.status == "succeeded" else None

    p = wait_for(done, what="success")
    assert seen[-1] == "succeeded" and "processing" in seen
    assert p.logs is not None
    lines = p.logs.splitlines()
    assert re.fullmatch(r"Using seed: \d+", lines[0])
    assert all(TQDM_LINE.match(line) for line in lines[1:]), lines
    assert lines[1] == "  0%|          | 0/8 [00:00<?, ?it/s]"
    assert lines[-1].startswith("100%|██████████| 8/8 [00:00<00:00, ")
    assert p.progress is not None and p.progress.percentage == 1.0
    assert p.metrics is not None and p.metrics["predict_time"] == pytest.approx(0.24)
    assert p.completed_at is not None and p.started_at is not None

    assert p.output is not None
    [url] = p.output
    assert url == f"{emu.base}/files/{p.id}/output.png"
    image = httpx.get(url)  # files are public: no token
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.content[16:24] == (512).to_bytes(4, "big") * 2  # IHDR width, height


def test_png_is_deterministic_from_prompt_and_seed(emu: Served) -> None:
    def png(prompt: str, seed: int) -> bytes:
        pid = create_raw(
            emu,
            "relay/image-demo",
            {"prompt": prompt, "seed": seed, "steps": 2, "width": 64, "height": 96, **FAST},
        ).json()["id"]
        p = wait_for(finished(emu, pid))
        assert p.output is not None
        return httpx.get(p.output[0]).content

    first = png("red fox", 7)
    assert first[16:24] == (64).to_bytes(4, "big") + (96).to_bytes(4, "big")
    assert png("red fox", 7) == first
    assert png("blue fox", 7) != first
    assert png("red fox", 8) != first


def test_output_file_is_404_until_succeeded_and_for_unknown_ids(emu: Served) -> None:
    pid = create_raw(emu, "relay/image-demo", {"prompt": "x", "boot_delay": 5}).json()["id"]
    assert httpx.get(f"{emu.base}/files/{pid}/output.png").status_code == 404
    for odd in ("nope", "ABC", "..", "%00", "a" * 100):
        answer = httpx.get(f"{emu.base}/files/{odd}/output.png")
        assert answer.status_code == 404 and answer.json()["status"] == 404


@pytest.mark.parametrize("version", [IMAGE_VERSION, "relay/image-demo", f"relay/image-demo:{IMAGE_VERSION}"])
def test_create_by_version_forms(emu: Served, version: str) -> None:
    answer = emu.http.post(
        "/v1/predictions", json={"version": version, "input": {"prompt": "p"}}, headers=AUTH
    )
    assert answer.status_code == 201
    assert answer.json()["model"] == "relay/image-demo" and answer.json()["version"] == IMAGE_VERSION
    p = emu.client.predictions.create(version=version, input={"prompt": "q", **FAST})
    assert wait_for(finished(emu, p.id)).status == "succeeded"


@pytest.mark.parametrize("version", ["relay/image-demo:" + "0" * 64, "0" * 64, "someone/else", "", 5])
def test_bad_version_is_422(emu: Served, version: Any) -> None:
    answer = emu.http.post(
        "/v1/predictions", json={"version": version, "input": {"prompt": "p"}}, headers=AUTH
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_unknown_model_route_is_404(emu: Served) -> None:
    with pytest.raises(ReplicateError) as caught:
        emu.client.models.predictions.create(model="nobody/nothing", input={"prompt": "p"})
    assert caught.value.status == 404
    model = emu.client.models.get("relay/text-demo")
    assert model.latest_version is not None
    assert model.latest_version.id == hashlib.sha256(b"relay/text-demo").hexdigest()


def test_fail_at_step_fails_with_error_and_partial_logs(emu: Served) -> None:
    p = emu.client.models.predictions.create(
        model="relay/image-demo", input={"prompt": "p", "steps": 10, "fail_at_step": 4, **FAST}
    )
    p = wait_for(finished(emu, p.id))
    assert p.status == "failed" and p.error == "Simulated failure at step 4"
    assert p.logs is not None and p.logs.splitlines()[-1].startswith(" 30%|███       | 3/10 ")
    assert p.output is None


def test_cancel_freezes_logs_and_cancel_of_terminal_is_unchanged(emu: Served) -> None:
    p = emu.client.models.predictions.create(
        model="relay/image-demo", input={"prompt": "p", "steps": 200, "step_delay": 0.02, "boot_delay": 0}
    )
    wait_for(lambda: (emu.client.predictions.get(p.id).logs or "").count("\n") >= 4, what="some steps")
    canceled = emu.client.predictions.cancel(p.id)
    assert canceled.status == "canceled" and canceled.completed_at is not None
    # Once five more steps would have run, nothing may have changed.
    later = time.monotonic() + 5 * 0.02
    wait_for(lambda: time.monotonic() > later)
    again = emu.client.predictions.get(p.id)
    assert again.logs == canceled.logs and again.status == "canceled"
    assert again.completed_at == canceled.completed_at
    assert emu.client.predictions.cancel(p.id).completed_at == canceled.completed_at

    done = emu.client.predictions.create(
        version="relay/image-demo", input={"prompt": "p", "steps": 1, **FAST}
    )
    wait_for(finished(emu, done.id))
    assert emu.client.predictions.cancel(done.id).status == "succeeded"


def test_cancel_while_starting(emu: Served) -> None:
    p = emu.client.models.predictions.create(
        model="relay/image-demo", input={"prompt": "p", "boot_delay": 30}
    )
    canceled = emu.client.predictions.cancel(p.id)
    assert canceled.status == "canceled" and canceled.started_at is None and canceled.logs == ""


# --- text model and its stream ------------------------------------------------


def read_stream(emu: Served, url: str, last_event_id: str | None = None) -> list[tuple[str, str, str]]:
    headers = {**AUTH, "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with httpx.Client(timeout=10) as http, connect_sse(http, "GET", url, headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(e.event, e.data, e.id) for e in source.iter_sse()]


def test_text_tokens_stream_in_order_and_resume_after_last_event_id(emu: Served) -> None:
    p = emu.client.models.predictions.create(
        model="relay/text-demo",
        input={"prompt": "tell me", "max_tokens": 12, "token_delay": 0.02, "boot_delay": 0},
    )
    assert p.urls is not None and p.urls["stream"].startswith(f"{emu.base}/v1/streams/{p.id}/")
    events = read_stream(emu, p.urls["stream"])
    final = emu.client.predictions.get(p.id)
    assert final.status == "succeeded" and final.output is not None and len(final.output) == 12
    assert [data for kind, data, _ in events if kind == "output"] == final.output
    assert final.output[0][0] != " " and all(t.startswith(" ") for t in final.output[1:])
    assert events[-1][:2] == ("done", "{}")
    prefix = events[0][2].split(":")[0]
    assert final.created_at is not None
    created = datetime.strptime(final.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    assert abs(int(prefix) - created) <= 1
    assert [e[2] for e in events] == [f"{prefix}:{n}" for n in range(13)]

    resumed = read_stream(emu, p.urls["stream"], last_event_id=f"{prefix}:4")
    assert [data for kind, data, _ in resumed if kind == "output"] == final.output[5:]
    assert resumed[0][2] == f"{prefix}:5" and resumed[-1][0] == "done"

    # The same tokens through the replicate client's own decoder.
    assert [str(e) for e in final.stream() if e.event.value == "output"] == final.output


def test_text_output_grows_while_processing(emu: Served) -> None:
    p = emu.client.models.predictions.create(
        model="relay/text-demo",
        input={"prompt": "x", "max_tokens": 20, "token_delay": 0.02, "boot_delay": 0.1},
    )
    assert p.status == "starting" and p.output is None

    def partly_done() -> Prediction | None:
        q = emu.client.predictions.get(p.id)
        return q if q.status == "processing" and 0 < len(q.output or []) < 20 else None

    partial = wait_for(partly_done, what="partial output")
    assert partial.logs and partial.output is not None
    final = wait_for(finished(emu, p.id))
    assert final.output is not None and final.output[: len(partial.output)] == partial.output


def test_text_failure_ends_the_stream_with_error_then_done(emu: Served) -> None:
    p = emu.client.models.predictions.create(
        model="relay/text-demo",
        input={"prompt": "x", "max_tokens": 10, "fail_at_token": 3, "token_delay": 0.01, "boot_delay": 0},
    )
    assert p.urls is not None
    events = read_stream(emu, p.urls["stream"])
    assert [kind for kind, _, _ in events] == ["output", "output", "error", "done"]
    assert json.loads(events[2][1]) == {"detail": "Simulated failure at token 3"}
    assert json.loads(events[3][1]) == {"reason": "error"}
    with pytest.raises(RuntimeError):  # the client raises on error events, as with Replicate
        list(p.stream())


def test_idle_stream_ends_with_a_408_comment(emu: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("relay.emulator.sse.IDLE_TIMEOUT", 0.3)  # Replicate's is 30 s
    p = create_raw(emu, "relay/text-demo", {"prompt": "x", "boot_delay": 20}).json()
    with emu.http.stream("GET", p["urls"]["stream"], headers=AUTH) as answer:
        lines = list(answer.iter_lines())
    assert lines[-2:] == [":408", ""] and not any(line.startswith("event:") for line in lines)


def test_stream_is_a_capability_url_of_a_streaming_model(emu: Served) -> None:
    text = create_raw(emu, "relay/text-demo", {"prompt": "x", "boot_delay": 0, "token_delay": 0}).json()
    image = create_raw(emu, "relay/image-demo", {"prompt": "x", "boot_delay": 0}).json()
    # Readable with no Authorization at all, as the JS client reads Replicate's.
    with httpx.stream("GET", text["urls"]["stream"], headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200 and "event: done" in answer.read().decode()
    tag = text["urls"]["stream"].rsplit("/", 1)[1]
    assert "stream" not in image["urls"]
    # The tag is bound to its prediction: another id, or a forged tag, is a 404.
    assert httpx.get(f"{emu.base}/v1/streams/{image['id']}/{tag}").status_code == 404
    assert httpx.get(f"{emu.base}/v1/streams/{text['id']}/{'0' * 32}").status_code == 404
    assert httpx.get(f"{emu.base}/v1/streams/nothere/{tag}").status_code == 404


# --- validation and errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("input", "field", "kind"),
    [
        ({}, "input", "required"),
        ({"prompt": 5}, "input.prompt", "invalid_type"),
        ({"prompt": "p", "steps": "many"}, "input.steps", "invalid_type"),
        ({"prompt": "p", "steps": 501}, "input.steps", "number_lte"),
        ({"prompt": "p", "steps": 2.5}, "input.steps", "invalid_type"),
        ({"prompt": "p", "width": 10}, "input.width", "number_gte"),
        ({"prompt": "p", "step_delay": -1}, "input.step_delay", "number_gte"),
        ({"prompt": "p", "fail_at_step": 0}, "input.fail_at_step", "number_gte"),
        ({"prompt": "p", "seed": True}, "input.seed", "invalid_type"),
        ([], "input", "invalid_type"),
    ],
)
def test_bad_input_is_422_with_invalid_fields(emu: Served, input: Any, field: str, kind: str) -> None:
    answer = emu.http.post("/v1/models/relay/image-demo/predictions", json={"input": input}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 422 and problem["invalid_fields"][0]["field"] == field
    assert problem["invalid_fields"][0]["type"] == kind
    assert problem["detail"].startswith(f"- {field}: ")


def test_422_reaches_the_client_and_unknown_inputs_are_ignored(emu: Served) -> None:
    with pytest.raises(ReplicateError) as caught:
        emu.client.models.predictions.create(
            model="relay/text-demo", input={"prompt": "p", "max_tokens": 5000}
        )
    assert caught.value.status == 422
    assert caught.value.detail == "- input.max_tokens: Must be less than or equal to 2000\n"
    p = emu.client.models.predictions.create(model="relay/text-demo", input={"prompt": "p", "colour": "blue"})
    assert p.input == {"prompt": "p", "colour": "blue"}


@pytest.mark.parametrize(
    "odd", ["doesnotexist0", "ABC", "../x", "..%2Fx", "%00", "a" * 200, "x.json", "%E2%9C%93"]
)
def test_unknown_and_odd_ids_are_404(emu: Served, odd: str) -> None:
    for method, path in [("GET", f"/v1/predictions/{odd}"), ("POST", f"/v1/predictions/{odd}/cancel")]:
        answer = emu.http.request(method, path, headers=AUTH)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"detail": "Not found.", "status": 404, "title": "Not found"}


def test_client_get_of_unknown_id_raises_404(emu: Served) -> None:
    with pytest.raises(ReplicateError) as caught:
        emu.client.predictions.get("nothinghere")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/predictions/abc"),
        ("POST", "/v1/predictions"),
        ("GET", "/v1/webhooks/default/secret"),
        ("GET", "/v1/predictions"),
    ],
)
def test_missing_token_is_401(emu: Served, method: str, path: str) -> None:
    answer = emu.http.request(method, path, json={})
    assert answer.status_code == 401
    assert answer.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass an authentication token",
        "status": 401,
    }


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"input": NaN}', b"\xff\xfe", b"[" * 100_000, b'"text"'])
def test_malformed_bodies_are_400_never_500(emu: Served, body: bytes) -> None:
    answer = emu.http.post(
        "/v1/predictions", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"


def test_unknown_route_and_wrong_method_are_problems(emu: Served) -> None:
    assert emu.http.get("/v1/nothing", headers=AUTH).json()["status"] == 404
    answer = emu.http.delete("/v1/predictions", headers=AUTH)
    assert answer.status_code == 405 and answer.headers["content-type"] == "application/problem+json"


def test_list_predictions_and_models(emu: Served) -> None:
    ids = [create_raw(emu, "relay/text-demo", {"prompt": str(i)}).json()["id"] for i in range(3)]
    page = emu.http.get("/v1/predictions", headers=AUTH).json()
    assert page["next"] is None and [r["id"] for r in page["results"]] == ids[::-1]
    assert [p.id for p in emu.client.predictions.list().results] == ids[::-1]
    names = {m["name"] for m in emu.http.get("/v1/models", headers=AUTH).json()["results"]}
    assert names == {"image-demo", "text-demo", "audio-demo", "json-demo", "caption-demo"}


# --- several processes, mounting ---------------------------------------------------


def strip_base(value: Any, base: str) -> Any:
    return json.loads(json.dumps(value).replace(base, "BASE"))


def test_two_instances_on_one_state_dir_agree(state_dir: Path) -> None:
    a = serve(create_emulator(state_dir))
    b = serve(create_emulator(state_dir))
    try:
        p = a.client.models.predictions.create(
            model="relay/text-demo",
            input={"prompt": "shared", "max_tokens": 300, "token_delay": 0.02, "boot_delay": 0},
        )
        on_b = b.client.predictions.get(p.id)
        assert on_b.id == p.id and on_b.urls is not None and on_b.urls["get"].startswith(b.base)
        # B's stream sees a cancel made through A.
        seen: list[tuple[str, str]] = []
        headers = {**AUTH, "Accept": "text/event-stream"}
        with (
            httpx.Client(timeout=10) as http,
            connect_sse(http, "GET", on_b.urls["stream"], headers=headers) as source,
        ):
            for event in source.iter_sse():
                seen.append((event.event, event.data))
                if len(seen) == 3:
                    a.client.predictions.cancel(p.id)
        assert seen[-1] == ("done", '{"reason": "canceled"}')
        from_a = a.http.get(f"/v1/predictions/{p.id}", headers=AUTH).json()
        from_b = b.http.get(f"/v1/predictions/{p.id}", headers=AUTH).json()
        assert from_a["status"] == "canceled"
        assert strip_base(from_a, a.base) == strip_base(from_b, b.base)
        assert len(from_a["output"]) == len(seen) - 1
        secret_a = a.client.webhooks.default.secret().key
        assert secret_a == b.client.webhooks.default.secret().key
        assert secret_a.startswith("whsec_") and len(base64.b64decode(secret_a[6:])) == 32
        assert (state_dir / "webhook_secret").read_text() == secret_a
    finally:
        a.close()
        b.close()


def test_mounted_under_a_prefix_builds_urls_from_the_script_name(state_dir: Path) -> None:
    app = DispatcherMiddleware(NotFound(), {"/emulator": create_emulator(state_dir)})
    served = serve(app, prefix="/emulator")
    try:
        p = served.client.models.predictions.create(model="relay/image-demo", input={"prompt": "p", **FAST})
        assert p.urls is not None and p.urls["get"] == f"{served.base}/v1/predictions/{p.id}"
        assert p.urls["cancel"] == f"{served.base}/v1/predictions/{p.id}/cancel"
        p = wait_for(finished(served, p.id))
        # With no files_url, output files are root-relative paths from the mount point, never from Host.
        assert p.output == [f"/emulator/files/{p.id}/output.png"]
        origin = served.base.removesuffix("/emulator")
        assert httpx.get(origin + p.output[0]).content.startswith(b"\x89PNG")
        t = served.client.models.predictions.create(
            model="relay/text-demo", input={"prompt": "p", "boot_delay": 0, "token_delay": 0}
        )
        assert t.urls is not None and t.urls["stream"].startswith(f"{served.base}/v1/streams/{t.id}/")
        assert [e[0] for e in read_stream(served, t.urls["stream"])][-1] == "done"
    finally:
        served.close()


# --- webhooks ---------------------------------------------------------------------


@dataclass
class Receiver:
    fail_first_completed: bool = False
    deliveries: list[tuple[dict[str, str], str, float]] = field(default_factory=list)
    failed_once: bool = False

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(as_text=True)
        status = 200
        if self.fail_first_completed and not self.failed_once and json.loads(body)["status"] != "processing":
            self.failed_once = True
            status = 500
        self.deliveries.append((dict(request.headers), body, time.monotonic()))
        return Response("ok", status=status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    handler = Receiver()
    server = make_server("127.0.0.1", 0, handler, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def verified(emu: Served, delivery: tuple[dict[str, str], str, float]) -> dict[str, Any]:
    """Check the signature with the independent standardwebhooks implementation."""
    headers, body, _ = delivery
    secret = emu.client.webhooks.default.secret().key
    payload: dict[str, Any] = Webhook(secret).verify(body, headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["Webhook-Id"].startswith("msg_")
    return payload


def test_webhooks_are_signed_and_follow_the_events_filter(
    emu: Served, receiver: tuple[Receiver, str]
) -> None:
    handler, url = receiver
    p = emu.client.models.predictions.create(
        model="relay/text-demo",
        input={"prompt": "hook", "max_tokens": 15, "token_delay": 0.1, "boot_delay": 0.05},
        webhook=url,
        webhook_events_filter=["start", "output", "completed"],
    )
    wait_for(
        lambda: any(json.loads(b)["status"] == "succeeded" for _, b, _ in handler.deliveries),
        what="completed",
    )
    payloads = [verified(emu, d) for d in handler.deliveries]
    assert {q["id"] for q in payloads} == {p.id}
    assert payloads[0]["status"] == "processing"  # start
    assert payloads[-1]["status"] == "succeeded" and len(payloads[-1]["output"]) == 15
    middle = payloads[1:-1]
    assert middle and all(q["status"] == "processing" for q in middle)
    lengths = [len(q["output"]) for q in payloads[:-1]]
    assert lengths == sorted(lengths)
    times = [t for _, _, t in handler.deliveries[1:-1]]
    assert all(later - earlier >= 0.35 for earlier, later in pairwise(times))
    assert len({h["Webhook-Id"] for h, _, _ in handler.deliveries}) == len(handler.deliveries)


def test_completed_webhook_is_retried_with_the_same_id(emu: Served, receiver: tuple[Receiver, str]) -> None:
    handler, url = receiver
    handler.fail_first_completed = True
    p = emu.client.models.predictions.create(
        model="relay/image-demo", input={"prompt": "r", "steps": 2, **FAST}, webhook=url
    )
    wait_for(lambda: len(handler.deliveries) >= 2, what="a retry")
    first, second = handler.deliveries[:2]
    assert first[0]["Webhook-Id"] == second[0]["Webhook-Id"]
    assert 0.8 <= second[2] - first[2] <= 3
    assert verified(emu, second)["id"] == p.id and verified(emu, second)["status"] == "succeeded"


def test_completed_webhook_reports_a_cancel(emu: Served, receiver: tuple[Receiver, str]) -> None:
    handler, url = receiver
    p = emu.client.models.predictions.create(
        model="relay/image-demo",
        input={"prompt": "c", "boot_delay": 30},
        webhook=url,
        webhook_events_filter=["completed"],
    )
    emu.client.predictions.cancel(p.id)
    wait_for(lambda: handler.deliveries, what="completed")
    assert verified(emu, handler.deliveries[0])["status"] == "canceled"


def test_bad_webhook_fields_are_422(emu: Served) -> None:
    for extra in (
        {"webhook": "ftp://x"},
        {"webhook": 5},
        {"webhook": "http://x/y", "webhook_events_filter": ["nope"]},
    ):
        answer = create_raw(emu, "relay/image-demo", {"prompt": "p"}, **extra)
        assert answer.status_code == 422, extra


# --- faults and stats -------------------------------------------------------------------


def set_fault(emu: Served, **fault: Any) -> None:
    answer = emu.http.post("/_emulator/faults", json=fault)
    assert answer.status_code == 200, answer.text


def test_fault_500_for_n_requests_then_ok(emu: Served) -> None:
    pid = create_raw(emu, "relay/text-demo", {"prompt": "p"}).json()["id"]
    set_fault(emu, status=500, count=2, path_prefix="/v1/predictions")
    codes = [emu.http.get(f"/v1/predictions/{pid}", headers=AUTH).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    set_fault(emu, status=500, count=1, methods=["POST"])
    with pytest.raises(ReplicateError) as caught:  # the client never retries a POST
        emu.client.models.predictions.create(model="relay/text-demo", input={"prompt": "p"})
    assert caught.value.status == 500
    emu.client.models.predictions.create(model="relay/text-demo", input={"prompt": "p"})


def test_fault_429_with_retry_after_is_honoured_by_the_client(emu: Served) -> None:
    pid = create_raw(emu, "relay/text-demo", {"prompt": "p"}).json()["id"]
    set_fault(emu, status=429, count=1, retry_after=1)
    throttled = emu.http.get(f"/v1/predictions/{pid}", headers=AUTH)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json()["detail"] == "Request was throttled. Expected available in 1 second."
    set_fault(emu, status=429, count=1, retry_after=1)
    started = time.monotonic()
    assert emu.client.predictions.get(pid).id == pid
    assert time.monotonic() - started >= 0.9


def test_fault_delay_and_expiry_and_clear(emu: Served) -> None:
    pid = create_raw(emu, "relay/text-demo", {"prompt": "p"}).json()["id"]
    set_fault(emu, delay=0.3, count=1)
    started = time.monotonic()
    assert emu.http.get(f"/v1/predictions/{pid}", headers=AUTH).status_code == 200
    assert time.monotonic() - started >= 0.3
    set_fault(emu, status=503, seconds=0.3)
    assert emu.http.get(f"/v1/predictions/{pid}", headers=AUTH).status_code == 503
    wait_for(lambda: emu.http.get(f"/v1/predictions/{pid}", headers=AUTH).status_code == 200, what="expiry")
    set_fault(emu, status=503)
    assert emu.http.get(f"/v1/predictions/{pid}", headers=AUTH).status_code == 503
    assert emu.http.delete("/_emulator/faults").status_code == 200
    assert emu.http.get(f"/v1/predictions/{pid}", headers=AUTH).status_code == 200
    assert emu.http.post("/_emulator/faults", json={"status": "bad"}).status_code == 422
    assert emu.http.post("/_emulator/faults", json={}).status_code == 422


def test_stats_count_requests_per_route_and_prediction(emu: Served) -> None:
    pid = create_raw(emu, "relay/text-demo", {"prompt": "p"}).json()["id"]
    assert emu.http.delete("/_emulator/stats").status_code == 200
    set_fault(emu, status=503, count=2, methods=["GET"])
    assert emu.client.predictions.get(pid).id == pid  # two retried 503s, then the answer
    emu.client.predictions.get(pid)
    emu.client.models.predictions.create(model="relay/text-demo", input={"prompt": "q"})
    stats = emu.http.get("/_emulator/stats").json()
    assert stats["GET /v1/predictions/{id}"] == 4
    assert stats["POST /v1/models/{owner}/{name}/predictions"] == 1
    assert stats["per_prediction"] == {pid: {"GET": 4}}


def test_test_routes_are_absent_without_faults(state_dir: Path) -> None:
    served = serve(create_emulator(state_dir))
    try:
        assert served.http.post("/_emulator/faults", json={"status": 500}).status_code == 404
        assert served.http.get("/_emulator/stats").status_code == 404
    finally:
        served.close()


# --- running on its own -----------------------------------------------------------------


def test_python_m_relay_emulator_serves_under_gevent(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "relay.emulator", "--port", "0", "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "no startup line"
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"emulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        with httpx.HTTPTransport() as transport:
            client = Client(api_token="test", base_url=match.group(1), transport=transport)
            p = client.models.predictions.create(
                model="relay/text-demo",
                input={"prompt": "p", "max_tokens": 3, "boot_delay": 0, "token_delay": 0.01},
            )
            assert p.urls is not None
            assert [str(e) for e in p.stream() if e.event.value == "output"] == client.predictions.get(
                p.id
            ).output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
