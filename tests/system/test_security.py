"""Tokens never reach a real server's logs: gunicorn's access log and `flask run`'s request lines.

(The headers, cross-site and CORS rules are tested in-process: tests/app/test_security.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from testbed import TEST_SECRET, FlaskDevServer, RelayServer, wait_until
from testbed.sse import follow

IMAGE = {"prompt": "a lighthouse", "steps": 3, "step_delay": 0.01, "boot_delay": 0}
SLOW = {"prompt": "slow", "steps": 200, "step_delay": 0.05, "boot_delay": 0}


def create(client: httpx.Client, **input: Any) -> httpx.Response:
    return client.post("/api/predictions", json={"model": "relay/image-demo", "input": input or IMAGE})


# -- tokens in logs -------------------------------------------------------------------------------

def exercise_tokens(client: httpx.Client) -> list[str]:
    """Create, stream, resume, multiplex and cancel; the tokens that travelled in URLs."""
    done = create(client).json()
    events = follow(client, done["stream_url"])
    client.get(done["stream_url"], headers={"Last-Event-ID": events[0].id})
    slow = create(client, **SLOW).json()
    token = slow["stream_url"].split("token=")[1]
    with client.stream("GET", f"/api/events?watch={token}&watch={done['stream_url'].split('token=')[1]}") as many:
        assert many.status_code == 200
        next(many.iter_bytes())
    with client.stream("GET", f"/api/prediction?id={slow['id']}&token={token}") as seed:
        assert seed.status_code == 200
    assert client.post(slow["cancel_url"]).status_code == 200
    client.get(f"/api/predictions/{slow['id']}/events?token={token}x")  # a refused one, too
    return [url.split("token=")[1] for p in (done, slow) for url in (p["stream_url"], p["cancel_url"])]


def test_tokens_never_reach_the_gunicorn_logs(api: httpx.Client, relay_server: RelayServer) -> None:
    tokens = exercise_tokens(api)
    wait_until(lambda: relay_server.log().count("/cancel") >= 1 and "POST /api/predictions" in relay_server.log())
    log = relay_server.log()
    for token in tokens:
        assert token not in log
        assert token.split(".")[-1] not in log  # not even the signature part
    assert "token=" not in log or "token=[redacted]" in log


def test_tokens_never_reach_the_dev_server_logs(tmp_path: Path) -> None:
    """`flask run` (werkzeug) logs the request line with its query string; Relay blanks the tokens."""
    server = FlaskDevServer({"SECRET_KEY": TEST_SECRET, "RELAY_INSTANCE_PATH": str(tmp_path / "i"),
                             "RELAY_RATE_LIMIT": "1000/minute", "RELAY_HEARTBEAT_INTERVAL": "1",
                             "RELAY_POLL_INTERVAL": "0.1"})
    with server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            tokens = exercise_tokens(client)
        wait_until(lambda: "token=[redacted]" in server.log() and "/cancel" in server.log())
    log = server.log()
    assert "GET /api/predictions/" in log  # the request lines are there...
    for token in tokens:
        assert token not in log  # ...without their tokens
    assert "watch=[redacted]" in log
