"""Push latency: from a prediction's state changing to a subscriber receiving it, polling vs webhooks.

Two measurements, each repeated, both modes in the same run:

A. End to end, driven by the emulator. Two Relay servers run side by side on
   the same machine: one polls (RELAY_POLL_INTERVAL=1), one takes webhooks
   (RELAY_PUBLIC_URL is the server itself, so its embedded emulator delivers
   signed webhooks to it, as Replicate would). Each gets the same
   `relay/image-demo` predictions. The emulator changes a prediction's state at
   known times: it starts at created_at + boot_delay (the `started_at` the
   snapshots carry) and finishes step k at started_at + k * step_delay. A
   subscriber in another process notes when each snapshot arrives; step k's
   latency is the arrival of the first snapshot showing step k or later,
   minus its due time. The emulator throttles `logs` webhooks to one per 0.5 s,
   as Replicate does, so in webhook mode this latency is mostly that throttle.

B. Relay's own share in webhook mode. The benchmark plays Replicate: it signs
   each new state of a prediction with `standardwebhooks` and POSTs it
   (bench/load/webhooks.py), noting time.time() right before the request
   leaves; the subscriber notes time.time() when the snapshot arrives. Same
   machine, same clock.

Upstream GETs per prediction come from the emulator's own request log; in
webhook mode the log is sampled every second, so the GETs made while webhooks
were flowing (after the first pushed state) can be told from the ones before.

    python -m bench.push_latency               # ~3 minutes
    python -m bench.push_latency --repeats 1 --steps 30 --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
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
from bench.common.servers import BenchGunicorn, emulator_stats, emulator_token, relay_env
from bench.load.processes import run_client
from bench.load.webhooks import Deliveries, progress_line

RESULT_FILE = "push-latency.json"
PLOT_FILE = "bench-push-latency.png"
BAR_WEBHOOK_P99_MS = 50.0
BAR_POLL_MEAN_MS = 500.0
BAR_POLL_MEAN_TOLERANCE = 0.2  # "about 500 ms": within ±20%
BAR_GETS_PER_30S = 1.0
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def step_latencies(stream: dict[str, Any], step_delay: float, steps: int) -> list[float]:
    """Latency of each state change (start, steps 1..N) from its due time to its first sighting."""
    shots = stream["snapshots"]
    started = next((parse_time(s["started_at"]) for s in shots if s["started_at"]), None)
    if started is None:
        raise RuntimeError("no snapshot carried started_at")
    latencies = []
    for k in range(steps + 1):
        due = started + k * step_delay
        for shot in shots:
            reached = shot["status"] in TERMINAL or (
                shot["status"] == "processing" and (k == 0 or (shot["current"] or 0) >= k))
            if reached:
                latencies.append(shot["arrived"] - due)
                break
        else:
            raise RuntimeError(f"no snapshot showed step {k}")
    return latencies


class StatsSampler:
    """Samples the emulator's GET count for some predictions every second, in a thread."""

    def __init__(self, server_url: str, ids: list[str]) -> None:
        self.server_url = server_url
        self.ids = ids
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                per = emulator_stats(self.server_url)["per_prediction"]
                self.samples.append((time.time(), {i: int(per.get(i, {}).get("GET", 0)) for i in self.ids}))
            except httpx.HTTPError:
                pass
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def gets_between(self, prediction_id: str, start: float, end: float) -> int:
        """GETs counted from the last sample at or before `start` to the first at or after `end`."""
        before = [s[prediction_id] for t, s in self.samples if t <= start]
        after = [s[prediction_id] for t, s in self.samples if t >= end]
        first = before[-1] if before else 0
        last = after[0] if after else self.samples[-1][1][prediction_id]
        return last - first


