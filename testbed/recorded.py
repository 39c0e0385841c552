"""Model schemas recorded from Replicate (tests/fixtures/schemas), loaded as Relay reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relay.model_schema import ModelSchema, schema_from_model_json

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "schemas"


def recorded_model_json(name: str) -> dict[str, Any]:
    """The recorded `GET /v1/models/{owner}/{name}` body, e.g. for "stability-ai__sdxl"."""
    model: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())["model"]
    return model


def recorded(name: str) -> ModelSchema:
    model = recorded_model_json(name)
    version = model["latest_version"]
    return schema_from_model_json(f"{model['owner']}/{model['name']}", version["openapi_schema"],
                                  version=version["id"], description=model["description"],
                                  example=model["default_example"])


class RecordedReplicate:
    """A stand-in for Replicate's HTTP API on 127.0.0.1 serving recorded models (a test boundary).

    `GET /v1/models/{owner}/{name}` and `.../versions/{id}` answer from the fixtures (or
    from `models`, which a test may change to publish a new version); creates are
    recorded in `created` and answered with a `starting` prediction; every request is
    counted in `requests` as "METHOD path".
    """

    def __init__(self, names: list[str]) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        for name in names:
            model = recorded_model_json(name)
            self.models[f"{model['owner']}/{model['name']}"] = model
        self.requests: list[str] = []
        self.created: list[dict[str, Any]] = []
        self.failing = False
        self._server: Any = None
        self.url = ""

    def start(self) -> RecordedReplicate:
        import threading

        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def count(self, prefix: str) -> int:
        return sum(1 for line in self.requests if line.startswith(prefix))

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        self.requests.append(f"{request.method} {request.path}")
        parts = request.path.strip("/").split("/")
        status: int = 404
        body: dict[str, Any] = {"detail": "Not found."}
        if self.failing:
            status, body = 500, {"detail": "Recorded stand-in told to fail."}
        elif len(parts) >= 4 and parts[:2] == ["v1", "models"]:
            model = self.models.get(f"{parts[2]}/{parts[3]}")
            if model is not None and len(parts) == 4 and request.method == "GET":
                status, body = 200, model
            elif model is not None and parts[4:] == ["predictions"] and request.method == "POST":
                sent = json.loads(request.get_data())
                self.created.append(sent)
                pid = f"rec{len(self.created):020d}"
                status, body = 201, {"id": pid, "model": f"{parts[2]}/{parts[3]}",
                                     "version": model["latest_version"]["id"], "input": sent.get("input"),
                                     "status": "starting", "logs": "", "output": None, "error": None,
                                     "created_at": "2024-01-01T00:00:00Z",
                                     "urls": {"get": f"{self.url}/v1/predictions/{pid}",
                                              "cancel": f"{self.url}/v1/predictions/{pid}/cancel"}}
            elif model is not None and len(parts) == 6 and parts[4] == "versions":
                if parts[5] == model["latest_version"]["id"]:
                    status, body = 200, model["latest_version"]
        response = Response(json.dumps(body), status=status, content_type="application/json")
        return list(response(environ, start_response))
