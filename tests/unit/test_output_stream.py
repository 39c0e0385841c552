"""Reading an upstream output stream that drops once mid-way (a local test server stands in)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from relay.hub import MemoryHub
from relay.output_stream import OutputStreams
from testbed import wait_until

TOKENS = [f" word{i}" for i in range(10)]


class _Upstream(BaseHTTPRequestHandler):
    """Replicate's stream format; the first connection is cut after 4 tokens."""

    connections: list[str | None] = []

    def do_GET(self) -> None:
        last = self.headers.get("Last-Event-ID")
        type(self).connections.append(last)
        start = int(last.split(":")[1]) + 1 if last else 0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        first_connection = len(type(self).connections) == 1
        for index in range(start, len(TOKENS)):
            self.wfile.write(f"id: 1690212292:{index}\nevent: output\ndata: {TOKENS[index]}\n\n".encode())
            self.wfile.flush()
            if first_connection and index == 3:
                return  # dropped without `done`
        self.wfile.write(b"id: 1690212292:99\nevent: done\ndata: {}\n\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream_url() -> Iterator[str]:
    _Upstream.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream/p"
    server.shutdown()
    server.server_close()


def test_a_dropped_upstream_stream_resumes_with_last_event_id_and_loses_nothing(upstream_url: str) -> None:
    hub = MemoryHub()
    ended: list[str] = []
    with httpx.Client() as client:
        streams = OutputStreams(hub, lambda: client, on_end=ended.append)
        streams.ensure("p", upstream_url)
        wait_until(lambda: ended == ["p"])
    outputs = [e.data["text"] for e in hub.channels.history("p") if e.kind == "output"]
    assert outputs == TOKENS
    assert _Upstream.connections == [None, "1690212292:3"]


def test_an_unreadable_stream_is_given_up_after_a_few_tries() -> None:
    hub = MemoryHub()
    ended: list[str] = []
    with httpx.Client() as client:
        streams = OutputStreams(hub, lambda: client, on_end=ended.append, max_attempts=2)
        streams.ensure("p", "http://127.0.0.1:9/nothing-listens-here")
        wait_until(lambda: ended == ["p"])
    assert hub.latest("p") is None