def create(server: BenchGunicorn, prediction_input: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(server.url + "/api/predictions", timeout=30,
                        json={"model": "relay/image-demo", "input": prediction_input})
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def emulator_driven(servers: dict[str, BenchGunicorn], args: argparse.Namespace) -> dict[str, Any]:
    """Part A: the same predictions on both servers at once; latencies per mode, GETs per prediction."""
    prediction_input = {"prompt": "push latency", "steps": args.steps, "step_delay": args.step_delay,
                        "boot_delay": args.boot_delay}
    created = {mode: [create(server, prediction_input) for _ in range(args.predictions)]
               for mode, server in servers.items()}
    samplers = {mode: StatsSampler(servers[mode].url, [c["id"] for c in created[mode]]) for mode in servers}
    timeout = args.boot_delay + args.steps * args.step_delay + 30
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            futures = {mode: pool.submit(run_client, "watch", "--base", server.url, "--urls",
                                         json.dumps([c["stream_url"] for c in created[mode]]),
                                         "--timeout", str(timeout), timeout=timeout)
                       for mode, server in servers.items()}
            watched = {mode: future.result() for mode, future in futures.items()}
        time.sleep(1.5)  # a last sample after the end
    finally:
        for sampler in samplers.values():
            sampler.stop()
    out: dict[str, Any] = {}
    for mode, result in watched.items():
        latencies: list[float] = []
        gets, flow = [], []
        for made, stream in zip(created[mode], result["streams"], strict=True):
            if stream.get("error") or not stream.get("done"):
                raise RuntimeError(f"{mode}: a subscriber did not see the end: {stream.get('error')}")
            latencies += step_latencies(stream, args.step_delay, args.steps)
            shots = stream["snapshots"]
            started = parse_time(next(s["started_at"] for s in shots if s["started_at"]))
            ended = shots[-1]["arrived"]
            assert started is not None
            total = samplers[mode].samples[-1][1][made["id"]]
            # "While webhooks flow": from the first pushed state (the start) to the end.
            during = samplers[mode].gets_between(made["id"], started + 0.5, ended)
            gets.append(total)
            flow.append({"gets": during, "seconds": ended - started - 0.5})
        out[mode] = {"latencies_s": latencies, "gets_per_prediction": gets, "during_flow": flow,
                     "ids": [c["id"] for c in created[mode]]}
    return out


def bench_driven(server: BenchGunicorn, args: argparse.Namespace) -> dict[str, Any]:
    """Part B: the benchmark signs and sends each state; publish -> receive per delivery."""
    made = create(server, {"prompt": "bench-driven", "steps": 2, "boot_delay": 300})
    prediction_id = made["id"]
    deliveries = Deliveries(server.url)
    timeout = args.deliveries * (args.delivery_interval + 0.2) + 60
    result: dict[str, Any] = {}
    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(run_client, "watch", "--base", server.url, "--urls",
                               json.dumps([made["stream_url"]] * args.subscribers),
                               "--timeout", str(timeout), timeout=timeout)
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/healthz", timeout=10).json().get("streams", 0) < args.subscribers:
            if time.monotonic() > deadline:
                raise RuntimeError("the subscribers did not connect")
            time.sleep(0.1)
        published: dict[int, float] = {}
        logs = "Using seed: 1\n"
        started_at = datetime.now().astimezone().isoformat()
        for step in range(1, args.deliveries + 1):
            logs += progress_line(step, args.deliveries) + "\n"
            status = "succeeded" if step == args.deliveries else "processing"
            extra = {"output": ["https://example.invalid/out.png"]} if status == "succeeded" else {}
            sent_at, outcome = deliveries.send(deliveries.prediction(prediction_id, status, logs,
                                                                     started_at=started_at, **extra))
            if outcome != "new":
                raise RuntimeError(f"delivery {step} was {outcome}")
            published[step] = sent_at
            time.sleep(args.delivery_interval)
        watched = watching.result()
    # Cancel it upstream too, so the emulator stops following it (its webhook thread would tick on).
    deliveries.client.post(f"/emulator/v1/predictions/{prediction_id}/cancel",
                           headers={"Authorization": f"Bearer {emulator_token()}"})
    deliveries.close()
    latencies: list[float] = []
    for stream in watched["streams"]:
        if stream.get("error") or not stream.get("done"):
            raise RuntimeError(f"a subscriber did not see the end: {stream.get('error')}")
        for shot in stream["snapshots"]:
            step = shot["current"]
            if shot["status"] in ("processing", "succeeded") and step in published:
                latencies.append(shot["arrived"] - published[step])
    expected = args.deliveries * args.subscribers
    if len(latencies) != expected:
        raise RuntimeError(f"expected {expected} timed snapshots, got {len(latencies)}")
    time.sleep(0.5)
    result.update(latencies_s=latencies, id=prediction_id,
                  gets=int(emulator_stats(server.url)["per_prediction"].get(prediction_id, {}).get("GET", 0)),
                  seconds=max(published.values()) - min(published.values()))
    return result


def progress_parse_cost(steps: tuple[int, ...] = (20, 120, 250, 1000, 5000)) -> dict[str, float]:
    """Milliseconds relay.progress.parse_progress takes on an image-demo log of N tqdm lines.

    Relay parses the whole log of every upstream answer (each poll, each webhook) before it
    knows whether anything changed; this is that cost per answer, measured in this process.
    """
    import timeit

    from relay.emulator.progress import progress_line as emulator_line
    from relay.progress import parse_progress

    costs = {}
    for n in steps:
        logs = "Using seed: 1\n" + "".join(emulator_line(k, n, k * 0.1) + "\n" for k in range(n + 1))
        best = min(timeit.repeat(lambda logs=logs: parse_progress(logs), number=10, repeat=5)) / 10
        costs[str(n)] = round(best * 1000, 3)
    return costs


def plot(payload: dict[str, Any]) -> str:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    labels = {"poll": "polling (RELAY_POLL_INTERVAL=1), emulator-driven",
              "webhook": "webhooks, emulator-driven (0.5 s logs throttle)",
              "bench_webhook": "webhooks, deliveries sent by the bench"}
    for key, label in labels.items():
        values = sorted(v * 1000 for v in payload["pooled_latencies_s"][key])
        if not values:
            continue
        fraction = [(i + 1) / len(values) for i in range(len(values))]
        left.plot(values, fraction, label=f"{label} (n={len(values)})")
    left.axvline(BAR_WEBHOOK_P99_MS, color="grey", linestyle=":", label="50 ms")
    left.set_xscale("log")
    left.set_xlabel("latency, state change → subscriber (ms, log scale)")
    left.set_ylabel("fraction of updates")
    left.set_title("Push latency, all repeats pooled")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    left.grid(True, which="both", alpha=0.3)
    modes = ["poll", "webhook"]
    gets = [statistics.median(g for run in payload["runs"] for g in run["emulator_driven"][m]["gets_per_prediction"])
            for m in modes]
    right.bar(["polling", "webhooks"], gets, color=["tab:blue", "tab:orange"])
    for x, value in enumerate(gets):
        right.text(x, value, f"{value:g}", ha="center", va="bottom")
    seconds = payload["settings"]["boot_delay"] + payload["settings"]["steps"] * payload["settings"]["step_delay"]
    right.set_title(f"Upstream GETs per ~{seconds:.0f} s prediction (median)")
    right.set_ylabel("GET /v1/predictions/<id>")
    return str(save_plot(figure, PLOT_FILE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--predictions", type=int, default=2, help="predictions per mode per repeat (part A)")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--step-delay", type=float, default=0.3)
    parser.add_argument("--boot-delay", type=float, default=2.0)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--deliveries", type=int, default=250, help="signed deliveries per repeat (part B)")
    parser.add_argument("--delivery-interval", type=float, default=0.05)
    parser.add_argument("--subscribers", type=int, default=1, help="streams following the part B prediction")
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()

    started = time.monotonic()
    info = machine()
    env = relay_env(RELAY_POLL_INTERVAL=str(args.poll_interval))
    runs: list[dict[str, Any]] = []
    a_seconds = args.boot_delay + args.steps * args.step_delay + 3
    b_seconds = args.deliveries * (args.delivery_interval + 0.01) + 3
    with BenchGunicorn("wsgi:app", env) as poll_server, \
            BenchGunicorn("wsgi:app", env, public_url_to_self=True) as hook_server, \
            bar(round(args.repeats * (a_seconds + b_seconds)), "push latency", unit="s") as progress_bar:
        for repeat in range(args.repeats):
            progress(f"repeat {repeat + 1}/{args.repeats}: part A, {args.predictions} predictions of "
                     f"{args.steps} steps on each server")
            a = emulator_driven({"poll": poll_server, "webhook": hook_server}, args)
            progress_bar.update(round(a_seconds))
            progress(f"repeat {repeat + 1}/{args.repeats}: part B, {args.deliveries} signed deliveries")
            b = bench_driven(hook_server, args)
            progress_bar.update(round(b_seconds))
            run = {"repeat": repeat, "emulator_driven": a, "bench_driven": b,
                   "summary": {"poll": latency_summary(a["poll"]["latencies_s"]),
                               "webhook": latency_summary(a["webhook"]["latencies_s"]),
                               "bench_webhook": latency_summary(b["latencies_s"])}}
            runs.append(run)
            s = run["summary"]
            progress(f"    polling p50 {s['poll']['p50_ms']:.0f} ms, mean {s['poll']['mean_ms']:.0f} ms; "
                     f"webhooks (emulator) p50 {s['webhook']['p50_ms']:.0f} ms; "
                     f"webhooks (bench) p50 {s['bench_webhook']['p50_ms']:.1f} p99 "
                     f"{s['bench_webhook']['p99_ms']:.1f} ms")

    pooled = {key: [v for run in runs for v in (run["emulator_driven"][key]["latencies_s"] if key != "bench_webhook"
                                                 else run["bench_driven"]["latencies_s"])]
              for key in ("poll", "webhook", "bench_webhook")}
    table = {}
    for key, values in pooled.items():
        per_run = [run["summary"][key] for run in runs]
        table[key] = {"pooled": latency_summary(values),
                      "per_repeat": {stat: summarize([r[stat] for r in per_run])
                                     for stat in ("p50_ms", "p99_ms", "mean_ms")}}
    gets = {}
    for mode in ("poll", "webhook"):
        totals = [g for run in runs for g in run["emulator_driven"][mode]["gets_per_prediction"]]
        flows = [f for run in runs for f in run["emulator_driven"][mode]["during_flow"]]
        gets[mode] = {"per_prediction": summarize(totals), "runs": totals,
                      "during_flow_per_30s": summarize([f["gets"] * 30 / f["seconds"] for f in flows]),
                      "during_flow_runs": flows}
    gets["bench_webhook"] = {"per_prediction": summarize([run["bench_driven"]["gets"] for run in runs]),
                             "runs": [run["bench_driven"]["gets"] for run in runs],
                             "seconds": summarize([run["bench_driven"]["seconds"] for run in runs])}
    hook_p99 = table["bench_webhook"]["pooled"]["p99_ms"]
    poll_mean = table["poll"]["pooled"]["mean_ms"]
    flow_rate = gets["webhook"]["during_flow_per_30s"]["max"]
    bars = {
        "webhook_p99_ms": {"bar": BAR_WEBHOOK_P99_MS, "value": hook_p99, "met": hook_p99 <= BAR_WEBHOOK_P99_MS},
        "poll_mean_ms": {"bar": BAR_POLL_MEAN_MS, "tolerance": BAR_POLL_MEAN_TOLERANCE, "value": poll_mean,
                         "met": abs(poll_mean - BAR_POLL_MEAN_MS) <= BAR_POLL_MEAN_MS * BAR_POLL_MEAN_TOLERANCE},
        "gets_per_30s_while_webhooks_flow": {"bar": BAR_GETS_PER_30S, "value": flow_rate,
                                             "met": flow_rate <= BAR_GETS_PER_30S},
    }
    ratios = {
        "poll/bench_webhook (p50)": table["poll"]["pooled"]["p50_ms"] / table["bench_webhook"]["pooled"]["p50_ms"],
        "poll/bench_webhook (p99)": table["poll"]["pooled"]["p99_ms"] / table["bench_webhook"]["pooled"]["p99_ms"],
        "poll/webhook, emulator-driven (p50)": table["poll"]["pooled"]["p50_ms"] / table["webhook"]["pooled"]["p50_ms"],
        "poll/webhook GETs per prediction (median)": gets["poll"]["per_prediction"]["median"]
        / max(gets["webhook"]["per_prediction"]["median"], 1e-9),
    }
    costs = progress_parse_cost()
    payload = {
        **results_header("push_latency", info),
        "settings": {"repeats": args.repeats, "predictions": args.predictions, "steps": args.steps,
                     "step_delay": args.step_delay, "boot_delay": args.boot_delay,
                     "poll_interval": args.poll_interval, "deliveries": args.deliveries,
                     "delivery_interval": args.delivery_interval, "subscribers": args.subscribers,
                     "workers": 1, "worker_class": "gevent", "webhook_reconcile_s": 30},
        "table": table,
        "gets": gets,
        "ratios": ratios,
        "bars": bars,
        "progress_parse_ms": costs,
        "pooled_latencies_s": {k: [round(v, 6) for v in values] for k, values in pooled.items()},
        "runs": [{k: v for k, v in run.items()} for run in runs],
        "duration_s": round(time.monotonic() - started, 1),
    }

    print(f"\nPush latency over {args.repeats} repeats (pooled; per-repeat medians in the JSON)")
    for key, row in table.items():
        p = row["pooled"]
        print(f"  {key:<14} n={p['n']:<5} p50 {p['p50_ms']:8.1f} ms  p99 {p['p99_ms']:8.1f} ms  "
              f"mean {p['mean_ms']:8.1f} ms  max {p['max_ms']:8.1f} ms")
    for mode in ("poll", "webhook", "bench_webhook"):
        g = gets[mode]["per_prediction"]
        print(f"  upstream GETs per prediction, {mode:<14} median {g['median']:g} ({g['min']:g}-{g['max']:g})")
    print(f"  GETs per 30 s while webhooks flow: max {flow_rate:.2f}")
    for key, value in ratios.items():
        print(f"  {key:<44} {value:.1f}")
    for key, b in bars.items():
        print(f"  bar {key}: {b['value']:.2f} vs {b['bar']}: {'met' if b['met'] else 'MISSED'}")
    print("  relay.progress.parse_progress per upstream answer, ms by log lines: "
          + ", ".join(f"{n}: {ms}" for n, ms in costs.items()))
    if not args.quick:
        save_results(RESULT_FILE, payload, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
