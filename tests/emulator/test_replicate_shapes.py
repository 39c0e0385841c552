"""Every field path and type of Replicate's recorded answers is in the emulator's answer to the same call.

The recorded answers are in fixtures/replicate_recorded.json, each with its
source (mostly the public replicate/replicate-python cassettes). A recorded
`null` only asks for the field to be there; any other value asks for the same
JSON type. Lists are compared through their first item.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from relay.emulator import create_emulator

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "replicate_recorded.json").read_text())
RECORDED, QUOTED, DOCUMENTED = FIXTURES["recorded"], FIXTURES["quoted"], FIXTURES["documented"]
TOKEN = "r8_shape_test"
# Fields Replicate's own API schema marks nullable: a model without a GitHub repository has null there.
NULLABLE = {"cover_image_url", "github_url", "license_url", "paper_url"}
# Model-specific: a prediction's input and a model's Output schema differ per model, so only
# their presence and type are compared (the image model's Output is compared whole below).
MODEL_SPECIFIC = {"input", "Output"}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def missing(recorded: Any, actual: Any, path: str = "") -> list[str]:
    """Paths of `recorded` that `actual` lacks or has with another type."""
    if recorded is None or (path.rsplit(".", 1)[-1] in NULLABLE and actual is None):
        return []
    if json_type(recorded) != json_type(actual):
        return [f"{path or '(root)'}: {json_type(recorded)} recorded, {json_type(actual)} here"]
    problems: list[str] = []
    if path.rsplit(".", 1)[-1] in MODEL_SPECIFIC:
        return problems
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            where = f"{path}.{key}" if path else key
            if key not in actual:
                problems.append(f"{where}: missing")
            else:
                problems += missing(value, actual[key], where)
    elif isinstance(recorded, list) and recorded and actual:
        problems += missing(recorded[0], actual[0], f"{path}[0]")
    return problems


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    app = create_emulator(tmp_path_factory.mktemp("shapes"), faults_enabled=True, token=TOKEN)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions["relay_emulator"].files_url = base
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        yield client
    server.shutdown()
    server.server_close()


def image(http: httpx.Client, wait: bool = False, **input: Any) -> httpx.Response:
    headers = {"Prefer": "wait=10"} if wait else {}
    return http.post("/v1/models/relay/image-demo/predictions",
                     json={"input": {"prompt": "shape", "width": 64, "height": 64, **input}}, headers=headers)


def check(name: str, answer: httpx.Response, table: dict[str, Any] = RECORDED, status: int | None = None) -> None:
    entry = table[name]
    assert answer.status_code == (status or entry["status"]), answer.text
    assert missing(entry["body"], answer.json()) == [], entry["source"]


def test_create_by_model(http: httpx.Client) -> None:
    check("create_by_model", image(http, boot_delay=30))


def test_create_by_version(http: httpx.Client) -> None:
    version = http.get("/v1/models/relay/image-demo").json()["latest_version"]["id"]
    check("create_by_version", http.post("/v1/predictions",
                                         json={"version": version, "input": {"prompt": "v", "boot_delay": 30}}))


def test_create_with_prefer_wait_and_get(http: httpx.Client) -> None:
    waited = image(http, wait=True, boot_delay=0, step_delay=0.01)
    assert waited.headers["Preference-Applied"] == "wait=10"
    check("get_succeeded", waited, status=201)
    check("get_succeeded", http.get(f"/v1/predictions/{waited.json()['id']}"))


def test_cancel(http: httpx.Client) -> None:
    running = image(http, boot_delay=0, step_delay=5).json()
    check("cancel", http.post(f"/v1/predictions/{running['id']}/cancel"))


def test_list(http: httpx.Client) -> None:
    image(http, boot_delay=0, step_delay=0)
    page = http.get("/v1/predictions").json()
    body = DOCUMENTED["list"]["body"]
    assert missing({**body, "next": None}, page) == []  # one page here: next is null


def test_model_and_version(http: httpx.Client) -> None:
    for name in ("image-demo", "text-demo", "audio-demo", "json-demo", "caption-demo"):
        model = http.get(f"/v1/models/relay/{name}")
        check("model", model)
        version = http.get(f"/v1/models/relay/{name}/versions/{model.json()['latest_version']['id']}")
        assert version.status_code == 200
        assert missing(RECORDED["model"]["body"]["latest_version"], version.json()) == []
    recorded_output = RECORDED["model"]["body"]["latest_version"]["openapi_schema"]["components"]["schemas"]["Output"]
    image = http.get("/v1/models/relay/image-demo").json()["latest_version"]["openapi_schema"]
    assert image["components"]["schemas"]["Output"] == recorded_output


def test_cog_input_properties_plain_file_and_enum(http: httpx.Client) -> None:
    recorded = RECORDED["cog_input_properties"]
    image_schema = http.get("/v1/models/relay/image-demo").json()["latest_version"]["openapi_schema"]
    caption_schema = http.get("/v1/models/relay/caption-demo").json()["latest_version"]["openapi_schema"]
    image_inputs = image_schema["components"]["schemas"]["Input"]["properties"]
    caption = caption_schema["components"]["schemas"]
    assert set(image_inputs["num_outputs"]) == set(recorded["plain"])
    assert set(caption["Input"]["properties"]["image"]) == set(recorded["file"])
    assert caption["Input"]["properties"]["image"]["format"] == "uri"
    style = caption["Input"]["properties"]["style"]
    assert set(style) == set(recorded["enum"])
    assert style["allOf"] == [{"$ref": "#/components/schemas/style"}]
    assert set(caption["style"]) == set(recorded["enum_schema"]) and caption["style"]["enum"] == ["short", "detailed"]
    orders = [p["x-order"] for p in image_inputs.values()]
    assert orders == list(range(len(orders)))


def test_webhook_secret(http: httpx.Client) -> None:
    check("webhook_secret", http.get("/v1/webhooks/default/secret"), DOCUMENTED)


def test_file_upload(http: httpx.Client) -> None:
    answer = http.post("/v1/files", files={"content": ("test_file.txt", b"", "text/plain")})
    check("file_upload", answer)
    body = answer.json()
    assert body["size"] == 0 and body["checksums"] == RECORDED["file_upload"]["body"]["checksums"]
    assert body["etag"] == RECORDED["file_upload"]["body"]["etag"]
    assert http.get(body["urls"]["get"]).json()["id"] == body["id"]


def test_401_bad_token(http: httpx.Client) -> None:
    answer = http.post("/v1/predictions", json={"input": {}}, headers={"Authorization": "Bearer r8_wrong"})
    check("unauthenticated", answer)
    assert answer.json() == RECORDED["unauthenticated"]["body"]
    assert answer.headers["content-type"] == RECORDED["unauthenticated"]["content_type"]
    assert answer.reason_phrase == "Unauthorized"


def test_404(http: httpx.Client) -> None:
    answer = http.get("/v1/predictions/nosuchprediction")
    check("not_found", answer, DOCUMENTED)
    assert answer.reason_phrase == "Not Found"


def test_422_unknown_top_level_key_is_answered_word_for_word(http: httpx.Client) -> None:
    answer = http.post("/v1/predictions", json={"model": "relay/image-demo", "input": {}})
    assert answer.status_code == 422 and answer.reason_phrase == "Unprocessable Entity"
    assert answer.json() == QUOTED["unknown_top_level_key"]["body"]
    typo = http.post("/v1/models/relay/image-demo/predictions",
                     json={"input": {"prompt": "p"}, "webhook_event_filter": ["start"]})
    assert typo.status_code == 422
    assert typo.json()["invalid_fields"] == [{"type": "additional_property_not_allowed", "field": "",
                                             "description": "Additional property webhook_event_filter is not allowed"}]


def test_422_enum_and_bad_version(http: httpx.Client) -> None:
    answer = http.post("/v1/models/relay/caption-demo/predictions",
                       json={"input": {"image": "data:,x", "style": "long"}})
    check("bad_enum_input", answer, QUOTED)
    field = answer.json()["invalid_fields"][0]
    assert field == {"type": "enum", "field": "input.style",
                     "description": 'style must be one of the following: "short", "detailed"'}
    assert answer.json()["detail"] == f"- input.style: {field['description']}\n"
    bad = http.post("/v1/predictions", json={"version": "0" * 64, "input": {}})
    assert bad.status_code == 422 and bad.json() == QUOTED["bad_version"]["body"]


def test_429_has_an_integer_retry_after_and_the_header(http: httpx.Client) -> None:
    http.post("/_emulator/faults", json={"status": 429, "count": 1, "retry_after": 2.5}).raise_for_status()
    answer = http.get("/v1/predictions")
    check("throttled", answer, DOCUMENTED)
    assert answer.json()["retry_after"] == 3 and answer.headers["Retry-After"] == "3"
    assert answer.reason_phrase == "Too Many Requests"


def test_reason_phrases_are_replicates(http: httpx.Client) -> None:
    assert image(http, boot_delay=30).reason_phrase == "Created"
    assert http.get("/v1/models/relay/image-demo").reason_phrase == "OK"
