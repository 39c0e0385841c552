"""Upstream GET requests per prediction: Relay's one watcher vs the seed's poller per subscriber.

Relay follows each prediction with one watcher however many browsers watch it,
so its upstream traffic should not grow with subscribers. The seed polled
Replicate from every subscriber's request handler. Both run here against the
same emulator (the one embedded in the Relay server under test), and the
emulator's own request log says how many GETs each prediction received.

    /work/venv/bin/python bench/upstream_requests.py            # full run, ~2.5 minutes
    /work/venv/bin/python bench/upstream_requests.py --repeats 1 --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from results import machine, progress, summarize, write_json
from servers import PYTHON, Gunicorn, relay_env

HERE = Path(__file__).resolve().parent
RESULT_FILE = "bench-upstream-requests.json"
BAR_FLAT = 1.1  # Relay(100) / Relay(1) must stay at or under this


def run_client(mode: str, base: str, count: int, interval: float, prediction_input: dict[str, Any],
               timeout: float) -> dict[str, Any]:
    command = [PYTHON, str(HERE / "clients.py"), mode, "--base", base, "--count", str(count),
               "--interval", str(interval), "--input", json.dumps(prediction_input),
               "--timeout", str(timeout)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"client {mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def upstream_gets(server: Gunicorn, prediction_id: str) -> int:
    """GETs the emulator counted for this prediction (its request log, all processes)."""
    stats = httpx.get(server.url + "/emulator/_emulator/stats", timeout=10).json()
    return int(stats["per_prediction"].get(prediction_id, {}).get("GET", 0))


def measure(server: Gunicorn, design: str, count: int, interval: float,
            prediction_input: dict[str, Any]) -> dict[str, Any]:
    if design == "relay":
        run = run_client("follow", server.url, count, interval, prediction_input, timeout=60)
    else:
        run = run_client("poll", server.url + "/emulator", count, interval, prediction_input, timeout=60)
    # Relay's watcher ends on its own after the terminal state; give its last GET time to land.
    time.sleep(0.5)
    run["upstream_gets"] = upstream_gets(server, run["id"])
    if run["completed"] != count:
        raise RuntimeError(f"{design}({count}): only {run['completed']} of {count} subscribers saw the end: {run}")
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="1,100", help="comma-separated subscriber counts")
    # Counts are small whole numbers, so one GET more or less moves a ratio by ~10%: take many.
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--poll-interval", type=float, default=0.25, help="RELAY_POLL_INTERVAL and the seed's")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-delay", type=float, default=0.1)
    parser.add_argument("--boot-delay", type=float, default=1.0,
                        help="seconds in `starting`, so every subscriber is connected before it runs")
    parser.add_argument("--quick", action="store_true", help="don't write docs/ (a trial run)")
    args = parser.parse_args()

    counts = [int(c) for c in args.subscribers.split(",")]
    prediction_input = {"prompt": "a lighthouse at dawn", "steps": args.steps,
                        "step_delay": args.step_delay, "boot_delay": args.boot_delay}
    env = relay_env(RELAY_POLL_INTERVAL=str(args.poll_interval), RELAY_HEARTBEAT_INTERVAL="15")
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    info = machine()
    total = args.repeats * len(counts) * 2
    with Gunicorn("wsgi:app", env) as server:
        for repeat in range(args.repeats):
            # Interleaved, so a noisy moment on the machine hits both designs alike.
            for count in counts:
                for design in ("relay", "seed"):
                    progress(f"[{len(runs) + 1}/{total}] repeat {repeat + 1}: {design} with {count} "
                             f"subscriber(s)")
                    run = measure(server, design, count, args.poll_interval, prediction_input)
                    run.update(design=design, repeat=repeat)
                    runs.append(run)
                    progress(f"    {run['upstream_gets']} upstream GETs in {run['elapsed_s']:.1f} s")

    table: dict[str, dict[str, Any]] = {}
    for design in ("relay", "seed"):
        for count in counts:
            gets = [r["upstream_gets"] for r in runs if r["design"] == design and r["subscribers"] == count]
            seconds = [r["elapsed_s"] for r in runs if r["design"] == design and r["subscribers"] == count]
            table[f"{design}({count})"] = {**summarize(gets), "runs": gets,
                                           "prediction_seconds_median": statistics.median(seconds)}

    def ratio(top: str, bottom: str) -> dict[str, float]:
        return {stat: float(table[top][stat]) / float(table[bottom][stat]) for stat in ("mean", "median")}

    low, high = min(counts), max(counts)
    ratios = {
        f"relay({high})/relay({low})": ratio(f"relay({high})", f"relay({low})"),
        f"seed({high})/relay({high})": ratio(f"seed({high})", f"relay({high})"),
        f"seed({low})/relay({low})": ratio(f"seed({low})", f"relay({low})"),
        f"seed({high})/seed({low})": ratio(f"seed({high})", f"seed({low})"),
    }
    # The bar is judged on means: counts are small whole numbers that move by one or two from run
    # to run whatever the number of subscribers, so a ratio of medians jumps in steps of ~0.1.
    flat = ratios[f"relay({high})/relay({low})"]["mean"]
    payload = {
        "benchmark": "upstream_requests",
        "command": "/work/venv/bin/python bench/upstream_requests.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "settings": {"poll_interval": args.poll_interval, "input": prediction_input,
                     "subscribers": counts, "repeats": args.repeats, "workers": 1},
        "table": table,
        "ratios": ratios,
        "bar": {"relay_high_over_low_max": BAR_FLAT, "statistic": "mean", "met": flat <= BAR_FLAT},
        "runs": runs,
        "duration_s": round(time.monotonic() - started, 1),
    }

    print(f"\nUpstream GETs per prediction over {args.repeats} runs: mean, median (min-max)")
    for key, row in table.items():
        print(f"  {key:<12} {row['mean']:>7.1f} {row['median']:>7.1f}   ({row['min']}-{row['max']})")
    print("Ratios: of means, of medians")
    for key, value in ratios.items():
        print(f"  {key:<22} {value['mean']:6.2f} {value['median']:6.2f}")
    print(f"  bar relay({high})/relay({low}) <= {BAR_FLAT}: {'met' if flat <= BAR_FLAT else 'MISSED'}")
    if not args.quick:
        path = write_json(RESULT_FILE, payload)
        from report import write_report

        print(f"\nwrote {path} and {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
