"""Malformed requests get a clear error in the contract's shape, never a 500 or a traceback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from testbed import TEST_SECRET
from testbed.checks import assert_error

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", "invalid_request"),
    (b"", "invalid_request"),
    (b"[1, 2]", "invalid_request"),
    (b'"just a string"', "invalid_request"),
    (b"{}", "invalid_request"),
    (b'{"input": {}}', "invalid_request"),
    (b'{"model": "relay/image-demo"}', "invalid_request"),
    (b'{"model": "relay/image-demo", "input": "a cat"}', "invalid_request"),
    (b'{"model": "relay/image-demo", "input": null}', "invalid_request"),
    (b'{"model": 7, "input": {}}', "invalid_request"),
    (b'{"model": "no-slash", "input": {}}', "invalid_request"),
    (b'{"model": "relay/image-demo", "version": "' + b"a" * 64 + b'", "input": {}}', "invalid_request"),
    (b'{"version": "short", "input": {}}', "invalid_request"),
    (b'{"version": ["x"], "input": {}}', "invalid_request"),
    (b'{"model": "relay/image-demo", "input": {}, "extra": 1}', "invalid_request"),
    (b'{"model": "relay/image-demo", "input": ' + b'{"a": ' * 30 + b"1" + b"}" * 30 + b"}", "invalid_request"),
    (b'{"model": "relay/image-demo", "input": {"prompt": "' + b"x" * 30000 + b'"}}', "invalid_request"),
    (b"\xff\xfe\x00", "invalid_request"),
    (b"[" * 100000, "payload_too_large"),
])
def test_malformed_create_bodies(client: httpx.Client, body: bytes, code: str) -> None:
    answer = client.post("/api/predictions", content=body, headers=JSON)
    assert_error(answer, 413 if code == "payload_too_large" else 400, code)


def test_deeply_nested_json_is_refused_not_crashing(client: httpx.Client) -> None:
    body = b"[" * 20000 + b"]" * 20000
    assert_error(client.post("/api/predictions", content=body, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("model", ["evil/model", "relay/IMAGE-demo-x", "evil/model:" + "b" * 64])
def test_models_outside_the_allow_list_are_refused(client: httpx.Client, model: str) -> None:
    key = "version" if ":" in model else "model"
    answer = client.post("/api/predictions", json={key: model, "input": {"prompt": "x"}})
    assert_error(answer, 403, "model_not_allowed")


def test_version_id_not_in_the_allow_list_is_refused(client: httpx.Client) -> None:
    answer = client.post("/api/predictions", json={"version": "c" * 64, "input": {"prompt": "x"}})
    assert_error(answer, 403, "model_not_allowed")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_body_that_is_not_declared_json_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = client.post("/api/predictions", content=b'{"model": "relay/image-demo"}', headers=headers)
    assert_error(answer, 415, "unsupported_media_type")


def test_huge_body_is_413(client: httpx.Client) -> None:
    answer = client.post("/api/predictions", content=b" " * (65 * 1024) + b"{}", headers=JSON)
    assert_error(answer, 413, "payload_too_large")


def test_bad_input_is_refused_by_relay_before_replicate_sees_it(client: httpx.Client) -> None:
    # Relay checks the model's schema itself now (docs/models.md): 400 invalid_input naming one field.
    answer = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {"steps": 100000}})
    assert_error(answer, 400, "invalid_input")
    assert answer.json()["field"] in ("prompt", "steps")


def _token(prediction_id: str, salt: str = "relay-stream", key: str = TEST_SECRET) -> str:
    return str(URLSafeTimedSerializer(key, salt=salt).dumps(prediction_id))


# Signed tokens carry a timestamp, so they are built inside the test: a parameter must be the same in every
# xdist worker's collection, and two workers collecting either side of a second boundary would disagree.
_BAD_TOKENS = {"empty": lambda: "", "forged": lambda: "forged", "three-parts": lambda: "a.b.c",
               "wrong-key": lambda: _token("x", key="wrong-key"),
               "cancel-salt": lambda: _token("abc", salt="relay-cancel")}


@pytest.mark.parametrize("kind", sorted(_BAD_TOKENS))
def test_bad_stream_tokens_are_403(client: httpx.Client, kind: str) -> None:
    token = _BAD_TOKENS[kind]()
    assert_error(client.get(f"/api/predictions/abc/events?token={token}"), 403, "forbidden")


def test_token_for_another_prediction_is_403(client: httpx.Client) -> None:
    created = client.post("/api/predictions", json={"model": "relay/image-demo",
                                                    "input": {"prompt": "x", "steps": 2, "step_delay": 0}}).json()
    token = created["stream_url"].split("token=")[1]
    assert_error(client.get(f"/api/predictions/someoneelse/events?token={token}"), 403, "forbidden")
    cancel_token = created["cancel_url"].split("token=")[1]
    assert_error(client.post(f"/api/predictions/{created['id']}/cancel?token={token}"), 403, "forbidden")
    assert_error(client.post(f"/api/predictions/someoneelse/cancel?token={cancel_token}"), 403, "forbidden")


@pytest.mark.parametrize("prediction_id", ["doesnotexist", "..%2F..%2Fetc", "%00", "a" * 300, "é"])
def test_unknown_prediction_with_a_valid_token_is_404(client: httpx.Client, prediction_id: str) -> None:
    from urllib.parse import unquote

    real_id = unquote(prediction_id)
    assert_error(client.get(f"/api/predictions/{prediction_id}/events?token={_token(real_id)}"), 404, "not_found")
    cancel = _token(real_id, salt="relay-cancel")
    assert_error(client.post(f"/api/predictions/{prediction_id}/cancel?token={cancel}"), 404, "not_found")


@pytest.mark.parametrize("query", ["", "watch=", "watch=forged", "watch=" + "&watch=".join(["x"] * 40)])
def test_bad_multiplexed_requests(client: httpx.Client, query: str) -> None:
    answer = client.get(f"/api/events?{query}")
    assert answer.status_code in (400, 403)
    assert_error(answer, answer.status_code, "invalid_request" if answer.status_code == 400 else "forbidden")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/predictions"), ("PUT", "/api/predictions"), ("GET", "/nope"),
    ("DELETE", "/api/models"), ("GET", "/api/prediction"), ("GET", "/api/prediction?id=x"),
])
def test_wrong_routes_and_methods_answer_in_the_contract_shape(client: httpx.Client, method: str, path: str) -> None:
    answer = client.request(method, path)
    assert 400 <= answer.status_code < 500
    body: dict[str, Any] = json.loads(answer.text)
    assert body["success"] is False and body["code"]

