"""A create answer without `model` or `version` (Replicate leaves them out for some models) is no 500."""

from __future__ import annotations

from pathlib import Path

from relay import create_app
from testbed import TEST_SECRET
from testbed.scripted import Answer, scripted_upstream

BARE = {"id": "abc123", "status": "starting", "input": {"prompt": "x"}, "logs": "", "output": None,
        "urls": {"get": "http://127.0.0.1/v1/predictions/abc123"}}


def test_a_create_answer_lacking_model_and_version_is_accepted(tmp_path: Path) -> None:
    done = Answer(200, {**BARE, "status": "succeeded", "output": "ok"})
    # Relay reads the model's schema first: this model has none, so it is offered a plain prompt.
    no_schema = Answer(200, {"owner": "acme", "name": "bare-model", "latest_version": None})
    with scripted_upstream([Answer(201, BARE), done], fixed={"GET /v1/models/acme/bare-model": no_schema}) as fake:
        app = create_app({"SECRET_KEY": TEST_SECRET, "INSTANCE_PATH": str(tmp_path),
                          "REPLICATE_API_TOKEN": "r8_test", "REPLICATE_BASE_URL": fake.url,
                          "RELAY_ALLOWED_MODELS": "acme/bare-model"})
        answer = app.test_client().post("/api/predictions",
                                        json={"model": "acme/bare-model", "input": {"prompt": "x"}})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        assert answer.get_json()["id"] == "abc123"
        calls = [arrival[1:] for arrival in fake.arrivals if arrival[1:] != ("GET", "/v1/models/acme/bare-model")]
    assert calls[0] == ("POST", "/v1/models/acme/bare-model/predictions")
    app.extensions["relay"].shutdown()
