"""The emulator's Flask app: request hooks (stats, faults, auth) and error handling."""

from __future__ import annotations

import logging
import os
import re
import time
from http import HTTPStatus
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .admin import register_admin
from .api import register_api
from .auth import allowed, bearer_token
from .core import Emulator
from .expiry import DATA_TTL, KEEP_FOR
from .problems import Problem
from .routes import register_routes
from .store import valid_id

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

_HTTP_DETAILS = {
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
}


def _route_key() -> str:
    """`/v1/predictions/{id}` style name of the matched route, for stats."""
    rule = request.url_rule
    return "(unmatched)" if rule is None else _CONVERTER.sub(r"{\1}", rule.rule)


def _unauthenticated(header: str) -> Response:
    if bearer_token(header) is None:
        detail = "You did not pass an authentication token"
    else:
        detail = "You did not pass a valid authentication token"
    return Problem(401, detail, title="Unauthenticated").response()


def create_app(state_dir: str | os.PathLike[str], *, faults_enabled: bool = False, token: str | None = None,
               files_url: str | None = None, data_ttl: float = DATA_TTL, keep_for: float = KEEP_FOR) -> Flask:
    emu = Emulator(Path(state_dir), faults_enabled, token, files_url, data_ttl, keep_for)
    app = Flask("relay.emulator")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["relay_emulator"] = emu

    @app.before_request
    def gatekeeper() -> Response | None:
        path = request.path
        is_api = path.startswith("/v1/")
        if not is_api:
            return None  # output files and /_emulator are public
        capability = path.startswith("/v1/streams/")
        if faults_enabled:
            pid = (request.view_args or {}).get("id")
            # Only calls on a prediction count for it (not stream reads, not uploads).
            on_prediction = path.startswith("/v1/predictions/")
            counted = pid if on_prediction and isinstance(pid, str) and valid_id(pid) else None
            emu.stats.record(request.method, _route_key(), counted)
            fault = None if capability else emu.faults.take(request.method, path)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                problem = fault.problem()
                if problem is not None:
                    return problem.response()
        header = request.headers.get("Authorization", "")
        if not capability and not allowed(header, emu.token):
            return _unauthenticated(header)
        return None

    @app.after_request
    def reason_phrase(response: Response) -> Response:
        # Werkzeug upper-cases reason phrases ("201 CREATED"); Replicate sends "201 Created".
        try:
            response.status = f"{response.status_code} {HTTPStatus(response.status_code).phrase}"
        except ValueError:
            pass
        return response

    @app.errorhandler(Problem)
    def on_problem(problem: Problem) -> Response:
        return problem.response()

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        detail = _HTTP_DETAILS.get(status) or error.description or "Error."
        return Problem(status, detail).response()

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception) -> Response:
        log.exception("emulator error on %s %s", request.method, request.path)
        return Problem(500, "Internal server error.").response()

    register_api(app, emu)
    register_routes(app, emu)
    if faults_enabled:
        register_admin(app, emu)
    return app
