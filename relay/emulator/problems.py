"""Errors in Replicate's shape: RFC 7807 problem documents.

Every error the emulator answers goes through :class:`Problem`, so clients see
one consistent body (`detail`, `status`, `title`, sometimes `invalid_fields`)
with the `application/problem+json` media type, exactly as they would from
api.replicate.com.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Response

PROBLEM_MIMETYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def default_title(status: int) -> str:
    """A short human title for an HTTP status the emulator may answer."""
    return _TITLES.get(status, "Error")


@dataclass(frozen=True)
class InvalidField:
    """One entry of a 422 answer's `invalid_fields` list."""

    type: str
    field: str
    description: str

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "field": self.field, "description": self.description}


@dataclass(eq=False)  # exceptions must stay hashable
class Problem(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    status: int
    detail: str
    title: str | None = None
    invalid_fields: list[InvalidField] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # more top-level fields (e.g. retry_after)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detail": self.detail,
            "status": self.status,
            "title": self.title or default_title(self.status),
        }
        if self.invalid_fields:
            out["invalid_fields"] = [f.as_json() for f in self.invalid_fields]
        out.update(self.extra)
        return out

    def response(self) -> Response:
        resp = Response(json.dumps(self.body()), status=self.status, mimetype=PROBLEM_MIMETYPE)
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def not_found() -> Problem:
    return Problem(404, "Not found.")


def validation_failed(fields: list[InvalidField]) -> Problem:
    """Replicate lists each bad field as a `- field: description` line in `detail`.

    Problems with the body itself (a missing `version`, an unknown key) have an
    empty `field` and their line is just `- description`.
    """
    detail = "".join(f"- {f.field}: {f.description}\n" if f.field else f"- {f.description}\n" for f in fields)
    return Problem(422, detail, title="Input validation failed", invalid_fields=fields)
