"""The Server-Sent Events wire format, encoded strictly.

Rules from the WHATWG spec that naive encoders get wrong: data is split into
`data:` lines only on CR, LF and CRLF (not on the other characters
`str.splitlines()` splits on); `id` and `event` can never carry CR, LF or NUL;
`retry` is digits only; an id of "0" is a real id and must be sent.
"""

from __future__ import annotations

import re

__all__ = ["SSEEncodingError", "encode_comment", "encode_event", "encode_fields", "encode_retry"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\x00]")


class SSEEncodingError(ValueError):
    """A value cannot be sent in this field without breaking the stream."""


def _check_field(name: str, value: str) -> str:
    if _FORBIDDEN_IN_FIELD.search(value):
        raise SSEEncodingError(f"SSE {name} may not contain CR, LF or NUL: {value!r}")
    return value


def encode_fields(data: str, *, event: str | None = None) -> bytes:
    """The `event:` and `data:` lines of an event and its closing blank line, without `id:`."""
    lines: list[str] = []
    if event is not None:
        lines.append(f"event: {_check_field('event', event)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """One whole event; `id` may be any string without CR/LF/NUL, including "0"."""
    body = encode_fields(data, event=event)
    if id is None:
        return body
    return f"id: {_check_field('id', id)}\n".encode() + body


def encode_comment(text: str = "") -> bytes:
    """Comment lines (ignored by readers; keep proxies from closing an idle stream).

    No blank line follows: a blank line would end an empty event, which some
    client libraries hand to their users as an event with no data.
    """
    return "".join(f": {line}\n" if line else ":\n" for line in _LINE_BREAK.split(text)).encode()


def encode_retry(milliseconds: int) -> bytes:
    """The reconnection delay a browser's EventSource should use (a field line, no blank line)."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int) or milliseconds < 0:
        raise SSEEncodingError(f"SSE retry must be a non-negative whole number: {milliseconds!r}")
    return f"retry: {milliseconds}\n".encode()
