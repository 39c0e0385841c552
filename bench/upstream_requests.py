"""Upstream GET requests per prediction: Relay's one watcher vs the seed's poller per subscriber.

Relay follows each prediction with one watcher however many browsers watch it,
so its upstream traffic should not grow with subscribers. The seed polled
Replicate from every subscriber's request handler. All designs run here
against the same kind of emulator (the one embedded in the Relay server under
test), and the emulator's own request log says how many GETs each prediction
received. Three designs, at 1, 10, 100 and 1,000 subscribers:

- `relay`: Relay polling (RELAY_POLL_INTERVAL);
- `relay_webhook`: Relay in webhook mode (a second server whose RELAY_PUBLIC_URL
  is itself, so its emulator delivers signed webhooks to it), polling only as a
  safety net;
- `seed`: every subscriber polls the emulator through the `replicate` client.

    python -m bench.upstream_requests            # full run, ~6 minutes
    python -m bench.upstream_requests --subscribers 1,100 --designs relay,seed   # issue 2's run
    python -m bench.upstream_requests --repeats 1 --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from bench.common.output import bar, machine, progress, pyplot, results_header, save_plot, save_results, summarize
from bench.common.servers import BenchGunicorn, emulator_token, relay_env, upstream_gets
from bench.load.processes import run_client

RESULT_FILE = "upstream-requests.json"
PLOT_FILE = "bench-upstream-requests.png"
BAR_FLAT = 1.1  # Relay(most subscribers) / Relay(1) must stay at or under this
DESIGNS = ("relay", "relay_webhook", "seed")


def measure(server: BenchGunicorn, design: str, count: int, interval: float,
            prediction_input: dict[str, Any]) -> dict[str, Any]:
    common = ["--count", str(count), "--interval", str(interval), "--input", json.dumps(prediction_input),
              "--timeout", "90"]
    if design == "seed":
        run = run_client("poll", "--base", server.url + "/emulator", "--token", emulator_token(), *common, timeout=90)
    else:
        run = run_client("follow", "--base", server.url, *common, timeout=90)
    # Relay's watcher ends on its own after the terminal state; give its last GET time to land.
    time.sleep(0.5)
    run["upstream_gets"] = upstream_gets(server.url, run["id"])
    # Relay must serve every subscriber; the seed's pollers may fail when the upstream is swamped,
    # which is part of its result (counted in `failed_subscribers`).
    if run["completed"] != count and design != "seed":
        raise RuntimeError(f"{design}({count}): only {run['completed']} of {count} subscribers saw the end: {run}")
    return run


def plot(payload: dict[str, Any]) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.4))
    labels = {"relay": "Relay, polling", "relay_webhook": "Relay, webhooks", "seed": "seed: every subscriber polls"}
    counts = payload["settings"]["subscribers"]
    for design in payload["settings"]["designs"]:
        rows = [payload["table"][f"{design}({n})"] for n in counts]
        medians = [r["median"] for r in rows]
        errors = [[m - r["min"] for m, r in zip(medians, rows, strict=True)],
                  [r["max"] - m for m, r in zip(medians, rows, strict=True)]]
        axis.errorbar(counts, medians, yerr=errors, marker="o", capsize=3, label=labels.get(design, design))
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("subscribers following the prediction")
    axis.set_ylabel("upstream GETs for the prediction")
    seconds = payload["table"][f"relay({counts[0]})"]["prediction_seconds_median"]
    axis.set_title(f"Upstream GETs per ~{seconds:.0f} s prediction (median, min–max)")
    axis.legend(fontsize=8)
    axis.grid(True, which="both", alpha=0.3)
    return str(save_plot(figure, PLOT_FILE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="1,10,100,1000", help="comma-separated subscriber counts")
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated, of: " + ", ".join(DESIGNS))
    # Counts are small whole numbers, so one GET more or less moves a ratio by ~10%: take several.
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=0.25, help="RELAY_POLL_INTERVAL and the seed's")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-delay", type=float, default=0.1)
    parser.add_argument("--boot-delay", type=float, default=1.0,
                        help="seconds in `starting`, so every subscriber is connected before it runs")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()

    counts = [int(c) for c in args.subscribers.split(",")]
    designs = args.designs.split(",")
    prediction_input = {"prompt": "a lighthouse at dawn", "steps": args.steps,
                        "step_delay": args.step_delay, "boot_delay": args.boot_delay}
    env = relay_env(RELAY_POLL_INTERVAL=str(args.poll_interval), RELAY_HEARTBEAT_INTERVAL="15")
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    info = machine()
    total = args.repeats * len(counts) * len(designs)
    with BenchGunicorn("wsgi:app", env) as server, \
            BenchGunicorn("wsgi:app", env, public_url_to_self=True) as hooked, \
            bar(total, "upstream requests", unit="run") as progress_bar:
        servers = {"relay": server, "relay_webhook": hooked, "seed": server}
        for repeat in range(args.repeats):
            # Interleaved, so a noisy moment on the machine hits every design alike.
            for count in counts:
                for design in designs:
                    progress(f"[{len(runs) + 1}/{total}] repeat {repeat + 1}: {design} with {count} "
                             f"subscriber(s)")
                    run = measure(servers[design], design, count, args.poll_interval, prediction_input)
                    run.update(design=design, repeat=repeat)
                    runs.append(run)
                    progress_bar.update(1)
                    progress(f"    {run['upstream_gets']} upstream GETs in {run['elapsed_s']:.1f} s")

    table: dict[str, dict[str, Any]] = {}
    for design in designs:
        for count in counts:
            gets = [r["upstream_gets"] for r in runs if r["design"] == design and r["subscribers"] == count]
            seconds = [r["elapsed_s"] for r in runs if r["design"] == design and r["subscribers"] == count]
            table[f"{design}({count})"] = {**summarize(gets), "runs": gets,
                                           "prediction_seconds_median": statistics.median(seconds)}

    def ratio(top: str, bottom: str) -> dict[str, float]:
        return {stat: float(table[top][stat]) / max(float(table[bottom][stat]), 1e-9) for stat in ("mean", "median")}

    low, high = min(counts), max(counts)
    ratios: dict[str, dict[str, float]] = {}
    for design in ("relay", "relay_webhook"):
        if design in designs:
            for count in counts[1:]:
                ratios[f"{design}({count})/{design}({low})"] = ratio(f"{design}({count})", f"{design}({low})")
    if "seed" in designs:
        for design in ("relay", "relay_webhook"):
            if design in designs:
                for count in (low, high):
                    ratios[f"seed({count})/{design}({count})"] = ratio(f"seed({count})", f"{design}({count})")
        ratios[f"seed({high})/seed({low})"] = ratio(f"seed({high})", f"seed({low})")
    # The bar is judged on means: counts are small whole numbers that move by one or two from run
    # to run whatever the number of subscribers, so a ratio of medians jumps in steps of ~0.1.
    flat = {design: ratios[f"{design}({high})/{design}({low})"]["mean"]
            for design in ("relay", "relay_webhook") if f"{design}({high})/{design}({low})" in ratios}
    payload = {
        **results_header("upstream_requests", info),
        "settings": {"poll_interval": args.poll_interval, "input": prediction_input, "designs": designs,
                     "subscribers": counts, "repeats": args.repeats, "workers": 1},
        "table": table,
        "ratios": ratios,
        "bar": {"relay_high_over_low_max": BAR_FLAT, "statistic": "mean", "values": flat,
                "met": all(value <= BAR_FLAT for value in flat.values())},
        "runs": runs,
        "duration_s": round(time.monotonic() - started, 1),
    }

    print(f"\nUpstream GETs per prediction over {args.repeats} runs: mean, median (min-max)")
    for key, row in table.items():
        print(f"  {key:<20} {row['mean']:>7.1f} {row['median']:>7.1f}   ({row['min']}-{row['max']})")
    print("Ratios: of means, of medians")
    for key, value in ratios.items():
        print(f"  {key:<36} {value['mean']:7.2f} {value['median']:7.2f}")
    for design, value in flat.items():
        print(f"  bar {design}({high})/{design}({low}) <= {BAR_FLAT}: {value:.2f} "
              f"{'met' if value <= BAR_FLAT else 'MISSED'}")
    if not args.quick:
        save_results(RESULT_FILE, payload, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
