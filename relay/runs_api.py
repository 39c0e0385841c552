"""Routes of the run records and kept files: GET /api/runs, GET /api/runs/<id>, GET /files/<key>.

A visitor (the `relay_visitor` cookie, relay/visitors.py) lists only their own runs;
one run is also readable with its stream token, as a stream is (403 for a bad token,
then 404 for an id without a record). Kept files need the signature Relay put in
their URL; they are streamed from storage, never read whole.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from .errors import Forbidden, NotFound, error_response
from .runs import Runs
from .service import RelayService, current_service
from .visitors import current_visitor

__all__ = ["bp"]

bp = Blueprint("runs", __name__)


def _runs() -> tuple[RelayService, Runs]:
    runs = current_app.extensions["relay_runs"]
    assert isinstance(runs, Runs)
    return current_service(), runs


@bp.errorhandler(SQLAlchemyError)
def _records_unavailable(error: SQLAlchemyError) -> Response:
    current_app.logger.warning("run records unavailable: %s", error)
    return error_response(503, "records_unavailable",
                          "The run records cannot be read right now; try again shortly.", retry_after=5)


@bp.get("/api/runs")
def list_runs() -> Response:
    _, runs = _runs()
    rows = runs.store.for_visitor(current_visitor().id)
    response = jsonify(runs=[runs.run_json(row) for row in rows])
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/api/runs/<prediction_id>")
def get_run(prediction_id: str) -> Response:
    service, runs = _runs()
    if not service.signer.grants(request.args.get("token"), "stream", prediction_id):
        raise Forbidden("This link is not valid for that prediction (wrong, expired or missing token).")
    row = runs.store.get(prediction_id)
    if row is None:
        raise NotFound("Relay has no record of that prediction.")
    response = jsonify(runs.run_json(row))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/files/<path:key>")
def kept_file(key: str) -> Response:
    _, runs = _runs()
    if not runs.keeper.verify(key, request.args.get("sig")):
        raise Forbidden("This file link is not valid (wrong or missing signature).", code="bad_signature")
    stored = runs.keeper.storage.open(key)
    if stored is None:
        raise NotFound("That file is no longer kept.")
    response = Response(stored.chunks, content_type=stored.content_type, direct_passthrough=True)
    if stored.size is not None:
        response.content_length = stored.size
    # The signed URL never changes while the file exists, and the bytes never change.
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"  # nosniff: security.py, as everywhere
    return response
