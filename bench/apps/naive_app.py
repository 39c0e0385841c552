"""The naive SSE design, as a baseline for bench/idle_streams.py.

Each stream is a generator blocked on a `gevent.queue.Queue` of its own, with
a heartbeat whenever `get` times out; a publisher would put events into every
subscriber's queue. This is the pattern most Flask SSE examples use.

    gunicorn -k gevent -w 1 -c gunicorn.conf.py 'bench.apps.naive_app:create_app()'

`create_app(mounted=True)` puts the app behind a werkzeug DispatcherMiddleware
with a second app at /emulator, the way Relay mounts its embedded emulator, so
the benchmark can show what that one extra layer costs per stream.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import gevent.queue
from flask import Flask, Response, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware


def create_app(mounted: bool = False) -> Flask:
    heartbeat = float(os.environ.get("RELAY_HEARTBEAT_INTERVAL", "15"))
    subscribers: dict[str, set[gevent.queue.Queue[bytes]]] = {}
    app = Flask(__name__)

    def publish(prediction_id: str, data: bytes) -> None:
        """What a watcher would call: one put per subscriber."""
        for queue in subscribers.get(prediction_id, ()):
            queue.put(data)

    @app.get("/api/predictions/<prediction_id>/events")
    def events(prediction_id: str) -> Response:
        queue: gevent.queue.Queue[bytes] = gevent.queue.Queue()
        queue.put(b'data: {"id": "%s", "status": "starting"}\n\n' % prediction_id.encode())

        def stream() -> Iterator[bytes]:
            subscribers.setdefault(prediction_id, set()).add(queue)
            try:
                yield b"retry: 2000\n: naive\n\n"
                while True:
                    try:
                        yield queue.get(timeout=heartbeat)
                    except gevent.queue.Empty:
                        yield b": hb\n\n"
            finally:
                subscribers[prediction_id].discard(queue)

        return Response(stream(), content_type="text/event-stream; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/healthz")
    def health() -> Response:
        return jsonify(status="ok", streams=sum(len(s) for s in subscribers.values()))

    app.extensions["publish"] = publish
    if mounted:
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/emulator": Flask("mounted")})  # type: ignore[method-assign]
    return app
