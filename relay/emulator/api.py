"""Replicate's public routes: predictions, models, the webhook secret, files, stream."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request

from .core import Emulator
from .inputs import input_schema, resolve_input
from .models import MODELS, DemoModel, ImageDemo, model_for, model_for_version
from .png import render_image
from .problems import InvalidField, Problem, not_found, validation_failed
from .render import iso, prediction_json
from .sse import parse_last_event_id, stream
from .store import Record, new_id
from .timeline import TERMINAL
from .webhooks import DEFAULT_EVENTS, EVENTS, WebhookSender

MAX_WAIT = 60.0
_PREFER_WAIT = re.compile(r"(?:^|[\s,;])wait(?:=(\d+))?(?:$|[\s,;])")
_VERSION_CREATED = 1704067200.0  # 2024-01-01: the demo versions never change


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def read_json_body() -> dict[str, Any]:
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid JSON")

    try:
        body = json.loads(raw, parse_constant=refuse)
    except (ValueError, RecursionError):
        raise Problem(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Problem(400, "The request body must be a JSON object.")
    return body


def _webhook_fields(body: dict[str, Any]) -> tuple[str | None, list[str] | None, list[InvalidField]]:
    bad: list[InvalidField] = []
    webhook = body.get("webhook")
    if webhook is not None:
        parts = urlsplit(webhook) if isinstance(webhook, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            bad.append(InvalidField("format", "webhook", "Must be a valid http or https URL"))
    events = body.get("webhook_events_filter")
    if events is not None and not (isinstance(events, list) and all(e in EVENTS for e in events)):
        allowed = ", ".join(sorted(EVENTS))
        bad.append(InvalidField("enum", "webhook_events_filter", f"Must be a list of: {allowed}"))
    if webhook is not None and events is None:
        events = list(DEFAULT_EVENTS)
    return webhook, events, bad


def _wait_seconds() -> float | None:
    """Seconds asked for by a `Prefer: wait[=N]` header, capped like Replicate's."""
    match = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    if match is None:
        return None
    return min(MAX_WAIT, float(match.group(1))) if match.group(1) else MAX_WAIT


