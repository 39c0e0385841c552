"""Relay's error tree and its JSON rendering.

    RelayError                  (status, code, message)
    ├── InvalidRequest          400 invalid_request
    ├── Forbidden               403 forbidden / model_not_allowed / cross_site
    ├── NotFound                404 not_found
    ├── PayloadTooLarge         413 payload_too_large
    ├── UnsupportedMediaType    415 unsupported_media_type
    ├── RateLimited             429 rate_limited (+ Retry-After)
    ├── UpstreamError           502 upstream_error, or Replicate's 4xx status kept
    └── UpstreamUnavailable     503 upstream_unavailable (+ Retry-After)
        └── UpstreamThrottled   the same, from a 429: pause all polling

Every error a route answers goes through `error_response`, so each has the
contract's shape: {"success": false, "error": "<sentence>", "code": "<snake_case>"}.
"""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

__all__ = [
    "Forbidden",
    "HubUnavailable",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RelayError",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamThrottled",
    "UpstreamUnavailable",
    "error_response",
    "init_app",
]

log = logging.getLogger(__name__)


class RelayError(Exception):
    """An answer the client can act on; `message` is shown to people as it is."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.retry_after = retry_after


class InvalidRequest(RelayError):
    status = 400
    code = "invalid_request"


class Forbidden(RelayError):
    status = 403
    code = "forbidden"


class NotFound(RelayError):
    status = 404
    code = "not_found"


class HubUnavailable(RelayError):
    """Redis (REDIS_URL) does not answer; the operation can be retried."""

    status = 503
    code = "hub_unavailable"


class PayloadTooLarge(RelayError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(RelayError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(RelayError):
    status = 429
    code = "rate_limited"


class UpstreamError(RelayError):
    status = 502
    code = "upstream_error"


class UpstreamUnavailable(RelayError):
    status = 503
    code = "upstream_unavailable"


class UpstreamThrottled(UpstreamUnavailable):
    """Replicate answered 429: every process should slow down, not just this one."""


def error_response(status: int, code: str, message: str, retry_after: float | None = None) -> Response:
    """The contract's JSON error body with its status (and Retry-After when given)."""
    response = jsonify(success=False, error=message, code=code)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


_HTTP_CODES = {
    400: ("invalid_request", "The request could not be understood."),
    401: ("unauthorized", "This route needs credentials."),
    403: ("forbidden", "You may not do that."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as JSON with Content-Type: application/json."),
    429: ("rate_limited", "Too many requests; wait a moment and try again."),
}


def _relay_error(error: RelayError) -> Response:
    return error_response(error.status, error.code, error.message, error.retry_after)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code, message = _HTTP_CODES.get(status, ("http_error", error.description or "Request failed."))
    response = error_response(status, code, message)
    if status == 405 and error.response is None:
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def _unexpected(error: Exception) -> Response:
    # The traceback goes to the log, never to the client.
    log.exception("unhandled error: %s", type(error).__name__)
    return error_response(500, "internal_error", "Something went wrong on our side; please try again.")


def init_app(app: Flask) -> None:
    """Render every error, expected or not, in the contract's JSON shape."""
    app.register_error_handler(RelayError, _relay_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
