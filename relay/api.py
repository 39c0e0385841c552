"""The JSON and SSE routes (thin: checks at the edge, work in RelayService)."""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from .bodies import read_body
from .errors import Forbidden, InvalidRequest, PayloadTooLarge, UnsupportedMediaType, error_response
from .inputs import InvalidInput
from .limits import cancel_limited, creation_limited, stream_slot
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .service import RelayService, current_service
from .streams import split_id
from .tokens import Purpose
from .uploads import check_upload, inline_limit, store_upload
from .visitors import current_visitor

__all__ = ["STREAM_CONTENT_TYPE", "STREAM_HEADERS", "bp", "resume_ids"]

bp = Blueprint("api", __name__)

WEBHOOK_MAX_BYTES = 4 * 2**20

# A stream's own headers (relay/stream_open.py sends the same).
STREAM_HEADERS = (("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"))
STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"


def _json_body() -> object:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    settings = current_service().settings
    raw = _body(settings.max_body_bytes)
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None


def _body(limit: int) -> bytes:
    """The request body, at most `limit` bytes, read within RELAY_BODY_TIMEOUT (bodies.py)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.")
    try:
        # werkzeug cuts a body without Content-Length (chunked) at max_content_length
        # and raises 413 when more is asked for.
        return read_body(request.stream, limit, current_service().settings.body_timeout)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.") from None


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
    return jsonify(current_service().create_from(_json_body, visitor=current_visitor().id)), 201


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


# The ids Relay issues: `<ms>-<seq>` (the memory hub's and Redis stream ids alike);
# a multiplexed stream's id joins one per prediction with commas (empty: none yet).
_EVENT_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def _last_event_ids(count: int) -> list[str | None]:
    """Where the client resumes each of `count` predictions (see `resume_ids`)."""
    # Read without werkzeug's lookups of a missing key, which raise and catch an exception each
    # (a fresh stream has neither the header nor the parameter).
    value = request.environ.get("HTTP_LAST_EVENT_ID")
    if not value:
        args = request.args
        value = args.get("lastEventId") if "lastEventId" in args else None
    return resume_ids(value, count)


def resume_ids(value: str | None, count: int) -> list[str | None]:
    """Per prediction, the id a Last-Event-ID names; None where it names no id Relay issued.

    Resume positions are written back into `id:` lines, so only Relay's own shape
    passes this edge (CR/LF above all never does). Anything else counts as an id
    never issued, which the contract answers with the current snapshot.
    """
    if not value or not value.strip() or len(value) > 48 * count:
        return [None] * count
    parts = split_id(value.strip(), count)
    return [part if part is not None and _EVENT_ID.match(part) else None for part in parts]


def _single_stream(prediction_id: str) -> Response:
    service = current_service()
    service.ensure_known(prediction_id)
    return _open_stream(service, [prediction_id], _last_event_ids(1), multiplexed=False)


@bp.get("/api/events")
def multiplexed_stream() -> Response:
    service = current_service()
    ids = service.open_multiplexed(request.args.getlist("watch"))
    return _open_stream(service, ids, _last_event_ids(len(ids)), multiplexed=True)


def _open_stream(service: RelayService, ids: Sequence[str], last_ids: Sequence[str | None], *,
                 multiplexed: bool) -> Response:
    # Taken after the token and id checks, so a refused request holds no slot.
    slot = stream_slot()
    try:
        body = service.stream(ids, last_ids, multiplexed=multiplexed, on_close=slot.release)
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
    response = Response(body, status=200, content_type=STREAM_CONTENT_TYPE,
                        headers=STREAM_HEADERS)
    # Streams must never be compressed or buffered on the way.
    response.direct_passthrough = True
    return response


@bp.get("/api/predictions/<prediction_id>/logs")
def prediction_logs(prediction_id: str) -> Response:
    """The whole log as text (the stream token; the stream's 403/404 rules)."""
    text = current_service().log_text(_granted_id(prediction_id, "stream"))
    return Response(text, content_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})


@bp.post("/api/predictions/<prediction_id>/cancel")
@cancel_limited
def cancel_prediction(prediction_id: str) -> Response:
    return jsonify(current_service().cancel(_granted_id(prediction_id, "cancel")))


@bp.post("/api/webhooks/replicate")
def replicate_webhook() -> Response:
    headers = {name.lower(): value for name, value in request.headers.items()}
    # Webhook bodies are whole predictions (logs included): allow more than a create body.
    request.max_content_length = WEBHOOK_MAX_BYTES
    outcome = current_service().apply_webhook(headers, lambda: _body(WEBHOOK_MAX_BYTES))
    return jsonify(success=True, outcome=outcome)


@bp.get("/metrics")
def metrics() -> Response:
    token = current_service().settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Forbidden("The metrics need `Authorization: Bearer <RELAY_METRICS_TOKEN>`.",
                            code="metrics_token_required")
    current_service().guard.refresh_gauges()
    return Response(current_service().metrics.render(), content_type=METRICS_CONTENT_TYPE)


@bp.get("/api/models")
def list_models() -> Response:
    service = current_service()
    models = service.schemas.describe_all(service.settings.allowed_models)
    return jsonify(models=[m.as_dict() for m in models])


@bp.errorhandler(InvalidInput)
def _invalid_input(error: InvalidInput) -> Response:
    response = error_response(error.status, error.code, error.message)
    body = response.get_json()
    body["field"] = error.field
    response.set_data(json.dumps(body))
    return response


@bp.post("/api/uploads")
@creation_limited
def upload_file() -> tuple[Response, int]:
    """One file from a visitor, as a URL to pass as a file input (docs/models.md)."""
    service = current_service()
    limit = service.settings.max_upload_bytes
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("Send the file as multipart/form-data.")
    request.max_content_length = limit + 64 * 1024  # the file plus its multipart framing
    try:
        files = [f for name in request.files for f in request.files.getlist(name)]
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"The file is larger than {limit // 2**20 or 1} MB.") from None
    data, content_type, name = check_upload(files, limit)
    url = store_upload(service.upstream, data, content_type, name,
                       inline_max=inline_limit(service.settings.max_body_bytes))
    return jsonify(success=True, url=url), 201


@bp.get("/healthz")
def health() -> tuple[Response, int]:
    payload, serving = current_service().health()
    return jsonify(payload), 200 if serving else 503


_OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@bp.get("/openapi.yaml")
def openapi() -> Response:
    """This API described in OpenAPI 3.1, for clients and for the fuzz tests."""
    return send_file(_OPENAPI, mimetype="application/yaml", max_age=300)
