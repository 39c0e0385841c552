"""The JSON and SSE routes (thin: checks at the edge, work in RelayService)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from .catalog import describe
from .errors import Forbidden, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from .limits import creation_limited, stream_slot
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .service import current_service
from .tokens import Purpose

__all__ = ["bp"]

bp = Blueprint("api", __name__)

_STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _json_body() -> object:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    limit = current_service().settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.")
    try:
        raw = request.stream.read(limit)
        # A body without Content-Length (chunked) is cut at the limit by werkzeug, which
        # raises 413 when one byte more is asked for and there is more.
        if len(raw) >= limit and request.stream.read(1):
            raise RequestEntityTooLarge()
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.") from None
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None


def _not_json(constant: str) -> object:
    # Python reads NaN and Infinity, which are not JSON: Replicate's client could not send them on.
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid syntax, but no number a client can send upstream
        raise ValueError(f"{text} is out of range")
    return value


@bp.post("/api/predictions")
@bp.post("/api/prediction")
@creation_limited
def create_prediction() -> tuple[Response, int]:
    return jsonify(current_service().create_from(_json_body)), 201


def _granted_id(prediction_id: str, purpose: Purpose) -> str:
    if not current_service().signer.grants(request.args.get("token"), purpose, prediction_id):
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
    service = current_service()
    service.ensure_known(prediction_id)
    return _open_stream([prediction_id], [_last_event_id()], multiplexed=False)


@bp.get("/api/events")
def multiplexed_stream() -> Response:
    ids, last_ids = current_service().open_multiplexed(request.args.getlist("watch"), _last_event_id())
    return _open_stream(ids, last_ids, multiplexed=True)


def _open_stream(ids: Sequence[str], last_ids: Sequence[str | None], *, multiplexed: bool) -> Response:
    # Taken after the token and id checks, so a refused request holds no slot.
    slot = stream_slot()
    try:
        body = current_service().stream(ids, last_ids, multiplexed=multiplexed, on_close=slot.release)
    except BaseException:
        slot.release()
        raise
    if body is None or request.method == "HEAD":
        # No body will be iterated, so the generator's cleanup (which releases the slot) never runs.
        slot.release()
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
    return jsonify(current_service().cancel(_granted_id(prediction_id, "cancel")))


@bp.post("/api/webhooks/replicate")
def replicate_webhook() -> Response:
    # Webhook bodies are whole predictions (logs included): allow more than a create body.
    request.max_content_length = 4 * 2**20
    raw = request.get_data(cache=False)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return jsonify(success=True, outcome=current_service().apply_webhook(headers, raw))


@bp.get("/metrics")
def metrics() -> Response:
    return Response(current_service().metrics.render(), content_type=METRICS_CONTENT_TYPE)


@bp.get("/api/models")
def list_models() -> Response:
    models = describe(current_service().settings.allowed_models)
    return jsonify(models=[m.as_dict() for m in models])


@bp.get("/healthz")
def health() -> tuple[Response, int]:
    payload, serving = current_service().health()
    return jsonify(payload), 200 if serving else 503


_OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@bp.get("/openapi.yaml")
def openapi() -> Response:
    """This API described in OpenAPI 3.1, for clients and for the fuzz tests."""
    return send_file(_OPENAPI, mimetype="application/yaml", max_age=300)
