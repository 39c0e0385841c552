"""The HTML pages: the single page at / (the widget at /embed comes with its own issue)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from .service import RelayService

__all__ = ["bp"]

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    service = current_app.extensions["relay"]
    assert isinstance(service, RelayService)
    return render_template(
        "index.html",
        backend=service.backend,
        heartbeat_ms=int(service.settings.heartbeat_interval * 1000),
        static_version=current_app.config.get("STATIC_VERSION", ""),
    )
