"""Stream opens without Flask's request machinery: a reconnect storm's common case.

After a deploy every browser reconnects at once. Flask's per-request machinery
(a request context, routing, six hooks, a Response whose headers are checked
twice) costs more than the open itself: in one process an open costs 128 µs
through Flask and 29 µs here, a bare Flask view 60 µs (bench/open_cost.py;
bench/open_burst.py measures it under gunicorn).

So `GET /api/predictions/<id>/events?token=<token>` for a prediction this
process knows and that is not finished, with a valid token, is answered here by
the functions the Flask view uses (token check, resume ids, stream slot,
`RelayService.stream`) and with the headers Flask's hooks would add
(security.answer_headers, logs.assign_request_id). Everything else goes to Flask
untouched and is answered as always: a missing or bad token, other query
parameters, an unknown or finished prediction, a refused slot, HEAD, CORS
(its headers depend on the request's Origin), the embedded emulator's first
request (which teaches Relay its own address), and any error on the way.
tests/app/test_stream_open.py holds the two paths to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .api import STREAM_CONTENT_TYPE, STREAM_HEADERS, resume_ids
from .limits import address_key
from .logs import assign_request_id
from .security import AnswerHeaders
from .service import RelayService
from .slots import StreamSlots
from .upstream import Upstream

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["StreamOpener"]

_PREFIX = "/api/predictions/"
_SUFFIX = "/events"
# Exactly one query parameter, an itsdangerous URL-safe token (its alphabet; Relay's are ~90 long).
_QUERY = re.compile(r"token=([A-Za-z0-9_.-]{1,512})")
# Replicate's ids (and Relay's queued ones): anything else, a non-ASCII id above all (which
# Flask decodes from the environ's latin-1 first), is Flask's to route.
_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_OK = "200 OK"


class StreamOpener:
    """Answers the stream opens it can (returns the body), and None for Flask to answer."""

    def __init__(self, service: RelayService, slots: StreamSlots, headers: AnswerHeaders,
                 upstream: Upstream) -> None:
        self._service = service
        self._slots = slots
        self._upstream = upstream
        self._trust_proxies = headers.trust_proxies
        self._cors = headers.cors
        self._hsts = headers.hsts
        self._stream_headers = [*STREAM_HEADERS, ("Content-Type", STREAM_CONTENT_TYPE), *headers.data]
        self.served = 0  # opens answered here (tests check that the path is taken)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes] | None:
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
            return None
        prediction_id = path[len(_PREFIX):-len(_SUFFIX)]
        query = _QUERY.fullmatch(environ.get("QUERY_STRING", ""))
        if _ID.fullmatch(prediction_id) is None or query is None or self._cors \
                or self._upstream.base_url is None:
            return None
        service = self._service
        try:
            if not service.signer.grants(query[1], "stream", prediction_id) or not service.hub.knows(prediction_id):
                return None
            resumes = resume_ids(environ.get("HTTP_LAST_EVENT_ID"), 1)
            if resumes[0] is not None and service.hub.is_done(prediction_id):
                return None  # perhaps a resume after `done` (204): Flask's
        except Exception:
            return None  # the hub cannot answer (Redis is down): Flask's 503
        return self._open(environ, start_response, service, prediction_id, resumes)

    def _open(self, environ: WSGIEnvironment, start_response: StartResponse, service: RelayService,
              prediction_id: str, resumes: list[str | None]) -> Iterable[bytes] | None:
        if self._trust_proxies is not None:
            self._trust_proxies(environ)  # as Flask's hook does (if Flask answers after all, it changes nothing)
        try:
            slot = self._slots.acquire(address_key(environ.get("REMOTE_ADDR") or ""))
        except Exception:
            return None  # at the cap (Flask asks again and answers the 429), or Redis is down
        try:
            body = service.stream([prediction_id], resumes, multiplexed=False, on_close=slot.release)
        except Exception:
            body = None  # Flask opens it again, and answers whatever went wrong as it always does
        if body is None:
            # Also a resume after a `done` published since the check above: Flask answers the 204
            # (its metrics then count that one twice).
            slot.release()
            return None
        headers = [*self._stream_headers, ("X-Request-ID", assign_request_id(environ))]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(self._hsts)
        self.served += 1
        start_response(_OK, headers)
        return body

