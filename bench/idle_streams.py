"""Memory per idle SSE stream in one gevent worker: Relay vs a queue-per-stream baseline.

Relay's hub gives each connection a cursor and a wake-up flag instead of a
queue (see relay/hub.py). This opens 2,000 streams on one prediction that
stays `starting` (so nothing is sent after the first bytes), and divides the
worker's RSS growth by the number of streams. The baseline, bench/apps/naive_app.py,
is measured the same way under the same gunicorn settings in the same run.

    python -m bench.idle_streams                  # full run, ~3 minutes
    python -m bench.idle_streams --streams 500 --repeats 1 --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.common.output import machine, progress, results_header, save_results, summarize
from bench.common.servers import HEARTBEAT, BenchEmulator, BenchGunicorn, relay_env
from bench.load.memory import profile, rss
from bench.load.processes import IdleClients

RESULT_FILE = "idle-streams.json"
BAR_KB = 20.0  # Relay must stay at or under this many KB of RSS per idle stream


def open_streams(server: BenchGunicorn, url: str, streams: int, warmup: int, settle: float,
                 concurrency: int) -> dict[str, Any]:
    """Warm up, measure, open `streams` more, measure again: the worker's growth per stream."""
    worker = server.worker()
    clients = IdleClients(url)
    try:
        warm = clients.open(warmup)
        if warm["failures"]:
            raise RuntimeError(f"warm-up streams failed: {warm}")
        time.sleep(settle)
        before = rss(worker)
        opened = clients.open(streams, concurrency)
        time.sleep(settle)
        after = rss(worker)
        health = httpx.get(server.url + "/healthz", timeout=30).json()
    finally:
        clients.close()
    if opened["failures"]:
        raise RuntimeError(f"{opened['failures']} of {streams} streams failed: {opened['failure_kinds']}\n"
                           f"{server.log()}")
    open_now = opened["open"]  # the client's count is cumulative
    new = open_now - warm["open"]
    if health.get("streams") is not None and health["streams"] != open_now:
        raise RuntimeError(f"the server counts {health['streams']} open streams, the clients {open_now}")
    return {
        "streams": new,
        "warmup_streams": warmup,
        "open_seconds": opened["seconds"],
        "before": before,
        "after": after,
        "kb_per_stream": (after["rss"] - before["rss"]) / new / 1024,
        "uss_kb_per_stream": (after["uss"] - before["uss"]) / new / 1024,
        "server_streams": health.get("streams"),
    }


def relay_run(streams: int, warmup: int, settle: float, concurrency: int,
              upstream: str | None = None) -> dict[str, Any]:
    """Relay with its embedded emulator (the no-token default), or with `upstream` as Replicate's URL."""
    env = relay_env(RELAY_HEARTBEAT_INTERVAL=HEARTBEAT, RELAY_STREAM_MAX_AGE="3600",
                    RELAY_WATCHER_IDLE_TIMEOUT="3600", RELAY_POLL_INTERVAL="1")
    if upstream is not None:
        env["REPLICATE_BASE_URL"] = upstream
    with BenchGunicorn("wsgi:app", env) as server:
        # One prediction that stays `starting` for the whole run; every stream follows it.
        created = httpx.post(server.url + "/api/predictions", timeout=30, json={
            "model": "relay/image-demo", "input": {"prompt": "idle", "boot_delay": 300}})
        created.raise_for_status()
        url = server.url + created.json()["stream_url"]
        return open_streams(server, url, streams, warmup, settle, concurrency)


def relay_upstream_run(streams: int, warmup: int, settle: float, concurrency: int) -> dict[str, Any]:
    """Relay as in production: the upstream API is another process, so no emulator is mounted."""
    with BenchEmulator() as emulator:
        return relay_run(streams, warmup, settle, concurrency, upstream=emulator.url)


def naive_run(streams: int, warmup: int, settle: float, concurrency: int,
              mounted: bool = False) -> dict[str, Any]:
    app = f"bench.apps.naive_app:create_app(mounted={mounted})"
    with BenchGunicorn(app, {"RELAY_HEARTBEAT_INTERVAL": HEARTBEAT}) as server:
        url = server.url + "/api/predictions/idle/events"
        return open_streams(server, url, streams, warmup, settle, concurrency)