def register_api(app: Flask, emu: Emulator) -> None:
    def create(model: DemoModel, body: dict[str, Any]) -> Response:
        bad: list[InvalidField] = []
        if "input" not in body:
            bad.append(InvalidField("required", "input", "input is required"))
        webhook, events, webhook_bad = _webhook_fields(body)
        bad += webhook_bad
        if bad:
            raise validation_failed(bad)
        resolve_input(model.inputs, body["input"])  # raises the 422 for bad input
        record = Record(
            id=new_id(),
            model=model.ref,
            version=model.version_id,
            input=body["input"],
            created_at=time.time(),
            webhook=webhook,
            webhook_events_filter=events,
        )
        emu.predictions.save(record)
        root = request.url_root
        if webhook is not None:
            WebhookSender(webhook, events or [], emu.secret(), lambda: emu.snapshot(record.id, root)).start()
        state = model.state(record, time.time(), root)
        wait = _wait_seconds()
        if wait is not None:
            deadline = time.time() + wait
            while state.status not in TERMINAL and time.time() < deadline:
                time.sleep(min(0.1, max(0.0, deadline - time.time())))
                record, _ = emu.find(record.id)
                state = model.state(record, time.time(), root)
        return json_response(prediction_json(model, record, state, root), 201)

    @app.post("/v1/models/<owner>/<name>/predictions")
    def create_for_model(owner: str, name: str) -> Response:
        model = model_for(f"{owner}/{name}")
        if model is None:
            raise not_found()
        return create(model, read_json_body())

    @app.post("/v1/predictions")
    def create_for_version() -> Response:
        body = read_json_body()
        version = body.get("version")
        if not isinstance(version, str) or not version:
            raise validation_failed([InvalidField("required", "version", "version is required")])
        model = model_for_version(version)
        if model is None:
            raise Problem(
                422,
                "The specified version does not exist (or perhaps you don't have permission to use it?)",
                title="Invalid version or not permitted",
            )
        return create(model, body)

    @app.get("/v1/predictions/<id>")
    def get_prediction(id: str) -> Response:
        record, model = emu.find(id)
        root = request.url_root
        return json_response(prediction_json(model, record, model.state(record, time.time(), root), root))

    @app.post("/v1/predictions/<id>/cancel")
    def cancel_prediction(id: str) -> Response:
        record, model = emu.find(id)
        root = request.url_root
        now = time.time()
        if model.state(record, now, root).status not in TERMINAL:
            record = record.canceled(now)
            emu.predictions.save(record)
        return json_response(prediction_json(model, record, model.state(record, now, root), root))

    @app.get("/v1/predictions")
    def list_predictions() -> Response:
        root = request.url_root
        now = time.time()
        results = []
        for record in emu.predictions.all()[:100]:
            model = model_for(record.model)
            if model is not None:
                results.append(prediction_json(model, record, model.state(record, now, root), root))
        return json_response({"next": None, "previous": None, "results": results})

    @app.get("/v1/models")
    def list_models() -> Response:
        results = [_model_json(m) for m in MODELS.values()]
        return json_response({"next": None, "previous": None, "results": results})

    @app.get("/v1/models/<owner>/<name>")
    def get_model(owner: str, name: str) -> Response:
        model = model_for(f"{owner}/{name}")
        if model is None:
            raise not_found()
        return json_response(_model_json(model))

    @app.get("/v1/models/<owner>/<name>/versions")
    def list_versions(owner: str, name: str) -> Response:
        model = model_for(f"{owner}/{name}")
        if model is None:
            raise not_found()
        return json_response({"next": None, "previous": None, "results": [_version_json(model)]})

    @app.get("/v1/models/<owner>/<name>/versions/<version_id>")
    def get_version(owner: str, name: str, version_id: str) -> Response:
        model = model_for(f"{owner}/{name}")
        if model is None or version_id != model.version_id:
            raise not_found()
        return json_response(_version_json(model))

    @app.get("/v1/webhooks/default/secret")
    def webhook_secret() -> Response:
        return json_response({"key": emu.secret()})

    @app.get("/files/<id>/output.png")
    def output_file(id: str) -> Response:
        record, model = emu.find(id)
        if not isinstance(model, ImageDemo):
            raise not_found()
        if model.state(record, time.time(), request.url_root).status != "succeeded":
            raise not_found()
        v = model.values(record)
        png = render_image(v["prompt"], model.seed(v), v["width"], v["height"])
        response = Response(png, mimetype="image/png")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @app.get("/stream/<id>")
    def stream_prediction(id: str) -> Response:
        record, model = emu.find(id)
        if not model.streams:
            raise not_found()
        root = request.url_root
        last_seen = parse_last_event_id(request.headers.get("Last-Event-ID"))

        def observe() -> tuple[Any, float | None] | None:
            current = emu.predictions.load(id)
            if current is None:
                return None
            now = time.time()
            return model.state(current, now, root), model.next_change(current, now)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Response(
            stream(observe, record.created_at, last_seen), mimetype="text/event-stream", headers=headers
        )


def _version_json(model: DemoModel) -> dict[str, Any]:
    output: dict[str, Any] = {"type": "array", "title": "Output"}
    if model.streams:
        output["items"] = {"type": "string"}
        output["x-cog-array-type"] = "iterator"
        output["x-cog-array-display"] = "concatenate"
    else:
        output["items"] = {"type": "string", "format": "uri"}
    return {
        "id": model.version_id,
        "created_at": iso(_VERSION_CREATED),
        "cog_version": "0.9.0",
        "openapi_schema": {
            "openapi": "3.0.2",
            "info": {"title": "Cog", "version": "0.1.0"},
            "components": {"schemas": {"Input": input_schema(model.inputs), "Output": output}},
        },
    }


def _model_json(model: DemoModel) -> dict[str, Any]:
    return {
        "url": f"https://replicate.com/{model.ref}",
        "owner": model.owner,
        "name": model.name,
        "description": model.description,
        "visibility": "public",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "latest_version": _version_json(model),
    }
