"""The official Python client (`replicate` 1.0.7), unmodified, against the standalone emulator.

The emulator runs as its own process with TLS (its self-signed certificate
trusted through SSL_CERT_FILE, as a user would trust a corporate CA) and a
required token, so every call below goes over HTTPS with real auth, as it
would to api.replicate.com.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from relay.emulator.png import render_image
from tests.emulator.standalone import TOKEN, Standalone

FAST = {"boot_delay": 0, "step_delay": 0.01}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    served = Standalone(tmp_path_factory.mktemp("standalone"))
    yield served
    served.stop()


@pytest.fixture
def client(emulator: Standalone, monkeypatch: pytest.MonkeyPatch) -> Iterator[replicate.Client]:
    assert emulator.cert is not None
    monkeypatch.setenv("SSL_CERT_FILE", emulator.cert)  # how a user trusts a private CA
    made = replicate.Client(api_token=TOKEN, base_url=emulator.url)
    yield made
    made._client.close()  # the client has no close(); its pooled connections would leak


def test_create_by_model_and_by_version_then_get_reload_wait(client: replicate.Client) -> None:
    by_model = client.models.predictions.create(model="relay/image-demo",
                                                input={"prompt": "a", **FAST, "boot_delay": 0.5})
    assert by_model.status == "starting" and by_model.logs == "" and by_model.output is None
    model = client.models.get("relay/image-demo")
    assert model.latest_version is not None
    by_version = client.predictions.create(version=model.latest_version.id, input={"prompt": "b", **FAST})
    assert by_version.version == model.latest_version.id and by_version.model == "relay/image-demo"
    assert client.predictions.get(by_version.id).id == by_version.id
    by_version.wait()
    assert by_version.status == "succeeded"
    by_model.reload()
    by_model.wait()
    assert by_model.status == "succeeded" and isinstance(by_model.output, list)
    assert by_model.output[0].startswith("https://127.0.0.1:")


def test_cancel(client: replicate.Client) -> None:
    p = client.models.predictions.create(model="relay/image-demo", input={"prompt": "c", "boot_delay": 30})
    p.cancel()
    assert client.predictions.get(p.id).status == "canceled"


def test_list_pages_with_a_next_cursor(client: replicate.Client, emulator: Standalone) -> None:
    with emulator.http() as http:
        for i in range(101):
            assert http.post("/v1/models/relay/json-demo/predictions",
                             json={"input": {"text": f"t{i}", "boot_delay": 0, "delay": 0}}).status_code == 201
    first = client.predictions.list()
    assert len(first.results) == 100 and first.next is not None
    second = client.predictions.list(first.next)
    seen = [p.id for p in first.results] + [p.id for p in second.results]
    assert len(seen) == len(set(seen)) >= 101  # no prediction on two pages
    everything = [p.id for page in replicate.paginate(client.predictions.list) for p in page]
    assert set(seen) <= set(everything)


def test_run_wraps_https_file_outputs_and_several_images(client: replicate.Client) -> None:
    output = client.run("relay/image-demo", input={"prompt": "two", "num_outputs": 2, "width": 64, "height": 64,
                                                   **FAST})
    assert isinstance(output, list) and len(output) == 2
    assert all(isinstance(item, FileOutput) for item in output)
    first, second = (item.read() for item in output)
    assert first.startswith(b"\x89PNG") and second.startswith(b"\x89PNG") and first != second
    seed = int(client.predictions.list().results[0].logs.split("Using seed: ")[1].split()[0])  # type: ignore[union-attr]
    assert first == render_image("two", seed, 64, 64)


def test_run_with_a_file_input_uploads_it_and_the_model_reads_it(client: replicate.Client) -> None:
    png = render_image("input", 1, 80, 48)
    caption = client.run("relay/caption-demo", input={"image": io.BytesIO(png), "boot_delay": 0, "delay": 0})
    assert caption == "A 80×48 PNG image"
    uploads = client.files.list()
    assert any(f.size == len(png) for f in uploads)


def test_run_audio_gives_a_real_wav(client: replicate.Client) -> None:
    output = client.run("relay/audio-demo", input={"prompt": "tune", "duration": 0.5, **FAST})
    assert isinstance(output, FileOutput)
    with wave.open(io.BytesIO(output.read())) as audio:
        assert audio.getnchannels() == 1 and audio.getframerate() == 16000
        assert audio.getnframes() == 8000
        samples = struct.unpack("<100h", audio.readframes(100))
    assert max(samples) > 0 > min(samples)  # not silence


def test_run_json_object(client: replicate.Client) -> None:
    output = client.run("relay/json-demo", input={"text": "Lovely quiet harbour", "boot_delay": 0, "delay": 0})
    assert isinstance(output, dict) and output["words"] == 3 and "harbour" in output["keywords"]


def test_run_with_a_short_wait_keeps_polling_to_the_end(client: replicate.Client) -> None:
    # The prediction takes ~2 s; the wait window is 1 s: the client must poll on and return the output.
    output = client.run("relay/image-demo", input={"prompt": "slow", "steps": 20, "step_delay": 0.1,
                                                   "boot_delay": 0, "width": 64, "height": 64}, wait=1)
    assert isinstance(output, list) and isinstance(output[0], FileOutput)
    assert output[0].read().startswith(b"\x89PNG")


def test_run_with_a_long_enough_wait_returns_at_once(client: replicate.Client) -> None:
    output = client.run("relay/json-demo", input={"text": "x", "boot_delay": 0, "delay": 0.1}, wait=10)
    assert isinstance(output, dict)


def test_run_raises_model_error_on_failure(client: replicate.Client) -> None:
    with pytest.raises(ModelError):
        client.run("relay/image-demo", input={"prompt": "f", "fail_at_step": 2, **FAST})


def test_stream_text(client: replicate.Client) -> None:
    events = list(client.stream("relay/text-demo", input={"prompt": "s", "max_tokens": 6, "token_delay": 0.01,
                                                          "boot_delay": 0}))
    text = "".join(str(e) for e in events if e.event.value == "output")
    assert len(text.split()) == 6
    assert events[-1].event.value == "done"


def test_run_streaming_model_yields_tokens(client: replicate.Client) -> None:
    tokens = list(client.run("relay/text-demo", input={"prompt": "r", "max_tokens": 4, "token_delay": 0,
                                                       "boot_delay": 0}))
    assert len(tokens) == 4


def test_models_get_and_versions_get(client: replicate.Client) -> None:
    for name in ("image-demo", "text-demo", "audio-demo", "json-demo", "caption-demo"):
        model = client.models.get(f"relay/{name}")
        assert model.owner == "relay" and model.name == name and model.description
        assert model.default_example is not None
        version = model.versions.get(model.latest_version.id)  # type: ignore[union-attr]
        schema = version.openapi_schema
        assert "/predictions" in schema["paths"]
        assert schema["components"]["schemas"]["Input"]["properties"]


def test_bad_token_is_401(emulator: Standalone, monkeypatch: pytest.MonkeyPatch) -> None:
    assert emulator.cert is not None
    monkeypatch.setenv("SSL_CERT_FILE", emulator.cert)
    stranger = replicate.Client(api_token="r8_not_the_token", base_url=emulator.url)
    with pytest.raises(ReplicateError) as raised:
        stranger.predictions.list()
    stranger._client.close()
    assert raised.value.status == 401


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], str]] = []
        self.done = threading.Event()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(as_text=True)
        self.deliveries.append((dict(request.headers), body))
        if json.loads(body)["status"] == "succeeded":
            self.done.set()
        return Response("ok")(environ, start_response)


def test_webhook_secret_and_validate_a_real_delivery(client: replicate.Client) -> None:
    receiver = Receiver()
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        secret = client.webhooks.default.secret()
        assert secret.key.startswith("whsec_")
        client.models.predictions.create(model="relay/json-demo", input={"text": "w", "boot_delay": 0, "delay": 0},
                                         webhook=f"http://127.0.0.1:{server.server_port}/hook",
                                         webhook_events_filter=["completed"])
        assert receiver.done.wait(15)
        headers, body = receiver.deliveries[-1]
        lowered = {k.lower(): v for k, v in headers.items()}
        client.webhooks.validate(headers=lowered, body=body, secret=secret)  # raises if the signature is wrong
        request = httpx.Request("POST", "http://x/hook", headers=lowered, content=body.encode())
        client.webhooks.validate(request=request, secret=secret)
        forged = httpx.Request("POST", "http://x/hook", headers=lowered, content=body.replace("w", "v").encode())
        with pytest.raises(Exception, match=r"(?i)signature"):
            client.webhooks.validate(request=forged, secret=secret)
    finally:
        server.shutdown()
        server.server_close()


def test_async_variants(client: replicate.Client) -> None:
    async def scenario() -> None:
        try:
            await steps()
        finally:
            await client._async_client.aclose()

    async def steps() -> None:
        created = await client.models.predictions.async_create(model="relay/json-demo",
                                                               input={"text": "a", "boot_delay": 0, "delay": 0})
        await created.async_wait()
        assert created.status == "succeeded"
        got = await client.predictions.async_get(created.id)
        assert got.output == created.output
        model = await client.models.async_get("relay/image-demo")
        assert model.latest_version is not None
        version = await model.versions.async_get(model.latest_version.id)
        assert version.id == model.latest_version.id
        canceled = await client.predictions.async_create(version=version.id, input={"prompt": "c", "boot_delay": 30})
        await canceled.async_cancel()
        assert (await client.predictions.async_get(canceled.id)).status == "canceled"
        output = await client.async_run("relay/image-demo", input={"prompt": "a", "width": 64, "height": 64, **FAST},
                                        wait=1)
        assert isinstance(output, list) and (await output[0].aread()).startswith(b"\x89PNG")
        streamed = [str(e) async for e in await client.async_stream(
            "relay/text-demo", input={"prompt": "a", "max_tokens": 3, "token_delay": 0, "boot_delay": 0})
            if e.event.value == "output"]
        assert len(streamed) == 3
        secret = await client.webhooks.default.async_secret()
        assert secret.key.startswith("whsec_")
        page = await client.predictions.async_list()
        assert page.results

    asyncio.run(scenario())


def test_output_files_need_no_token_but_the_api_does(emulator: Standalone) -> None:
    with emulator.http() as http:
        created = http.post("/v1/models/relay/image-demo/predictions",
                            json={"input": {"prompt": "o", "width": 64, "height": 64, **FAST}},
                            headers={"Prefer": "wait=5"}).json()
    assert created["status"] == "succeeded" and created["output"][0].startswith(emulator.url + "/files/")
    with emulator.http(token=False) as anonymous:
        assert anonymous.get(created["output"][0]).content.startswith(b"\x89PNG")
        assert anonymous.get(f"/v1/predictions/{created['id']}").status_code == 401


def test_standalone_without_token_accepts_any(tmp_path: Path) -> None:
    served = Standalone(tmp_path / "open", tls=False, token=None)
    try:
        answer = httpx.get(f"{served.url}/v1/predictions", headers={"Authorization": "Bearer anything"})
        assert answer.status_code == 200
        assert httpx.get(f"{served.url}/v1/predictions").status_code == 401  # still needs *a* token
    finally:
        served.stop()