def naive_mounted_run(streams: int, warmup: int, settle: float, concurrency: int) -> dict[str, Any]:
    """The baseline behind a DispatcherMiddleware, as Relay mounts its embedded emulator."""
    return naive_run(streams, warmup, settle, concurrency, mounted=True)


DESIGNS: dict[str, Callable[[int, int, float, int], dict[str, Any]]] = {
    "relay": relay_run,
    "relay_external_upstream": relay_upstream_run,
    "naive": naive_run,
    "naive_behind_dispatcher": naive_mounted_run,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=20, help="streams opened before the first measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before each measurement")
    parser.add_argument("--concurrency", type=int, default=100, help="connections opened at a time")
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated, of: " + ", ".join(DESIGNS))
    parser.add_argument("--no-diagnosis", action="store_true",
                        help="skip the short probed run per design (bench/stream_memory.py --probe-depth)")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()

    designs = {name: DESIGNS[name] for name in args.designs.split(",")}
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    info = machine()
    total = args.repeats * len(designs)
    for repeat in range(args.repeats):
        for design, run in designs.items():  # interleaved: noise on the machine hits all alike
            progress(f"[{len(runs) + 1}/{total}] repeat {repeat + 1}: {design}, {args.streams} streams "
                     "on a fresh server")
            result = run(args.streams, args.warmup, args.settle, args.concurrency)
            result.update(design=design, repeat=repeat)
            runs.append(result)
            progress(f"    {result['kb_per_stream']:.2f} KB/stream RSS ({result['uss_kb_per_stream']:.2f} USS), "
                     f"{result['streams']} opened in {result['open_seconds']} s")

    diagnosis: dict[str, Any] = {}
    if not args.no_diagnosis:
        for design in designs:
            progress(f"diagnosis: {design}, 100 streams with the call-depth probe on")
            found = profile(design, streams=100, warmup=args.warmup, probe_depth=True)
            # Only the call chain: the probe's own bookkeeping inflates the memory figures of this run.
            diagnosis[design] = found.get("deepest_chain", {})

    table = {}
    for design in designs:
        mine = [r for r in runs if r["design"] == design]
        table[design] = {
            "kb_per_stream": {**summarize([r["kb_per_stream"] for r in mine]),
                              "runs": [round(r["kb_per_stream"], 2) for r in mine]},
            "uss_kb_per_stream": {**summarize([r["uss_kb_per_stream"] for r in mine]),
                                  "runs": [round(r["uss_kb_per_stream"], 2) for r in mine]},
            "rss_before_mb_median": statistics.median(r["before"]["rss"] for r in mine) / 2**20,
        }
    medians = {design: row["kb_per_stream"]["median"] for design, row in table.items()}
    relay_kb = medians["relay"]
    ratios = {f"{design}/naive": kb / medians["naive"] for design, kb in medians.items() if design != "naive"}
    if "relay_external_upstream" in medians:
        ratios["relay/relay_external_upstream"] = relay_kb / medians["relay_external_upstream"]
    payload = {
        **results_header("idle_streams", info),
        "settings": {"streams": args.streams, "warmup": args.warmup, "repeats": args.repeats,
                     "settle_s": args.settle, "concurrency": args.concurrency,
                     "heartbeat_s": float(HEARTBEAT), "workers": 1, "worker_class": "gevent"},
        "table": table,
        "ratios": ratios,
        "bar": {"relay_kb_per_stream_max": BAR_KB, "met": relay_kb <= BAR_KB},
        "runs": runs,
        "diagnosis": diagnosis,
        "duration_s": round(time.monotonic() - started, 1),
    }

    print(f"\nWorker RSS per idle stream at {args.streams} streams (median of {args.repeats}; min-max)")
    for design, row in table.items():
        kb = row["kb_per_stream"]
        print(f"  {design:<24} {kb['median']:6.2f} KB  ({kb['min']:.2f}-{kb['max']:.2f})")
    for key, value in ratios.items():
        print(f"  {key:<30} {value:.2f}")
    print(f"  bar relay <= {BAR_KB} KB/stream: {'met' if relay_kb <= BAR_KB else 'MISSED'}")
    if not args.quick:
        save_results(RESULT_FILE, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
