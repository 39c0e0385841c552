"""The HTML pages: the single page at /, the iframe widget at /embed and its demo host page."""

from __future__ import annotations

import json
import re

from flask import Blueprint, render_template, request

from .embed import parse_embed_query
from .service import current_service

__all__ = ["bp"]

bp = Blueprint("pages", __name__)

_PLAIN_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


@bp.get("/")
def index() -> str:
    service = current_service()
    return render_template(
        "index.html",
        backend=service.backend,
        heartbeat_ms=int(service.settings.heartbeat_interval * 1000),
    )


@bp.get("/embed")
def embed() -> tuple[str, int]:
    """The widget; bad query parameters get the widget's own message (400), never a 500."""
    service = current_service()
    models = service.schemas.describe_all(service.settings.allowed_models)
    options = parse_embed_query(request.args, models)
    offered = models if "model" in options.editable or options.model is None else [options.model]
    page = render_template(
        "embed.html",
        options=options,
        models=offered,
        # Strings, not markup: Jinja escapes them into the data- attributes embed.js reads.
        models_json=json.dumps([m.as_dict() for m in offered]),
        preset_json=json.dumps(options.preset_input),
        parent_origins=" ".join(service.settings.embed_origins),
        heartbeat_ms=int(service.settings.heartbeat_interval * 1000),
    )
    return page, 400 if options.problems else 200


@bp.get("/embed/demo")
def embed_demo() -> str:
    """A host page for the widget: the snippet to copy, the widget, and the events it raises."""
    return render_template("embed_demo.html", relay_origin=_own_origin())


def _own_origin() -> str:
    """Relay's origin for the snippet: RELAY_PUBLIC_URL when set, never a forged Host.

    Without it the request's host is used only when it is a plain host[:port];
    set RELAY_PUBLIC_URL in production so the page never depends on the Host header.
    """
    public = current_service().settings.public_url
    if public:
        return public
    if _PLAIN_HOST.match(request.host):
        return f"{request.scheme}://{request.host}"
    return ""

