"""Models described from their schemas, input checked before Replicate is called, pins enforced.

Relay runs under gunicorn on the embedded emulator (its demo models, reached with the
real `replicate` client), or on a stand-in serving schemas recorded from Replicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from relay.emulator import token_from_secret
from testbed import TEST_SECRET, RelayServer
from testbed.recorded import RecordedReplicate

Start = Callable[..., RelayServer]
CREATES = ("POST /v1/models/{owner}/{name}/predictions", "POST /v1/predictions")


def creates_upstream(client: httpx.Client) -> int:
    stats = client.get("/emulator/_emulator/stats").json()
    return sum(int(stats.get(route, 0)) for route in CREATES)


@pytest.fixture
def pinned(start_server: Start) -> Iterator[httpx.Client]:
    server = start_server({"RELAY_ALLOWED_MODELS": (
        "relay/image-demo?boot_delay=0&step_delay=0.01&steps=3#edit=prompt+seed+width,"
        "relay/text-demo,relay/json-demo,relay/audio-demo,relay/caption-demo")})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def test_models_list_every_allowed_model_from_its_schema(api: httpx.Client) -> None:
    models = {m["name"]: m for m in api.get("/api/models").json()["models"]}
    assert {"relay/image-demo", "relay/text-demo"} <= set(models)
    image = models["relay/image-demo"]
    assert set(image) == {"name", "title", "description", "kind", "inputs", "output", "default_input", "editable"}
    assert image["title"] == "Image Demo" and image["description"]
    steps = image["inputs"]["properties"]["steps"]
    assert (steps["type"], steps["minimum"], steps["maximum"]) == ("integer", 1, 500)
    assert "prompt" in image["inputs"]["required"] and image["output"]["items"]["format"] == "uri"
    assert models["relay/text-demo"]["kind"] == "text"
    for model in models.values():
        assert model["kind"] in ("image", "video", "audio", "text", "json", "file")
        assert set(model["default_input"]) <= set(model["editable"])


def test_the_default_input_of_every_model_is_accepted(api: httpx.Client) -> None:
    for model in api.get("/api/models").json()["models"]:
        answer = api.post("/api/predictions", json={"model": model["name"], "input": model["default_input"]})
        assert answer.status_code == 201, (model["name"], answer.text)


@pytest.mark.parametrize(("model_input", "field", "words"), [
    ({"prompt": "x", "steps": 2.5}, "steps", "whole number"),
    ({"prompt": "x", "steps": True}, "steps", "whole number"),
    ({"prompt": "x", "steps": 501}, "steps", "Steps must be between 1 and 500."),
    ({"prompt": "x", "colour": "red"}, "colour", "no input named"),
    ({"steps": 5}, "prompt", "Prompt is required."),
    ({"prompt": ["a list"]}, "prompt", "must be text"),
])
def test_bad_input_is_400_naming_the_field_and_never_reaches_replicate(
        api: httpx.Client, model_input: dict[str, Any], field: str, words: str) -> None:
    before = creates_upstream(api)
    answer = api.post("/api/predictions", json={"model": "relay/image-demo", "input": model_input})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["success"], body["code"], body["field"]) == (False, "invalid_input", field)
    assert words in body["error"]
    assert creates_upstream(api) == before


def test_choices_and_file_inputs_are_checked_before_replicate(pinned: httpx.Client) -> None:
    caption = next(m for m in pinned.get("/api/models").json()["models"] if m["name"] == "relay/caption-demo")
    choice = next(n for n, p in caption["inputs"]["properties"].items() if "enum" in p)
    uri = next(n for n, p in caption["inputs"]["properties"].items() if p.get("format") == "uri")
    before = creates_upstream(pinned)
    for bad, field in [({choice: "no-such-choice"}, choice), ({uri: "/etc/passwd"}, uri),
                       ({uri: "file:///etc/passwd"}, uri)]:
        sent = {**caption["default_input"], **bad}
        answer = pinned.post("/api/predictions", json={"model": "relay/caption-demo", "input": sent})
        assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (400, "invalid_input", field)
    assert creates_upstream(pinned) == before


def test_pinned_inputs_reach_replicate_with_the_pinned_value(pinned: httpx.Client) -> None:
    answer = pinned.post("/api/predictions", json={"model": "relay/image-demo", "input": {
        "prompt": "a kite", "steps": 400, "boot_delay": 30, "width": 128.0}})
    assert answer.status_code == 201, answer.text
    upstream = pinned.get(f"/emulator/v1/predictions/{answer.json()['id']}",
                          headers={"Authorization": f"Bearer {token_from_secret(TEST_SECRET)}"}).json()
    assert upstream["input"] == {"prompt": "a kite", "steps": 3, "boot_delay": 0, "step_delay": 0.01, "width": 128}
    assert type(upstream["input"]["width"]) is int


def test_inputs_outside_edit_are_refused_and_editable_lists_only_them(pinned: httpx.Client) -> None:
    image = next(m for m in pinned.get("/api/models").json()["models"] if m["name"] == "relay/image-demo")
    assert image["editable"] == ["prompt", "seed", "width"]
    assert set(image["default_input"]) == {"prompt", "width"}
    before = creates_upstream(pinned)
    answer = pinned.post("/api/predictions", json={"model": "relay/image-demo", "input": {
        "prompt": "x", "height": 256}})
    assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (400, "invalid_input", "height")
    assert creates_upstream(pinned) == before


@pytest.fixture
def recorded_replicate() -> Iterator[RecordedReplicate]:
    server = RecordedReplicate(["stability-ai__sdxl", "meta__llama-2-70b-chat",
                                "catio-apps__controlnet-interior-design"]).start()
    yield server
    server.stop()


def test_real_model_schemas_recorded_from_replicate(start_server: Start,
                                                    recorded_replicate: RecordedReplicate) -> None:
    server = start_server({
        "REPLICATE_API_TOKEN": "r8_recorded", "REPLICATE_BASE_URL": recorded_replicate.url,
        "RELAY_ALLOWED_MODELS": "stability-ai/sdxl?num_outputs=1&disable_safety_checker=false,"
                                "meta/llama-2-70b-chat,catio-apps/controlnet-interior-design"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
        assert {n: m["kind"] for n, m in models.items()} == {
            "stability-ai/sdxl": "image", "meta/llama-2-70b-chat": "text",
            "catio-apps/controlnet-interior-design": "image"}
        assert models["stability-ai/sdxl"]["inputs"]["properties"]["refine"]["enum"] == [
            "no_refiner", "expert_ensemble_refiner", "base_image_refiner"]
        assert "num_outputs" not in models["stability-ai/sdxl"]["editable"]

        answer = client.post("/api/predictions", json={"model": "stability-ai/sdxl", "input": {
            "prompt": "a cat", "scheduler": "FAST"}})
        assert (answer.status_code, answer.json()["field"]) == (400, "scheduler")
        answer = client.post("/api/predictions", json={"model": "meta/llama-2-70b-chat", "input": {
            "prompt": "hi", "max_new_tokens": 0}})
        assert (answer.status_code, answer.json()["field"]) == (400, "max_new_tokens")
        assert recorded_replicate.count("POST") == 0

        answer = client.post("/api/predictions", json={"model": "stability-ai/sdxl", "input": {
            "prompt": "a cat", "num_outputs": 4, "num_inference_steps": 30.0}})
        assert answer.status_code == 201, answer.text
        assert recorded_replicate.created[-1]["input"] == {
            "prompt": "a cat", "num_outputs": 1, "disable_safety_checker": False, "num_inference_steps": 30}
