"""Connection churn: does a worker give back what 20,000 connect/resume/disconnect cycles took?

Browsers reconnect all the time (a phone changes networks, a tab wakes up, a
proxy closes an idle connection), each time with the Last-Event-ID it last saw.
This runs 20,000 such cycles against one gevent worker: connect to a
prediction's stream with a Last-Event-ID from its history, read until the first
replayed event, hang up. The prediction is kept moving by signed webhook
deliveries from the benchmark (webhook mode, bench/load/webhooks.py), one
every 0.5 s with logs of constant size: its history (256 events, pre-filled
before the first cycle) stays the same size, resumes replay real events, and a
stream whose client has gone is noticed at the next event. After every 1,000
cycles the benchmark waits until the server counts no stream but the
follower's, reads the worker's RSS (median of 5 samples), waits 1.5 s more
(so that housekeeping which runs every few seconds, such as Relay's heap
trim, has its turn) and reads it again: the bar is judged on that second,
settled reading.

Baseline in the same run: the naive queue-per-stream app (bench/apps/naive_app.py,
no resume: each cycle reads its first event), same gunicorn settings, its
heartbeat at 1 s so that abandoned streams end as quickly.

    python -m bench.churn                   # ~6.5 minutes
    python -m bench.churn --cycles 4000 --repeats 1 --quick
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common.output import bar, machine, progress, pyplot, results_header, save_plot, save_results, summarize
from bench.common.servers import BenchGunicorn, relay_env
from bench.load.memory import PROFILE_CONFIG, rss, take_figures
from bench.load.processes import ClientProcess
from bench.load.webhooks import Deliveries
from testbed import ROOT

RESULT_FILE = "churn.json"
PLOT_FILE = "bench-churn.png"
BAR_GROWTH = 0.05  # RSS after all cycles within 5% of RSS after the first 1,000
TRACE = False  # --trace: the worker runs under tracemalloc
LOG_SIZE = 400  # bytes of logs in every delivery: constant, so the history's size is too


class Ticker:
    """Sends the prediction a new state every `interval` seconds until stopped (at most `limit` times)."""

    def __init__(self, deliveries: Deliveries, prediction_id: str, interval: float = 0.5,
                 limit: int = 5000, log_size: int = LOG_SIZE) -> None:
        self.log_size = log_size
        self.deliveries = deliveries
        self.prediction_id = prediction_id
        self.count = 0
        self._stop = threading.Event()
        self._interval = interval
        self._limit = limit
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        self.count += 1
        logs = f"tick {self.count:09d}\n".ljust(self.log_size, ".")
        self.deliveries.send(self.deliveries.prediction(self.prediction_id, "processing", logs,
                                                        started_at="2026-01-01T00:00:00.000000Z",
                                                        created_at="2026-01-01T00:00:00.000000Z"))

    def start(self) -> None:
        def run() -> None:
            while self.count < self._limit and not self._stop.wait(self._interval):
                try:
                    self.tick()
                except (httpx.HTTPError, RuntimeError):
                    pass  # a missed tick only delays the end of abandoned streams

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@contextmanager
def relay_target(prefill: int, trace_dir: Path | None = None,
                 log_size: int = LOG_SIZE) -> Iterator[tuple[BenchGunicorn, str, bool]]:
    env = relay_env(RELAY_STREAM_MAX_AGE="3600", RELAY_WATCHER_IDLE_TIMEOUT="3600")
    config = ROOT / "gunicorn.conf.py"
    if trace_dir is not None:  # the worker answers requests for figures (see gunicorn_profile.conf.py)
        env["BENCH_PROFILE_DIR"] = str(trace_dir)
        if TRACE:
            env["PYTHONTRACEMALLOC"] = "1"
        config = PROFILE_CONFIG
    with BenchGunicorn("wsgi:app", env, public_url_to_self=True, config=config) as server:
        created = httpx.post(server.url + "/api/predictions", timeout=30, json={
            "model": "relay/image-demo", "input": {"prompt": "churn", "boot_delay": 300}})
        created.raise_for_status()
        body = created.json()
        deliveries = Deliveries(server.url)
        ticker = Ticker(deliveries, body["id"], log_size=log_size)
        for _ in range(prefill):  # fill the history before the first cycle
            ticker.tick()
        ticker.start()
        try:
            yield server, server.url + body["stream_url"], True
        finally:
            ticker.stop()
            deliveries.close()


@contextmanager
def naive_target(prefill: int, trace_dir: Path | None = None,
                 log_size: int = LOG_SIZE) -> Iterator[tuple[BenchGunicorn, str, bool]]:
    with BenchGunicorn("bench.apps.naive_app:create_app()", {"RELAY_HEARTBEAT_INTERVAL": "1"}) as server:
        yield server, server.url + "/api/predictions/churn/events", False


TARGETS = {"relay": relay_target, "relay_small_events": relay_target, "naive": naive_target}
SMALL_LOG_SIZE = 20  # relay_small_events: the same run with events about 20 times smaller


def wait_for_quiet(server: BenchGunicorn, expected: int, timeout: float = 30) -> float:
    """Wait until the server counts `expected` open streams (abandoned ones ended); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        streams = httpx.get(server.url + "/healthz", timeout=30).json().get("streams")
        if streams is not None and streams <= expected:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the server still counts streams above {expected} after {timeout} s")


