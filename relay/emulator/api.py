"""Replicate's prediction routes: create (with `Prefer: wait`), get, cancel, list.

Model, version, file and stream routes are in routes.py.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request

from .base import DemoModel
from .core import Emulator
from .inputs import resolve_input
from .models import model_for, model_for_version
from .problems import InvalidField, Problem, not_found, validation_failed
from .render import as_starting, prediction_json
from .store import Record, new_id
from .timeline import TERMINAL
from .webhooks import DEFAULT_EVENTS, EVENTS, WebhookSender

MAX_WAIT = 60
PAGE_SIZE = 100
_PREFER_WAIT = re.compile(r"(?:^|[\s,;])wait(?:=(\d+))?(?:$|[\s,;])")
# What a create body may hold; anything else is refused as Replicate does.
_MODEL_KEYS = frozenset({"input", "webhook", "webhook_completed", "webhook_events_filter", "stream"})
_VERSION_KEYS = _MODEL_KEYS | {"version"}


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


def _unknown_keys(body: dict[str, Any], allowed: frozenset[str]) -> list[InvalidField]:
    return [
        InvalidField("additional_property_not_allowed", "", f"Additional property {key} is not allowed")
        for key in sorted(body) if key not in allowed
    ]


def _wait_seconds() -> int | None:
    """Seconds asked for by a `Prefer: wait[=N]` header, capped at Replicate's 60."""
    match = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    if match is None:
        return None
    return max(1, min(MAX_WAIT, int(match.group(1)))) if match.group(1) else MAX_WAIT


def _cursor(record: Record) -> str:
    return base64.urlsafe_b64encode(f"{record.created_at!r}:{record.id}".encode()).decode().rstrip("=")


def _after_cursor(records: list[Record], cursor: str) -> list[Record]:
    """The records after the one the cursor names, in list order (newest first)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, last_id = text.partition(":")
        key = (float(created), last_id)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Invalid cursor.") from None
    return [r for r in records if (r.created_at, r.id) < key]


def register_api(app: Flask, emu: Emulator) -> None:
    def create(model: DemoModel, body: dict[str, Any], allowed: frozenset[str]) -> Response:
        bad = [] if "input" in body else [InvalidField("required", "", "input is required")]
        bad += _unknown_keys(body, allowed)
        webhook, events, webhook_bad = _webhook_fields(body)
        bad += webhook_bad
        if bad:
            raise validation_failed(bad)
        values = resolve_input(model.inputs, body["input"])  # raises the 422 for bad input
        record = Record(
            id=new_id(),
            model=model.ref,
            version=model.version_id,
            input=body["input"],
            created_at=time.time(),
            webhook=webhook,
            webhook_events_filter=events,
            extra=model.prepare(values, emu.reader()),
        )
        emu.predictions.save(record)
        emu.expiry.maybe_sweep()
        api_root, script_root = request.url_root, request.script_root
        if webhook is not None:
            WebhookSender(webhook, events or [], emu.secret(),
                          lambda: emu.snapshot(record.id, api_root, script_root)).start()
        wait = _wait_seconds()
        if wait is None:
            return json_response(emu.render(record, model, api_root, script_root), 201)
        deadline = time.time() + wait
        while True:
            current = emu.predictions.load(record.id) or record
            now = time.time()
            state = model.state(current, now, emu.files_root(script_root))
            if state.status in TERMINAL or now >= deadline:
                break
            upcoming = model.next_change(current, now)
            pause = 0.1 if upcoming is None else max(0.005, upcoming - now)
            time.sleep(min(0.1, pause, max(0.0, deadline - now)))
        if state.status not in TERMINAL:
            state = as_starting(state)  # the window ran out: clients go on polling
        body_json = prediction_json(model, current, state, api_root, emu.stream_url(model, current, api_root))
        response = json_response(body_json, 201)
        response.headers["Preference-Applied"] = f"wait={wait}"
        return response

    @app.post("/v1/models/<owner>/<name>/predictions")
    def create_for_model(owner: str, name: str) -> Response:
        model = model_for(f"{owner}/{name}")
        if model is None:
            raise not_found()
        return create(model, read_json_body(), _MODEL_KEYS)

    @app.post("/v1/predictions")
    def create_for_version() -> Response:
        body = read_json_body()
        version = body.get("version")
        if not isinstance(version, str) or not version:
            bad = _unknown_keys(body, _VERSION_KEYS)
            raise validation_failed([InvalidField("required", "", "version is required"), *bad])
        model = model_for_version(version)
        if model is None:
            raise Problem(
                422,
                "The specified version does not exist (or perhaps you don't have permission to use it?)",
                title="Invalid version or not permitted",
            )
        return create(model, body, _VERSION_KEYS)

    @app.get("/v1/predictions/<id>")
    def get_prediction(id: str) -> Response:
        record, model = emu.find(id)
        return json_response(emu.render(record, model, request.url_root, request.script_root))

    @app.post("/v1/predictions/<id>/cancel")
    def cancel_prediction(id: str) -> Response:
        record, model = emu.find(id)
        now = time.time()
        if record.removed is None and model.state(record, now, "/").status not in TERMINAL:
            record = record.canceled(now)
            emu.predictions.save(record)
        return json_response(emu.render(record, model, request.url_root, request.script_root, now))

    @app.get("/v1/predictions")
    def list_predictions() -> Response:
        emu.expiry.maybe_sweep()
        now = time.time()
        records = emu.predictions.all()
        records.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        cursor = request.args.get("cursor")
        if cursor:
            records = _after_cursor(records, cursor)
        page = records[:PAGE_SIZE]
        results = []
        for record in page:
            model = model_for(record.model)
            current = emu.expiry.apply(record, now)
            if model is not None and current is not None:
                results.append(emu.render(current, model, request.url_root, request.script_root, now))
        following = None
        if len(records) > PAGE_SIZE:
            following = f"{request.url_root}v1/predictions?cursor={_cursor(page[-1])}"
        return json_response({"next": following, "previous": None, "results": results})
