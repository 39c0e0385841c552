"""The JSON and SSE routes (thin: checks at the edge, work in RelayService)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from .catalog import describe
from .errors import Forbidden, InvalidRequest, PayloadTooLarge, RelayError, UnsupportedMediaType
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .service import RelayService
from .streams import split_id
from .validation import parse_create_request

__all__ = ["bp"]

bp = Blueprint("api", __name__)

_STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _service() -> RelayService:
    service = current_app.extensions["relay"]
    assert isinstance(service, RelayService)
    return service


def _json_body() -> object:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    limit = _service().settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None


@bp.post("/api/predictions")
@bp.post("/api/prediction")
def create_prediction() -> tuple[Response, int]:
    service = _service()
    try:
        create = parse_create_request(_json_body(), service.settings.allowed_models)
        answer = service.create(create)
    except RelayError as error:
        service.metrics.creates.labels(error.code).inc()
        raise
    service.metrics.creates.labels("created").inc()
    return jsonify(answer), 201


def _granted_id(prediction_id: str, purpose: str) -> str:
    token = request.args.get("token")
    service = _service()
    if purpose == "cancel":
        granted = service.signer.grants(token, "cancel", prediction_id)
    else:
        granted = service.signer.grants(token, "stream", prediction_id)
    if not granted:
        raise Forbidden("This link is not valid for that prediction (wrong, expired or missing token).")
    return prediction_id


@bp.get("/api/predictions/<prediction_id>/events")
def stream_prediction(prediction_id: str) -> Response:
    return _single_stream(_granted_id(prediction_id, "stream"))


@bp.get("/api/prediction")
def seed_stream() -> Response:
    prediction_id = request.args.get("id", "")
    if not prediction_id:
        raise InvalidRequest("Pass the prediction's `id` and `token` as query parameters.")
    return _single_stream(_granted_id(prediction_id, "stream"))


def _last_event_id() -> str | None:
    value = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    return value.strip() if value and value.strip() else None


def _single_stream(prediction_id: str) -> Response:
    service = _service()
    service.ensure_known(prediction_id)
    body = service.stream([prediction_id], [_last_event_id()], multiplexed=False)
    return _sse_response(body)


@bp.get("/api/events")
def multiplexed_stream() -> Response:
    service = _service()
    tokens = request.args.getlist("watch")
    if not tokens:
        raise InvalidRequest("Pass one or more `watch` tokens (the `token` of each stream_url).")
    limit = service.settings.max_watch_per_stream
    if len(tokens) > limit:
        raise InvalidRequest(f"One stream may follow at most {limit} predictions.")
    ids: list[str] = []
    for token in tokens:
        prediction_id = service.signer.verify(token, "stream")
        if prediction_id is None:
            raise Forbidden("One of the `watch` tokens is not valid (wrong, expired or malformed).")
        if prediction_id not in ids:
            ids.append(prediction_id)
    for prediction_id in ids:
        service.ensure_known(prediction_id)
    body = service.stream(ids, split_id(_last_event_id(), len(ids)), multiplexed=True)
    return _sse_response(body)


def _sse_response(body: Iterator[bytes] | None) -> Response:
    if body is None:
        return Response(status=204, headers={"Cache-Control": "no-cache"})
    response = Response(body, status=200, content_type="text/event-stream; charset=utf-8",
                        headers=_STREAM_HEADERS)
    # Streams must never be compressed or buffered on the way.
    response.direct_passthrough = True
    return response


@bp.post("/api/predictions/<prediction_id>/cancel")
def cancel_prediction(prediction_id: str) -> Response:
    return jsonify(_service().cancel(_granted_id(prediction_id, "cancel")))


@bp.post("/api/webhooks/replicate")
def replicate_webhook() -> Response:
    # Webhook bodies are whole predictions (logs included): allow more than a create body.
    request.max_content_length = 4 * 2**20
    raw = request.get_data(cache=False)
    headers = {name.lower(): value for name, value in request.headers.items()}
    service = _service()
    try:
        outcome = service.apply_webhook(headers, raw)
    except RelayError as error:
        service.metrics.webhooks.labels(error.code).inc()
        raise
    service.metrics.webhooks.labels(outcome).inc()
    return jsonify(success=True, outcome=outcome)


@bp.get("/metrics")
def metrics() -> Response:
    return Response(_service().metrics.render(), content_type=METRICS_CONTENT_TYPE)


@bp.get("/api/models")
def list_models() -> Response:
    models = describe(_service().settings.allowed_models)
    return jsonify(models=[m.as_dict() for m in models])


@bp.get("/healthz")
def health() -> tuple[Response, int]:
    service = _service()
    degraded_since = service.watchers.degraded_since
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(degraded_since)) if degraded_since else None
    hub_ok = service.hub_ok()
    payload: dict[str, Any] = {
        "status": "ok" if hub_ok else "unavailable",
        "backend": service.backend,
        "hub": {"kind": service.hub.kind, "ok": hub_ok},
        "upstream": {"state": "degraded" if degraded_since else "ok", "since": since},
        "streams": service.hub.open_streams(),
        "watchers": service.watchers.running(),
    }
    return jsonify(payload), 200 if hub_ok else 503