def churn_run(design: str, cycles: int, block: int, concurrency: int, prefill: int,
              progress_bar: Any, trace_dir: Path | None = None, log_size: int = LOG_SIZE,
              settle: float = 2.5) -> dict[str, Any]:
    points = []
    snapshots = []
    if design == "relay_small_events":
        log_size = SMALL_LOG_SIZE
    with TARGETS[design](prefill, trace_dir, log_size) as (server, url, resume):
        worker = server.worker()
        args = ["churn", "--url", url] + ([] if resume else ["--no-resume"])
        with ClientProcess(*args) as client:
            client.read()  # ready: the follower knows some event ids
            done = 0
            failures = 0
            started = time.monotonic()
            while done < cycles:
                count = min(block, cycles - done)
                result = client.command(f"cycles {count} {concurrency}")
                done = result["done"]
                failures += result["failures"]
                if result["failures"]:
                    raise RuntimeError(f"{design}: {result['failures']} cycles failed: {result['failure_kinds']}")
                waited = wait_for_quiet(server, 1 if resume else 0)
                at_quiet = rss(worker)
                time.sleep(settle)  # housekeeping that runs every few seconds (Relay's heap trim) gets its turn
                memory = rss(worker)
                points.append({"cycles": done, "rss": memory["rss"], "uss": memory["uss"],
                               "rss_at_quiet": at_quiet["rss"],
                               "seconds": result["seconds"], "cycles_per_s": count / result["seconds"],
                               "quiet_wait_s": round(waited, 2),
                               "open_fds": worker.num_fds()})
                progress_bar.update(count)
                if TRACE and trace_dir is not None and (len(points) == 1 or done >= cycles):
                    snapshots.append(take_figures(trace_dir, f"after-{done}")[1])
            elapsed = time.monotonic() - started
            if trace_dir is not None and not TRACE:
                take_figures(trace_dir, "trim")
                trimmed = rss(worker)
                points[-1]["rss_after_malloc_trim"] = trimmed["rss"]
                points[-1]["uss_after_malloc_trim"] = trimmed["uss"]
    first, last = points[0], points[-1]
    grown: list[dict[str, Any]] = []
    if len(snapshots) == 2 and snapshots[0] is not None and snapshots[1] is not None:
        import tracemalloc

        ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*>")]
        diff = snapshots[1].filter_traces(ignore).compare_to(snapshots[0].filter_traces(ignore), "lineno")
        between = last["cycles"] - first["cycles"]
        grown = [{"where": f"{stat.traceback[0].filename.split('site-packages/')[-1]}:{stat.traceback[0].lineno}",
                  "bytes_per_cycle": round(stat.size_diff / between, 2),
                  "objects_per_1000_cycles": round(stat.count_diff / between * 1000, 1)} for stat in diff[:15]]
    return {"design": design, "points": points, "failures": failures, "seconds": elapsed, "traced_growth": grown,
            "rss_first_mb": first["rss"] / 2**20, "rss_last_mb": last["rss"] / 2**20,
            "growth": (last["rss"] - first["rss"]) / first["rss"],
            "growth_at_quiet": (last["rss_at_quiet"] - first["rss_at_quiet"]) / first["rss_at_quiet"],
            "uss_growth": (last["uss"] - first["uss"]) / first["uss"],
            "cycles_per_s": sum(p["cycles_per_s"] for p in points) / len(points)}


