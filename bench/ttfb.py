"""Time to first byte: how soon a stream (and a create) answers, beside baselines.

A browser's EventSource shows nothing until the stream's first bytes arrive,
and a proxy (Heroku's router: 30 s) drops a request that sends nothing for too
long. A client in another process (`clients.py ttfb`) sends requests one after
another, each on a new TCP connection, and times from just before `connect` to
the first byte of the answer (the status line) and to the first body bytes
(for a stream, its `retry:` line; for a create, the whole JSON answer).

- Stream, Relay: `GET /api/predictions/<id>/events?token=…` of a prediction
  that stays `starting` (token check, resume lookup, subscription, first chunk).
- Stream, baseline: the naive queue-per-stream app (bench/apps/naive_app.py) under
  the same gunicorn settings.
- Create, Relay: `POST /api/predictions` (validation, rate limit, the
  upstream create over HTTP through the `replicate` client, a watcher started,
  two tokens signed).
- Create, baseline: the same create sent straight to the embedded emulator
  (`POST /emulator/v1/models/relay/image-demo/predictions`): the upstream
  share of Relay's create.

Both servers use RELAY_HEARTBEAT_INTERVAL=1, so that the streams the client
abandons end within a second. The designs run interleaved, repeated.

    python -m bench.ttfb                 # ~1 minute
    python -m bench.ttfb --repeats 1 --streams 100 --creates 50 --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from bench.common.output import (
    bar,
    latency_summary,
    machine,
    progress,
    pyplot,
    results_header,
    save_plot,
    save_results,
    summarize,
)
from bench.common.servers import BenchGunicorn, emulator_token, relay_env
from bench.load.processes import run_client

RESULT_FILE = "ttfb.json"
PLOT_FILE = "bench-ttfb.png"
CREATE_INPUT = {"prompt": "ttfb", "steps": 1, "step_delay": 0, "boot_delay": 0}
LABELS = {"relay_stream": "stream, Relay", "naive_stream": "stream, naive app (baseline)",
          "relay_create": "create, Relay (POST /api/predictions)",
          "emulator_create": "create, upstream alone (the emulator's own create)"}


def measure(kind: str, relay: BenchGunicorn, naive: BenchGunicorn, stream_url: str, count: int) -> dict[str, Any]:
    timeout = 30 + count * 0.5
    if kind == "relay_stream":
        args = ["--url", relay.url + stream_url]
    elif kind == "naive_stream":
        args = ["--url", naive.url + "/api/predictions/ttfb/events"]
    elif kind == "relay_create":
        args = ["--url", relay.url + "/api/predictions",
                "--body", json.dumps({"model": "relay/image-demo", "input": CREATE_INPUT})]
    else:
        args = ["--url", relay.url + "/emulator/v1/models/relay/image-demo/predictions",
                "--body", json.dumps({"input": CREATE_INPUT}), "--token", emulator_token()]
    result = run_client("ttfb", *args, "--count", str(count), timeout=timeout)
    expected = "201" if kind.endswith("create") else "200"
    if set(result["statuses"]) != {expected}:
        raise RuntimeError(f"{kind}: answers {result['statuses']}, expected all {expected}")
    return result


def plot(payload: dict[str, Any]) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for kind, label in LABELS.items():
        values = sorted(v * 1000 for run in payload["runs"] if run["kind"] == kind for v in run["first_byte_s"])
        if values:
            axis.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=f"{label} (n={len(values)})")
    axis.set_xscale("log")
    axis.set_xlabel("time to first byte, from connect (ms, log scale)")
    axis.set_ylabel("fraction of requests")
    axis.set_title("Time to first byte, all repeats pooled")
    axis.legend(fontsize=7, loc="lower right")
    axis.grid(True, which="both", alpha=0.3)
    return str(save_plot(figure, PLOT_FILE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1000, help="stream requests per design per repeat")
    parser.add_argument("--creates", type=int, default=300, help="create requests per design per repeat")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()

    started = time.monotonic()
    info = machine()
    env = relay_env(RELAY_HEARTBEAT_INTERVAL="1", RELAY_STREAM_MAX_AGE="3600", RELAY_WATCHER_IDLE_TIMEOUT="3600")
    kinds = list(LABELS)
    counts = {k: args.streams if k.endswith("stream") else args.creates for k in kinds}
    runs = []
    with BenchGunicorn("wsgi:app", env) as relay, \
            BenchGunicorn("bench.apps.naive_app:create_app()", {"RELAY_HEARTBEAT_INTERVAL": "1"}) as naive, \
            bar(args.repeats * sum(counts.values()), "ttfb", unit="req") as progress_bar:
        created = httpx.post(relay.url + "/api/predictions", timeout=30, json={
            "model": "relay/image-demo", "input": {"prompt": "ttfb", "boot_delay": 300}})
        created.raise_for_status()
        stream_url = created.json()["stream_url"]
        # One of each first, unmeasured: imports, connection pools and caches warm up.
        for kind in kinds:
            measure(kind, relay, naive, stream_url, 5)
        for repeat in range(args.repeats):
            for kind in kinds:  # interleaved: a noisy moment on the machine hits all alike
                progress(f"repeat {repeat + 1}: {LABELS[kind]}, {counts[kind]} requests")
                result = measure(kind, relay, naive, stream_url, counts[kind])
                result.update(kind=kind, repeat=repeat, first_byte=latency_summary(result["first_byte_s"]),
                              first_body=latency_summary(result["first_body_s"]))
                runs.append(result)
                progress_bar.update(counts[kind])
                time.sleep(1.5)  # abandoned streams end (heartbeat 1 s); finished predictions' watchers stop
    table = {}
    for kind in kinds:
        mine = [r for r in runs if r["kind"] == kind]
        pooled_byte = [v for r in mine for v in r["first_byte_s"]]
        pooled_body = [v for r in mine for v in r["first_body_s"]]
        table[kind] = {"first_byte": latency_summary(pooled_byte), "first_body": latency_summary(pooled_body),
                       "per_repeat": {stat: summarize([r["first_byte"][stat] for r in mine])
                                      for stat in ("p50_ms", "p99_ms")}}
    ratios = {
        "relay/naive stream, p50": table["relay_stream"]["first_byte"]["p50_ms"]
        / table["naive_stream"]["first_byte"]["p50_ms"],
        "relay/naive stream, p99": table["relay_stream"]["first_byte"]["p99_ms"]
        / table["naive_stream"]["first_byte"]["p99_ms"],
        "relay create / emulator create, p50": table["relay_create"]["first_body"]["p50_ms"]
        / table["emulator_create"]["first_body"]["p50_ms"],
        "relay create / emulator create, p99": table["relay_create"]["first_body"]["p99_ms"]
        / table["emulator_create"]["first_body"]["p99_ms"],
    }
    payload = {
        **results_header("ttfb", info),
        "settings": {"repeats": args.repeats, "streams": args.streams, "creates": args.creates,
                     "create_input": CREATE_INPUT, "heartbeat_s": 1.0, "workers": 1, "worker_class": "gevent"},
        "table": table,
        "ratios": ratios,
        "runs": [{k: v for k, v in r.items()} for r in runs],
        "duration_s": round(time.monotonic() - started, 1),
    }
    print(f"\nTime to first byte over {args.repeats} repeats (pooled), ms")
    for kind, row in table.items():
        b, body = row["first_byte"], row["first_body"]
        what = "first body bytes" if kind.endswith("stream") else "whole answer"
        print(f"  {kind:<16} first byte p50 {b['p50_ms']:6.2f} p99 {b['p99_ms']:7.2f}   "
              f"{what} p50 {body['p50_ms']:6.2f} p99 {body['p99_ms']:7.2f}")
    for key, value in ratios.items():
        print(f"  {key:<38} {value:.2f}")
    if not args.quick:
        save_results(RESULT_FILE, payload, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
