"""A scripted stand-in for Replicate's HTTP API on 127.0.0.1, for tests of how Relay reacts.

Each GET of a prediction takes the next answer from a script (status, headers,
JSON body); the last answer repeats. A request whose "METHOD /path" is in `fixed`
gets that answer instead and leaves the script alone (a model's schema, read before
a create). Every request's arrival time is kept, so a test can check how long Relay
waited between two.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Answer", "ScriptedUpstream", "scripted_upstream"]


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedUpstream:
    def __init__(self, script: list[Answer], fixed: dict[str, Answer] | None = None) -> None:
        self.script = list(script)
        self.fixed = dict(fixed or {})
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.lock = threading.Lock()
        self.url = ""

    def next_answer(self, method: str, path: str) -> Answer:
        with self.lock:
            self.arrivals.append((time.monotonic(), method, path))
            if f"{method} {path}" in self.fixed:
                return self.fixed[f"{method} {path}"]
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def times(self, method: str = "GET") -> list[float]:
        with self.lock:
            return [when for when, m, _ in self.arrivals if m == method]


@contextmanager
def scripted_upstream(script: list[Answer], fixed: dict[str, Answer] | None = None) -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream(script, fixed)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            answer = upstream.next_answer(self.command, self.path)
            body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
