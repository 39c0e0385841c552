"""The emulator's token, its own URLs and its expiry (#11 items 9, 19, 20), and Prefer: wait.

In-process servers on 127.0.0.1, and Relay's app itself for the embedded
emulator's token.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from relay.emulator import create_emulator, token_from_secret
from testbed import wait_until

TOKEN = "r8_required"


class Server:
    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.http = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)

    def close(self) -> None:
        self.http.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    server = Server(create_emulator(tmp_path / "state", token=TOKEN, files_url="https://files.example/emulator"))
    yield server
    server.close()


def create(server: Server, model: str, input: dict[str, Any], **headers: str) -> httpx.Response:
    return server.http.post(f"/v1/models/{model}/predictions", json={"input": input}, headers=headers)


# --- the token (#11 item 9) -------------------------------------------------------


def test_a_required_token_is_compared_exactly(served: Server) -> None:
    assert served.http.get("/v1/predictions").status_code == 200
    for header in ("Bearer r8_required_", "Bearer r8_require", "Bearer R8_REQUIRED", "Basic r8_required", ""):
        answer = httpx.get(f"{served.base}/v1/predictions", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.json()["title"] == "Unauthenticated"


def test_output_files_need_no_token(served: Server) -> None:
    done = create(served, "relay/image-demo", {"prompt": "f", "width": 64, "height": 64, "boot_delay": 0,
                                               "step_delay": 0}, Prefer="wait=5").json()
    path = done["output"][0].removeprefix("https://files.example/emulator")
    assert httpx.get(served.base + path).content.startswith(b"\x89PNG")


def test_the_token_is_derived_from_the_secret_key() -> None:
    assert token_from_secret("a" * 32) == token_from_secret("a" * 32)
    assert token_from_secret("a" * 32) != token_from_secret("b" * 32)
    assert "a" * 32 not in token_from_secret("a" * 32)


def test_relay_talks_to_its_embedded_emulator_with_the_derived_token_only(tmp_path: Path) -> None:
    from relay import create_app

    secret = "k" * 40
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": secret})
    client = app.test_client()
    loopback = {"REMOTE_ADDR": "127.0.0.1"}
    # A loopback peer (everyone, behind a reverse proxy on this machine) with a made-up token: refused.
    for token in ("test", "relay-emulator", token_from_secret("another key")):
        answer = client.get("/emulator/v1/predictions", environ_base=loopback,
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token
    secret_answer = client.get("/emulator/v1/webhooks/default/secret", environ_base=loopback,
                               headers={"Authorization": "Bearer test"})
    assert secret_answer.status_code == 401
    # The app's own token works: Relay's upstream client is configured with it.
    own = client.get("/emulator/v1/predictions", environ_base=loopback,
                     headers={"Authorization": f"Bearer {token_from_secret(secret)}"})
    assert own.status_code == 200
    assert app.extensions["relay"].upstream._token == token_from_secret(secret)


# --- its own URLs (#11 item 20) ----------------------------------------------------


def test_file_urls_never_come_from_the_host_header(served: Server) -> None:
    done = create(served, "relay/image-demo", {"prompt": "h", "width": 64, "height": 64, "boot_delay": 0,
                                               "step_delay": 0}, Prefer="wait=5", Host="evil.example").json()
    assert done["output"] == [f"https://files.example/emulator/files/{done['id']}/output.png"]


def test_without_files_url_outputs_are_root_relative_paths(tmp_path: Path) -> None:
    server = Server(create_emulator(tmp_path / "rel", token=TOKEN))
    try:
        done = create(server, "relay/audio-demo", {"prompt": "a", "boot_delay": 0, "step_delay": 0},
                      Prefer="wait=5", Host="[::1]:9999").json()
        assert done["output"] == f"/files/{done['id']}/output.wav"
    finally:
        server.close()


def test_embedded_emulator_images_are_same_origin_paths_or_the_public_url(tmp_path: Path) -> None:
    from relay import create_app

    for public, expected in ((None, "/emulator/files/"), ("https://relay.example", "https://relay.example/emulator/files/")):
        config: dict[str, Any] = {"INSTANCE_PATH": str(tmp_path / str(bool(public))), "SECRET_KEY": "s" * 40}
        if public:
            config["RELAY_PUBLIC_URL"] = public
        app = create_app(config)
        answer = app.test_client().post(
            "/emulator/v1/models/relay/image-demo/predictions",
            json={"input": {"prompt": "p", "width": 64, "height": 64, "boot_delay": 0, "step_delay": 0}},
            headers={"Authorization": f"Bearer {token_from_secret('s' * 40)}", "Prefer": "wait=5",
                     "Host": "[::1]:8000"},
            environ_base={"REMOTE_ADDR": "::1"})
        output = answer.get_json()["output"]
        assert output[0].startswith(expected) and "[::1]" not in output[0]


# --- expiry (#11 item 19) ----------------------------------------------------------


def test_old_predictions_lose_their_data_then_disappear(tmp_path: Path) -> None:
    state = tmp_path / "exp"
    server = Server(create_emulator(state, token=TOKEN, data_ttl=0.5, keep_for=1.5))
    try:
        done = create(server, "relay/image-demo", {"prompt": "old", "width": 64, "height": 64, "boot_delay": 0,
                                                   "step_delay": 0}, Prefer="wait=5").json()
        assert done["status"] == "succeeded" and done["data_removed"] is False
        assert server.http.get(f"/files/{done['id']}/output.png").status_code == 200

        def removed() -> dict[str, Any] | None:
            body: dict[str, Any] = server.http.get(f"/v1/predictions/{done['id']}").json()
            return body if body.get("data_removed") else None

        body = wait_until(removed)
        assert body["status"] == "succeeded" and body["input"] == {} and body["output"] is None
        assert body["completed_at"] == done["completed_at"] and body["metrics"] == done["metrics"]
        assert server.http.get(f"/files/{done['id']}/output.png").status_code == 404
        # On disk the record is now a tombstone without the input.
        stored = (state / "predictions" / f"{done['id']}.json").read_text()
        assert "old" not in stored
        wait_until(lambda: server.http.get(f"/v1/predictions/{done['id']}").status_code == 404)
        assert not (state / "predictions" / f"{done['id']}.json").exists()
    finally:
        server.close()


def test_a_sweep_removes_predictions_nobody_asks_about(tmp_path: Path) -> None:
    state = tmp_path / "sweep"
    app = create_emulator(state, token=TOKEN, data_ttl=0.2, keep_for=0.2)
    server = Server(app)
    try:
        ids = [create(server, "relay/json-demo", {"text": str(i), "boot_delay": 0, "delay": 0}).json()["id"]
               for i in range(5)]
        upload = server.http.post("/v1/files", files={"content": ("a.txt", b"hi", "text/plain")}).json()
        emulator = app.extensions["relay_emulator"]
        emulator.expiry.sweep(time.time() + 100_000)  # a day later than the uploads' expiry
        assert os.listdir(state / "predictions") == []
        assert all(server.http.get(f"/v1/predictions/{i}").status_code == 404 for i in ids)
        assert server.http.get(upload["urls"]["get"]).status_code == 404
    finally:
        server.close()


def test_running_predictions_are_never_expired(tmp_path: Path) -> None:
    app = create_emulator(tmp_path / "run", token=TOKEN, data_ttl=0, keep_for=0)
    server = Server(app)
    try:
        running = create(server, "relay/image-demo", {"prompt": "r", "boot_delay": 30}).json()
        app.extensions["relay_emulator"].expiry.sweep(time.time() + 10)
        assert server.http.get(f"/v1/predictions/{running['id']}").json()["status"] == "starting"
    finally:
        server.close()


# --- Prefer: wait -------------------------------------------------------------------


def test_prefer_wait_answers_unfinished_predictions_as_starting(served: Server) -> None:
    started = time.monotonic()
    answer = create(served, "relay/image-demo", {"prompt": "w", "boot_delay": 0, "step_delay": 1}, Prefer="wait=1")
    assert 0.9 <= time.monotonic() - started
    assert answer.status_code == 201 and answer.headers["Preference-Applied"] == "wait=1"
    body = answer.json()
    # The window ran out: "starting", so both official clients go on polling.
    assert body["status"] == "starting" and body["output"] is None and body["logs"] == ""
    assert served.http.get(f"/v1/predictions/{body['id']}").json()["status"] == "processing"


def test_prefer_wait_is_capped_at_60(served: Server) -> None:
    answer = create(served, "relay/json-demo", {"text": "x", "boot_delay": 0, "delay": 0}, Prefer="wait=600")
    assert answer.headers["Preference-Applied"] == "wait=60" and answer.json()["status"] == "succeeded"
    assert "Preference-Applied" not in create(served, "relay/json-demo", {"text": "x"}).headers


def test_caption_demo_reads_data_uris_and_fails_on_unreadable_urls(served: Server) -> None:
    gif = "data:image/gif;base64,R0lGODlhAgADAIAAAP///wAAACwAAAAAAgADAAACAoRRADs="
    ok = create(served, "relay/caption-demo", {"image": gif, "style": "detailed", "boot_delay": 0, "delay": 0},
                Prefer="wait=5").json()
    assert ok["status"] == "succeeded" and ok["output"].startswith("A 2×3 GIF image, 35 bytes")
    bad = create(served, "relay/caption-demo", {"image": "https://elsewhere.example/x.png", "boot_delay": 0,
                                                "delay": 0}, Prefer="wait=5").json()
    assert bad["status"] == "failed" and "Could not read" in bad["error"]


