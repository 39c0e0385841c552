"""Logs to stdout (Heroku's log router reads it), one line per thing worth knowing.

Every line carries the request id (Heroku's router sends X-Request-ID; Relay
makes one otherwise, and returns it) and secrets are replaced by `[redacted]`
before anything is written, whatever code logged them.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from flask import Flask, Response, has_request_context, request

__all__ = ["assign_request_id", "configure_logging", "init_app", "install_log_redaction", "redact_tokens"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_ENVIRON_KEY = "relay.request_id"
# The one place URL tokens are blanked: `token=` (a stream or cancel link) and `watch=` (multiplexed).
_TOKEN_QUERY = re.compile(r"\b(token|watch)=[^&\s\"']+")


class _Context(logging.Filter):
    """Adds the request id and hides secrets and URL tokens in every record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request.environ.get(_ENVIRON_KEY, "-") if has_request_context() else "-"
        message = record.getMessage()
        cleaned = redact_tokens(message)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, "[redacted]")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Relay's loggers write to stdout at `level`, secrets redacted (idempotent per process)."""
    logger = logging.getLogger("relay")
    logger.setLevel(level)
    logger.propagate = False
    handler = next((h for h in logger.handlers if getattr(h, "_relay", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
        handler._relay = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    for old in [f for f in handler.filters if isinstance(f, _Context)]:
        handler.removeFilter(old)
    handler.addFilter(_Context(secrets))


def init_app(app: Flask) -> None:
    """Give every request an id, echoed in X-Request-ID and in every log line it causes."""

    # Kept in the WSGI environ, not in `g`: one lookup instead of two proxies each way (every
    # stream open pays for these hooks; bench/open_burst.py).
    @app.before_request
    def _assign_request_id() -> None:
        assign_request_id(request.environ)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        request_id = request.environ.get(_ENVIRON_KEY)
        if request_id is not None:
            response.headers.add("X-Request-ID", request_id)  # nothing else sets it: no lookup first
        return response


def assign_request_id(environ: dict[str, Any]) -> str:
    """The request's id: the router's X-Request-ID when it is usable, else a new one; kept in
    the environ (relay/stream_open.py assigns it before Flask would, and Flask keeps it)."""
    assigned = environ.get(_ENVIRON_KEY)
    if assigned is None:
        incoming = environ.get("HTTP_X_REQUEST_ID", "")  # the header (werkzeug raises inside for a missing one)
        assigned = environ[_ENVIRON_KEY] = incoming if incoming and _REQUEST_ID.match(incoming) \
            else os.urandom(16).hex()  # a uuid4's randomness
    assert isinstance(assigned, str)
    return assigned


def redact_tokens(text: str) -> str:
    """`text` with the values of `token=` and `watch=` query parameters blanked."""
    if "token=" not in text and "watch=" not in text:
        return text  # the common case, without the regex: gunicorn's access log runs this per atom
    return _TOKEN_QUERY.sub(r"\1=[redacted]", text)


class _RedactTokens(logging.Filter):
    """Blanks URL tokens in records of loggers Relay does not own (werkzeug, gunicorn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, MutableMapping):
            # gunicorn's access atoms: changed in place, so the mapping keeps its own type (its
            # lookups of `{header}i` atoms fold case and answer "-" for a missing one). Only the
            # atoms the format names are looked at: gunicorn makes some forty per request, one
            # per header, and writes a handful (Relay's own format never shows the query).
            atoms = record.args
            for key in _format_keys(record.msg) if isinstance(record.msg, str) else list(atoms):
                value = atoms.get(key)  # dict's own get: no "-" for a missing atom
                if isinstance(value, str) and ("token=" in value or "watch=" in value):
                    atoms[key] = redact_tokens(value)
        elif isinstance(record.args, Mapping):
            record.args = {k: redact_tokens(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


@functools.lru_cache(maxsize=16)
def _format_keys(message: str) -> tuple[str, ...]:
    """The `%(key)s` names of a %-style format (gunicorn's access format: one or two per process).

    `{header}i`/`{header}o` names are folded to lower case, as gunicorn stores them.
    """
    keys = (key.lower() if key.startswith("{") else key for key in _FORMAT_KEY.findall(message))
    return tuple(dict.fromkeys(keys))


_FORMAT_KEY = re.compile(r"%\(([^)]*)\)")


def install_log_redaction() -> None:
    """Blank URL tokens in the request lines of werkzeug's and gunicorn's loggers too."""
    # werkzeug: the dev server's request line; gunicorn.error: "Error handling request <uri>";
    # gunicorn.access: its format leaves the query out, but a custom one might not.
    for name in ("werkzeug", "gunicorn.error", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactTokens) for f in logger.filters):
            logger.addFilter(_RedactTokens())
