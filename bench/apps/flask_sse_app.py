"""Flask-SSE on Redis under gunicorn's gevent worker: a baseline of bench/alternatives.py.

The extension's stock `sse` blueprint, unchanged, at /stream: each stream
subscribes to a Redis pub/sub channel with a connection of its own and
yields whatever is published there. Publishing is the extension's own
`sse.publish`, reached here through a small route so that the benchmark
times it the way it times Relay's webhook (one HTTP POST to the server).

    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -k gevent -w 1 -c gunicorn.conf.py \
        'bench.apps.flask_sse_app:create_app()'

Routes: `GET /stream?channel=C` (stock; sends nothing until the first message),
`POST /publish?channel=C` (the body, as text, is published as one event's data)
and `GET /healthz` (open streams = subscribers Redis counts on the channels asked for).
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, jsonify, request
from flask_sse import sse


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["REDIS_URL"] = os.environ["REDIS_URL"]
    app.register_blueprint(sse, url_prefix="/stream")
    counter = redis.Redis.from_url(os.environ["REDIS_URL"])

    @app.post("/publish")
    def publish() -> Response:
        channel = request.args.get("channel", "sse")
        delivered = sse.publish(request.get_data(as_text=True), channel=channel)
        return jsonify(delivered=delivered)

    @app.get("/healthz")
    def health() -> Response:
        names = request.args.getlist("channel") or ["sse"]
        counts = counter.pubsub_numsub(*names)
        return jsonify(status="ok", streams=sum(int(n) for _, n in counts))

    return app
