"""What one stream open costs in Python, in one process: Relay beside the naive design.

bench/open_burst.py measures opens under gunicorn, where the server's own work
(accepting, parsing, writing, logging) is most of the cost and the machine's
noise is large. This calls each WSGI app directly, as a server would, and
reads the first chunk of each stream, holding `--streams` of them open (as a
storm does) before closing them all; CPU time per open, the median of
`--repeats` rounds. The collector is off while a round runs (collections would
land in one design's rounds or another's by chance; bench/open_burst.py has
them). Designs:

- Relay: the app as gunicorn calls it (relay/stream_open.py answers the open);
- Relay through Flask: `app.wsgi_app`, the same app without that path in front;
- the naive design (bench/apps/naive_app.py), a bare Flask view.

    python -m bench.open_cost               # ~30 s
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.apps.naive_app import create_app as naive_app
from bench.common.output import machine, progress, results_header, save_results
from testbed.inprocess import in_process_app, in_process_client

RESULT_FILE = "open-cost.json"
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _started(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Callable[[bytes], None]:
    if not status.startswith("200"):
        raise RuntimeError(f"the stream answered {status}")
    return lambda data: None


def environ_for(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {"REQUEST_METHOD": "GET", "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_ACCEPT": "text/event-stream",
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False}


def one_round(app: Wsgi, environ: dict[str, Any], streams: int) -> float:
    """CPU µs per open, `streams` opened and held; then all closed."""
    bodies = []
    started = time.process_time()
    for _ in range(streams):
        body = app({**environ, "wsgi.input": io.BytesIO()}, _started)
        next(iter(body))
        bodies.append(body)
    spent = time.process_time() - started
    for body in bodies:
        getattr(body, "close", lambda: None)()
    return spent * 1e6 / streams


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--streams", type=int, default=2000, help="streams held open per round")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ (a trial run)")
    args = parser.parse_args()

    started = time.monotonic()
    info = machine()
    # Polled once a minute: the prediction's watcher shares this process's CPU clock.
    relay = in_process_app(Path(tempfile.mkdtemp(prefix="open-cost-")), {
        "RELAY_POLL_INTERVAL": "60", "RELAY_HEARTBEAT_INTERVAL": "15", "RELAY_MAX_STREAMS_PER_CLIENT": "100000"})
    with in_process_client(relay) as client:
        created = client.post("/api/predictions", json={"model": "relay/image-demo",
                                                        "input": {"prompt": "open cost", "boot_delay": 300}})
        created.raise_for_status()
        stream_url = created.json()["stream_url"]
    designs: dict[str, tuple[Wsgi, str]] = {
        "relay": (relay, stream_url),
        "relay_flask_path": (relay.wsgi_app, stream_url),
        "naive": (naive_app(), "/api/predictions/cost/events"),
    }
    rounds: dict[str, list[float]] = {name: [] for name in designs}
    try:
        for app, url in designs.values():  # unmeasured: imports and caches warm up
            one_round(app, environ_for(url), 200)
        gc.collect()
        gc.disable()
        for repeat in range(args.repeats):
            progress(f"round {repeat + 1}/{args.repeats}")
            for name, (app, url) in designs.items():  # interleaved, so a slow moment hits every design
                rounds[name].append(one_round(app, environ_for(url), args.streams))
    finally:
        gc.enable()
        relay.extensions["relay"].shutdown()
    table = {name: {"median_us": statistics.median(values), "min_us": min(values), "max_us": max(values)}
             for name, values in rounds.items()}
    naive = table["naive"]["median_us"]
    ratios = {f"{name} / naive": row["median_us"] / naive for name, row in table.items() if name != "naive"}
    payload = {**results_header("open_cost", info),
               "settings": {"repeats": args.repeats, "streams": args.streams},
               "table": table, "ratios": ratios, "rounds_us": rounds,
               "duration_s": round(time.monotonic() - started, 1)}
    print(f"\nCPU per stream open, in-process, {args.streams:,} held open, median of {args.repeats} rounds")
    for name, row in table.items():
        print(f"  {name:<18} {row['median_us']:7.1f} µs  (min {row['min_us']:.1f}, max {row['max_us']:.1f})")
    for key, value in ratios.items():
        print(f"  {key:<26} {value:.2f}")
    if not args.quick:
        save_results(RESULT_FILE, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
