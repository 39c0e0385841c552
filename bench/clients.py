"""Simulated browsers and pollers, in a process of their own so that the server's
memory and event loop hold only the server's work. Each mode prints JSON on stdout.

    python bench/clients.py follow --base URL --count N --input JSON
        create a prediction through Relay (POST /api/predictions), open N SSE
        streams on its stream_url at once, read each one to `event: done`.

    python bench/clients.py poll --base URL --count N --interval S --input JSON
        the seed's design: create a prediction on the (emulated) Replicate API
        and let N greenlets each poll GET /v1/predictions/<id> through the
        `replicate` client every S seconds until it is terminal.

    python bench/clients.py idle --url URL
        hold idle streams open with raw sockets; commands on stdin:
        `open N [C]` opens N more, C at a time, and waits for each one's first
        bytes; `close` ends.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import httpx  # noqa: E402
from httpx_sse import connect_sse  # noqa: E402
from servers import raise_file_limit  # noqa: E402

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
MODEL = "relay/image-demo"


def follow(base: str, count: int, prediction_input: dict[str, Any], timeout: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    with httpx.Client(base_url=base, limits=limits, timeout=httpx.Timeout(timeout, connect=10)) as client:
        created = client.post("/api/predictions", json={"model": MODEL, "input": prediction_input})
        created.raise_for_status()
        body = created.json()
        started = time.monotonic()

        def subscriber() -> dict[str, Any]:
            seen: dict[str, Any] = {"events": 0, "snapshots": 0, "status": None, "done": False}
            try:
                with connect_sse(client, "GET", body["stream_url"]) as source:
                    source.response.raise_for_status()
                    seen["connected_after"] = time.monotonic() - started
                    for event in source.iter_sse():
                        seen["events"] += 1
                        if event.event == "message":
                            seen["snapshots"] += 1
                            seen["status"] = json.loads(event.data)["status"]
                        elif event.event == "done":
                            seen["done"] = True
                            break
            except Exception as error:  # reported, not raised: one broken stream must not hide the rest
                seen["error"] = f"{type(error).__name__}: {error}"
            return seen

        jobs = [gevent.spawn(subscriber) for _ in range(count)]
        gevent.joinall(jobs, timeout=timeout)
        results = [job.value or {"error": "timed out"} for job in jobs]
    return {
        "id": body["id"],
        "subscribers": count,
        "completed": sum(1 for r in results if r.get("done")),
        "errors": sorted({r["error"] for r in results if "error" in r}),
        "final_status": sorted({str(r.get("status")) for r in results}),
        "snapshots_per_subscriber": _spread([r["snapshots"] for r in results if "snapshots" in r]),
        "all_connected_after_s": max((r.get("connected_after", 0.0) for r in results), default=0.0),
        "elapsed_s": time.monotonic() - started,
    }


def poll(base: str, count: int, interval: float, prediction_input: dict[str, Any],
         timeout: float) -> dict[str, Any]:
    import replicate

    # One shared client, as in the seed (module-level `replicate` calls), with a pool big enough
    # that no poller waits for a connection.
    transport = httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10))
    client = replicate.Client("bench-token", base_url=base, timeout=httpx.Timeout(timeout),
                              transport=transport)
    prediction = client.models.predictions.create(model=MODEL, input=prediction_input)
    started = time.monotonic()

    def poller() -> dict[str, Any]:
        gets = 0
        status = prediction.status
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gets += 1
            status = client.predictions.get(prediction.id).status
            if status in TERMINAL:
                break
            gevent.sleep(interval)
        return {"gets": gets, "status": status}

    jobs = [gevent.spawn(poller) for _ in range(count)]
    gevent.joinall(jobs, timeout=timeout + 5)
    results = [job.value or {"gets": 0, "status": "timed out"} for job in jobs]
    return {
        "id": prediction.id,
        "subscribers": count,
        "completed": sum(1 for r in results if r["status"] in TERMINAL),
        "final_status": sorted({str(r["status"]) for r in results}),
        "client_gets": sum(r["gets"] for r in results),
        "gets_per_subscriber": _spread([r["gets"] for r in results]),
        "elapsed_s": time.monotonic() - started,
    }


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "max": 0}
    return {"min": min(values), "max": max(values)}


class IdleStreams:
    """Raw-socket SSE connections that read their first bytes and then just sit there."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.sockets: list[socket.socket] = []
        self.failures: list[str] = []

    def _request(self) -> bytes:
        return (f"GET {self.target} HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
                "Accept: text/event-stream\r\n\r\n").encode()

    def _open_one(self) -> None:
        sock = socket.create_connection(self.address, timeout=60)
        try:
            sock.sendall(self._request())
            received = b""
            # The status line, the headers and the first body chunk (chunk size line + bytes).
            while b"\r\n\r\n" not in received or received.count(b"\r\n") < 6:
                data = sock.recv(4096)
                if not data:
                    raise ConnectionError("closed before the first bytes")
                received += data
            if not received.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(received.split(b"\r\n", 1)[0].decode(errors="replace"))
        except Exception as error:
            sock.close()
            self.failures.append(f"{type(error).__name__}: {error}")
            return
        self.sockets.append(sock)

    def open(self, count: int, concurrency: int = 100) -> None:
        pool = gevent.pool.Pool(concurrency)
        for _ in range(count):
            pool.spawn(self._open_one)
        pool.join(timeout=120)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def idle(url: str) -> None:
    streams = IdleStreams(url)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "open":
            started = time.monotonic()
            streams.open(int(args[0]), *(int(a) for a in args[1:2]))
            print(json.dumps({"open": len(streams.sockets), "failures": len(streams.failures),
                              "failure_kinds": sorted(set(streams.failures))[:5],
                              "seconds": round(time.monotonic() - started, 2)}), flush=True)
        elif command == "close":
            break
    streams.close()
    print(json.dumps({"closed": True}), flush=True)


def main() -> None:
    raise_file_limit()
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["follow", "poll", "idle"])
    parser.add_argument("--base", help="Relay's URL (follow) or the Replicate API's URL (poll)")
    parser.add_argument("--url", help="the stream URL (idle)")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--input", default="{}", help="the prediction's input, as JSON")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if args.mode == "follow":
        print(json.dumps(follow(args.base, args.count, json.loads(args.input), args.timeout)))
    elif args.mode == "poll":
        print(json.dumps(poll(args.base, args.count, args.interval, json.loads(args.input), args.timeout)))
    else:
        idle(args.url)


if __name__ == "__main__":
    main()