def plot(payload: dict[str, Any]) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.2))
    colors = {"relay": "tab:blue", "relay_small_events": "tab:orange", "naive": "tab:green"}
    styles = ["-", "--", ":"]
    trimmed_labelled = False
    for run in payload["runs"]:
        xs = [p["cycles"] for p in run["points"]]
        ys = [p["rss"] / 2**20 for p in run["points"]]
        color = colors.get(run["design"], "tab:grey")
        axis.plot(xs, ys, marker=".", color=color, linestyle=styles[run["repeat"] % len(styles)], alpha=0.85,
                  label=f"{run['design']} (repeat {run['repeat'] + 1})")
        last = run["points"][-1]
        if "rss_after_malloc_trim" in last:
            axis.plot([last["cycles"]], [last["rss_after_malloc_trim"] / 2**20], marker="v", color=color,
                      linestyle="none", label=None if trimmed_labelled else "after malloc_trim(0)")
            trimmed_labelled = True
    axis.set_xlabel("connect / resume / disconnect cycles")
    axis.set_ylabel("worker RSS (MB), no stream open")
    axis.set_title("Worker memory through connection churn")
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=7, loc="lower right", ncol=2)
    axis.grid(True, alpha=0.3)
    return str(save_plot(figure, PLOT_FILE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20000)
    parser.add_argument("--block", type=int, default=1000, help="cycles between memory readings")
    parser.add_argument("--concurrency", type=int, default=50, help="cycles in flight at once")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--prefill", type=int, default=300, help="events published before the first cycle")
    parser.add_argument("--designs", default="relay,naive", help="of: relay, relay_small_events, naive")
    parser.add_argument("--settle", type=float, default=1.5,
                        help="seconds between the server going quiet and the memory reading")
    parser.add_argument("--log-size", type=int, default=LOG_SIZE, help="bytes of logs in each delivery")
    parser.add_argument("--no-trim", action="store_true",
                        help="skip the last reading's malloc_trim(0) in the Relay worker (and so the profiling "
                             "gunicorn config that asks for it)")
    parser.add_argument("--trace", action="store_true",
                        help="diagnostic: run Relay under tracemalloc and list what grew between the first and "
                             "the last reading (inflates RSS; implies --quick)")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()
    global TRACE
    TRACE = args.trace
    if args.trace:
        args.quick = True
    trace_dir = Path(tempfile.mkdtemp(prefix="relay-bench-churn-trace-")) if args.trace or not args.no_trim else None

    designs = args.designs.split(",")
    started = time.monotonic()
    info = machine()
    runs = []
    with bar(args.repeats * len(designs) * args.cycles, "churn", unit="cycle") as progress_bar:
        for repeat in range(args.repeats):
            for design in designs:
                progress(f"repeat {repeat + 1}: {design}, {args.cycles:,} cycles")
                run = churn_run(design, args.cycles, args.block, args.concurrency, args.prefill, progress_bar,
                                trace_dir if design.startswith("relay") else None, args.log_size, args.settle)
                run["repeat"] = repeat
                runs.append(run)
                progress(f"    RSS {run['rss_first_mb']:.1f} MB after {args.block:,}, {run['rss_last_mb']:.1f} MB "
                         f"after {args.cycles:,} ({run['growth'] * 100:+.2f}%), {run['cycles_per_s']:.0f} cycles/s")
    if trace_dir is not None:
        shutil.rmtree(trace_dir, ignore_errors=True)
    table = {}
    for design in designs:
        mine = [r for r in runs if r["design"] == design]
        table[design] = {"growth_pct": {**summarize([r["growth"] * 100 for r in mine]),
                                        "runs": [round(r["growth"] * 100, 2) for r in mine]},
                         "growth_at_quiet_pct": {**summarize([r["growth_at_quiet"] * 100 for r in mine]),
                                                 "runs": [round(r["growth_at_quiet"] * 100, 2) for r in mine]},
                         "uss_growth_pct": summarize([r["uss_growth"] * 100 for r in mine]),
                         "rss_first_mb": summarize([r["rss_first_mb"] for r in mine]),
                         "rss_last_mb": summarize([r["rss_last_mb"] for r in mine]),
                         "cycles_per_s": summarize([r["cycles_per_s"] for r in mine])}
        trimmed = [r["points"][-1]["rss_after_malloc_trim"] / 2**20 for r in mine
                   if "rss_after_malloc_trim" in r["points"][-1]]
        if trimmed:
            table[design]["rss_after_malloc_trim_mb"] = summarize(trimmed)
    relay_growth = table["relay"]["growth_pct"]["max"] / 100 if "relay" in table else None
    ratios = {}
    if "relay" in table and "naive" in table:
        ratios["relay/naive cycles per second"] = (table["relay"]["cycles_per_s"]["median"]
                                                   / table["naive"]["cycles_per_s"]["median"])
        ratios["relay/naive RSS after the first 1,000"] = (table["relay"]["rss_first_mb"]["median"]
                                                           / table["naive"]["rss_first_mb"]["median"])
        ratios["relay/naive growth"] = (table["relay"]["growth_pct"]["median"]
                                        / max(table["naive"]["growth_pct"]["median"], 1e-9))
    payload = {
        **results_header("churn", info),
        "settings": {"cycles": args.cycles, "block": args.block, "concurrency": args.concurrency,
                     "repeats": args.repeats, "prefill": args.prefill, "log_size": args.log_size,
                     "tick_s": 0.5, "designs": designs, "workers": 1, "worker_class": "gevent",
                     "settle_s": args.settle},
        "table": table,
        "ratios": ratios,
        "bar": {"growth_max": BAR_GROWTH, "statistic": "worst repeat", "value": relay_growth,
                "met": relay_growth is not None and relay_growth <= BAR_GROWTH},
        "runs": runs,
        "duration_s": round(time.monotonic() - started, 1),
    }
    print(f"\nWorker RSS through {args.cycles:,} cycles, {args.repeats} repeats")
    for design, row in table.items():
        print(f"  {design:<6} after {args.block:,}: {row['rss_first_mb']['median']:.1f} MB; after "
              f"{args.cycles:,}: {row['rss_last_mb']['median']:.1f} MB; growth {row['growth_pct']['runs']} %; "
              f"{row['cycles_per_s']['median']:.0f} cycles/s")
    for key, value in ratios.items():
        print(f"  {key:<40} {value:.2f}")
    print(f"  bar growth <= {BAR_GROWTH * 100:g}%: {'met' if payload['bar']['met'] else 'MISSED'}")
    for run in runs:
        last = run["points"][-1]
        if "rss_after_malloc_trim" in last:
            print(f"  {run['design']} repeat {run['repeat'] + 1}: RSS {last['rss'] / 2**20:.1f} MB, "
                  f"after malloc_trim(0) "
                  f"{last['rss_after_malloc_trim'] / 2**20:.1f} MB")
        if run["traced_growth"]:
            print(f"  traced growth, {run['design']} repeat {run['repeat'] + 1} (bytes/cycle, objects/1,000 cycles):")
            for row in run["traced_growth"]:
                print(f"    {row['bytes_per_cycle']:10.2f} {row['objects_per_1000_cycles']:10.1f}  {row['where']}")
    if not args.quick:
        save_results(RESULT_FILE, payload, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
