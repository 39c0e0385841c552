"""The emulator's Flask app: request hooks (stats, faults, auth) and error handling."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .admin import register_admin
from .api import register_api
from .core import Emulator
from .problems import Problem
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


def _authorized() -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def create_app(state_dir: str | os.PathLike[str], *, faults_enabled: bool = False) -> Flask:
    emu = Emulator(Path(state_dir), faults_enabled)
    app = Flask("relay.emulator")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.before_request
    def gatekeeper() -> Response | None:
        path = request.path
        is_api = path.startswith("/v1/")
        if not (is_api or path.startswith("/stream/")):
            return None  # files and /_emulator are public
        if faults_enabled:
            pid = (request.view_args or {}).get("id")
            counted = pid if is_api and isinstance(pid, str) and valid_id(pid) else None
            emu.stats.record(request.method, _route_key(), counted)
            fault = emu.faults.take(request.method, path) if is_api else None
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                problem = fault.problem()
                if problem is not None:
                    return problem.response()
        if not _authorized():
            return Problem(
                401, "You did not pass an authentication token", title="Unauthenticated"
            ).response()
        return None

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
    if faults_enabled:
        register_admin(app, emu)
    return app
