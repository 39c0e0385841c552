"""Replicate's other routes: models and versions, the webhook secret, files, outputs, streams."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask, Response, request

from .api import json_response
from .auth import capability_ok
from .base import DemoModel
from .core import Emulator
from .models import MODELS, model_for
from .problems import InvalidField, Problem, not_found, validation_failed
from .render import iso
from .schema import openapi_document
from .sse import parse_last_event_id, stream
from .timeline import TERMINAL
from .uploads import MAX_UPLOAD

_VERSION_CREATED = 1704067200.0  # 2024-01-01: the demo versions never change


def _version_json(model: DemoModel) -> dict[str, Any]:
    return {
        "id": model.version_id,
        "created_at": iso(_VERSION_CREATED),
        "cog_version": "0.9.0",
        "openapi_schema": openapi_document(model),
    }


def _model_json(model: DemoModel) -> dict[str, Any]:
    example = None
    if model.default_example:
        example = {
            "id": f"example{model.version_id[:18]}",
            "model": model.ref,
            "version": model.version_id,
            "input": dict(model.default_example),
            "status": "succeeded",
            "source": "web",
            "error": None,
            "logs": "",
            "metrics": {"predict_time": 1.0, "total_time": 1.0},
            "created_at": iso(_VERSION_CREATED),
            "started_at": iso(_VERSION_CREATED),
            "completed_at": iso(_VERSION_CREATED + 1),
            "urls": {"get": f"https://api.replicate.com/v1/predictions/example{model.version_id[:18]}"},
        }
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
        "created_at": iso(_VERSION_CREATED),
        "default_example": example,
        "latest_version": _version_json(model),
    }


def _file_json(meta: dict[str, Any], api_root: str) -> dict[str, Any]:
    return {
        **{k: meta[k] for k in ("id", "name", "content_type", "size", "etag", "checksums", "metadata")},
        "created_at": iso(float(meta["created_at"])),
        "expires_at": iso(float(meta["expires_at"])),
        "urls": {"get": f"{api_root}v1/files/{meta['id']}"},
    }


def register_routes(app: Flask, emu: Emulator) -> None:
    def known(owner: str, name: str) -> DemoModel:
        model = model_for(f"{owner}/{name}")
        if model is None:
            raise not_found()
        return model

    @app.get("/v1/models")
    def list_models() -> Response:
        return json_response({"next": None, "previous": None, "results": [_model_json(m) for m in MODELS.values()]})

    @app.get("/v1/models/<owner>/<name>")
    def get_model(owner: str, name: str) -> Response:
        return json_response(_model_json(known(owner, name)))

    @app.get("/v1/models/<owner>/<name>/versions")
    def list_versions(owner: str, name: str) -> Response:
        model = known(owner, name)
        return json_response({"next": None, "previous": None, "results": [_version_json(model)]})

    @app.get("/v1/models/<owner>/<name>/versions/<version_id>")
    def get_version(owner: str, name: str, version_id: str) -> Response:
        model = known(owner, name)
        if version_id != model.version_id:
            raise not_found()
        return json_response(_version_json(model))

    @app.get("/v1/webhooks/default/secret")
    def webhook_secret() -> Response:
        return json_response({"key": emu.secret()})

    @app.post("/v1/files")
    def upload_file() -> Response:
        upload = request.files.get("content")
        if upload is None:
            raise validation_failed([InvalidField("required", "content", "content is required")])
        data = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise Problem(413, "The file is too large.")
        metadata: Any = {}
        if request.form.get("metadata"):
            try:
                metadata = json.loads(request.form["metadata"])
            except ValueError:
                metadata = None
            if not isinstance(metadata, dict):
                raise validation_failed([InvalidField("invalid_type", "metadata", "Expected a JSON object")])
        name = request.form.get("filename") or upload.filename or "file"
        content_type = request.form.get("type") or upload.mimetype or "application/octet-stream"
        meta = emu.uploads.save(name, content_type, data, metadata, time.time())
        emu.expiry.maybe_sweep()
        return json_response(_file_json(meta, request.url_root), 201)

    @app.get("/v1/files")
    def list_files() -> Response:
        results = [_file_json(m, request.url_root) for m in emu.uploads.all()]
        return json_response({"next": None, "previous": None, "results": results})

    @app.get("/v1/files/<id>")
    def get_file(id: str) -> Response:
        meta = emu.uploads.meta(id)
        if meta is None or float(meta["expires_at"]) <= time.time():
            raise not_found()
        return json_response(_file_json(meta, request.url_root))

    @app.delete("/v1/files/<id>")
    def delete_file(id: str) -> Response:
        if not emu.uploads.delete(id):
            raise not_found()
        return Response(status=204)

    @app.get("/files/<id>/<name>")
    def output_file(id: str, name: str) -> Response:
        record, model = emu.find(id)
        if record.removed is not None or model.state(record, time.time(), "/").status != "succeeded":
            raise not_found()
        found = model.file(record, name)
        if found is None:
            raise not_found()
        response = Response(found.data, mimetype=found.mimetype)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @app.get("/v1/streams/<id>/<tag>")
    def stream_prediction(id: str, tag: str) -> Response:
        # A capability URL: the tag proves it came from an answer, no Authorization needed.
        if not capability_ok(emu.secret(), "stream", id, tag):
            raise not_found()
        record, model = emu.find(id)
        if not model.streams or record.removed is not None:
            raise not_found()
        files_root = emu.files_root(request.script_root)
        last_seen = parse_last_event_id(request.headers.get("Last-Event-ID"))

        def observe() -> tuple[Any, float | None] | None:
            current = emu.predictions.load(id)
            if current is None or current.removed is not None:
                return None
            now = time.time()
            state = model.state(current, now, files_root)
            return state, (None if state.status in TERMINAL else model.next_change(current, now))

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Response(stream(observe, record.created_at, last_seen), mimetype="text/event-stream",
                        headers=headers)
