"""A reconnect storm: 5,000 streams opened at the same moment, Relay beside the naive design.

After a deploy every browser reconnects at once. Each design runs under the
same gunicorn settings (one gevent worker) and gets bursts from a client in
another process (bench/load/burst.py: one epoll loop, all connects issued
first). Measured per burst:

- first byte: from each stream's own `connect` to the first byte of its answer
  (and to its first body bytes); p50 and p99 over the burst;
- CPU per open: the worker's CPU time (user + system, from /proc) from just
  before the burst until every stream has its first body bytes, divided by the
  streams opened; and CPU per close, from hanging up until the worker counts no
  open stream.

Relay's streams follow a prediction that stays `starting` (a new one for each
burst) with a valid token and no Last-Event-ID (token check, stream slot, headers,
request id, logging, metrics, subscription, first snapshot: relay/stream_open.py's
case). The baseline is bench/apps/naive_app.py. The
designs alternate burst by burst, so a noisy moment on the machine hits both.

    python -m bench.open_burst                      # ~4 minutes
    python -m bench.open_burst --streams 1000 --repeats 1 --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
import psutil

from bench.common.output import (
    latency_summary,
    machine,
    percentile,
    progress,
    pyplot,
    results_header,
    save_plot,
    save_results,
    summarize,
)
from bench.common.servers import BenchGunicorn, relay_env
from bench.load.processes import BurstClients
from testbed import wait_until

RESULT_FILE = "open-burst.json"
PLOT_FILE = "bench-open-burst.png"
# Relay's default heartbeat: a stream sends nothing else while it waits, so the worker notices
# a hung-up stream only at its next heartbeat, and each burst waits up to this long to end.
HEARTBEAT = "15"
LABELS = {"relay": "Relay", "naive": "naive app (baseline)"}


def cpu_seconds(worker: psutil.Process) -> float:
    times = worker.cpu_times()
    return float(times.user + times.system)


def open_streams(server: BenchGunicorn) -> int:
    streams: int = httpx.get(server.url + "/healthz", timeout=30).json()["streams"]
    return streams


def wait_for_no_streams(server: BenchGunicorn, timeout: float = 60) -> None:
    wait_until(lambda: open_streams(server) == 0, timeout=timeout, interval=0.1,
               what="the worker to count no open stream after the hang-up")


def waiting_prediction(server: BenchGunicorn) -> str:
    """The stream URL of a new prediction that stays `starting` for 300 s."""
    created = httpx.post(server.url + "/api/predictions", timeout=30, json={
        "model": "relay/image-demo", "input": {"prompt": "burst", "boot_delay": 300}})
    created.raise_for_status()
    return server.url + str(created.json()["stream_url"])


def one_burst(server: BenchGunicorn, clients: BurstClients, count: int) -> dict[str, Any]:
    worker = server.worker()
    before = cpu_seconds(worker)
    result = clients.burst(count)
    opened = cpu_seconds(worker)
    if result["failures"]:
        raise RuntimeError(f"{result['failures']} of {count} streams failed: {result['failure_kinds']}\n"
                           f"{server.log()}")
    clients.hang_up()
    wait_for_no_streams(server)
    closed = cpu_seconds(worker)
    result.update(cpu_open_ms=(opened - before) * 1000 / count, cpu_close_ms=(closed - opened) * 1000 / count,
                  first_byte=latency_summary(result["first_byte_s"]),
                  first_body=latency_summary(result["first_body_s"]))
    return result


def quantiles_ms(seconds: list[float]) -> list[float]:
    """The 0th to 100th percentiles in steps of 0.5, in ms: what the plot needs of 5,000 times."""
    return [round(percentile(seconds, step / 2) * 1000, 2) for step in range(201)]


def plot(payload: dict[str, Any]) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.2))
    bursts = payload["settings"]["repeats"]
    for design, label in LABELS.items():
        values = sorted(v for run in payload["runs"] if run["design"] == design
                        for v in run["first_byte_quantiles_ms"])
        if values:
            axis.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=f"{label} ({bursts} bursts)")
    axis.set_xscale("log")
    axis.set_xlabel("time to first byte, from each stream's connect (ms, log scale)")
    axis.set_ylabel("fraction of streams")
    axis.set_title(f"{payload['settings']['streams']:,} streams opened at once, all bursts pooled (percentiles)")
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(True, which="both", alpha=0.3)
    return str(save_plot(figure, PLOT_FILE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--streams", type=int, default=5000, help="streams per burst")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()

    started = time.monotonic()
    info = machine()
    env = relay_env(RELAY_HEARTBEAT_INTERVAL=HEARTBEAT, RELAY_STREAM_MAX_AGE="3600",
                    RELAY_WATCHER_IDLE_TIMEOUT="3600")
    runs: list[dict[str, Any]] = []
    with BenchGunicorn("wsgi:app", env) as relay, \
            BenchGunicorn("bench.apps.naive_app:create_app()", {"RELAY_HEARTBEAT_INTERVAL": HEARTBEAT}) as naive:
        urls = {"relay": waiting_prediction(relay), "naive": naive.url + "/api/predictions/burst/events"}
        servers = {"relay": relay, "naive": naive}
        clients = {design: BurstClients(url) for design, url in urls.items()}
        try:
            for design in LABELS:  # unmeasured: imports, caches and the worker's first greenlets warm up
                one_burst(servers[design], clients[design], 200)
            for repeat in range(args.repeats):
                # A prediction of its own for each Relay burst: one stays `starting` for at most
                # 300 s (the emulator's longest boot), and its end would reach the streams mid-burst.
                clients["relay"].follow(waiting_prediction(relay))
                for design in LABELS:
                    progress(f"burst {repeat + 1}/{args.repeats}: {LABELS[design]}, {args.streams} streams")
                    result = one_burst(servers[design], clients[design], args.streams)
                    result.update(design=design, repeat=repeat)
                    runs.append(result)
        finally:
            for client in clients.values():
                client.close()
    table: dict[str, Any] = {}
    for design in LABELS:
        mine = [r for r in runs if r["design"] == design]
        table[design] = {
            "first_byte": latency_summary([v for r in mine for v in r["first_byte_s"]]),
            "first_body": latency_summary([v for r in mine for v in r["first_body_s"]]),
            "p99_first_byte_per_burst_ms": summarize([r["first_byte"]["p99_ms"] for r in mine]),
            "cpu_open_ms": summarize([r["cpu_open_ms"] for r in mine]),
            "cpu_close_ms": summarize([r["cpu_close_ms"] for r in mine]),
            "all_open_s": summarize([r["all_open_s"] for r in mine]),
        }
    relay_row, naive_row = table["relay"], table["naive"]
    ratios = {
        "first byte p99, pooled (Relay / naive)": relay_row["first_byte"]["p99_ms"] / naive_row["first_byte"]["p99_ms"],
        "first byte p50, pooled (Relay / naive)": relay_row["first_byte"]["p50_ms"] / naive_row["first_byte"]["p50_ms"],
        "CPU per open, median (Relay / naive)": relay_row["cpu_open_ms"]["median"] / naive_row["cpu_open_ms"]["median"],
        "CPU per close, median (Relay / naive)": relay_row["cpu_close_ms"]["median"]
        / naive_row["cpu_close_ms"]["median"],
    }
    # Each Relay burst beside the naive burst right after it: a slow spell of the machine hits both.
    pairs = list(zip([r for r in runs if r["design"] == "relay"], [r for r in runs if r["design"] == "naive"],
                     strict=True))
    paired = {
        "first byte p99, per burst pair (Relay / naive)": summarize(
            [a["first_byte"]["p99_ms"] / b["first_byte"]["p99_ms"] for a, b in pairs]),
        "CPU per open, per burst pair (Relay / naive)": summarize(
            [a["cpu_open_ms"] / b["cpu_open_ms"] for a, b in pairs]),
    }
    payload = {
        **results_header("open_burst", info),
        "settings": {"repeats": args.repeats, "streams": args.streams, "heartbeat_s": float(HEARTBEAT),
                     "workers": 1, "worker_class": "gevent"},
        "table": table,
        "ratios": ratios,
        "paired_ratios": paired,
        # Per burst its percentiles, not its 5,000 raw times (the plot pools the bursts' percentiles).
        "runs": [{**{k: v for k, v in r.items() if k not in ("first_byte_s", "first_body_s")},
                  "first_byte_quantiles_ms": quantiles_ms(r["first_byte_s"])} for r in runs],
        "duration_s": round(time.monotonic() - started, 1),
    }
    print(f"\n{args.streams:,} streams opened at once, {args.repeats} bursts per design")
    for design, row in table.items():
        byte = row["first_byte"]
        print(f"  {LABELS[design]:<22} first byte p50 {byte['p50_ms']:7.1f} ms  p99 {byte['p99_ms']:7.1f} ms   "
              f"CPU per open {row['cpu_open_ms']['median']:.3f} ms  per close {row['cpu_close_ms']['median']:.3f} ms"
              f"   all open in {row['all_open_s']['median']:.2f} s")
    for key, value in ratios.items():
        print(f"  {key:<48} {value:.2f}")
    for key, stats in paired.items():
        print(f"  {key:<48} median {stats['median']:.2f} (min {stats['min']:.2f}, max {stats['max']:.2f})")
    if not args.quick:
        save_results(RESULT_FILE, payload, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
