"""Relay beside two off-the-shelf SSE stacks: memory per idle stream and fan-out latency.

The alternatives, each in its usual setup and measured in the same run as Relay:
- sse-starlette under uvicorn (one process): bench/apps/starlette_app.py, an
  `asyncio.Queue` per connection and `EventSourceResponse` pings;
- Flask-SSE on Redis under gunicorn's gevent worker: bench/apps/flask_sse_app.py,
  the extension's stock `sse` blueprint (one Redis pub/sub connection per
  stream) and its `sse.publish`.

Idle streams: a fresh server per design and repeat, 20 warm-up streams, the
worker's RSS (median of 5 samples), then 1,000, 5,000 and 10,000 open streams
(cumulative, all on one channel that stays silent), the RSS after each. The
cost per stream is the growth over the warm-up state divided by the streams
added. Relay runs its default setup (embedded emulator, polling) and every
stream follows one prediction that stays `starting`.

Fan-out: a fresh server per design and repeat; 1,000 and then 5,000
subscribers on one prediction (channel), held by another process
(`clients.py fanout`). For each publish that process first watches every
socket (one epoll loop), then the benchmark notes time.time() and publishes:
for Relay a signed webhook delivery carrying the new state (webhook mode:
RELAY_PUBLIC_URL is the server itself), for the others a POST to a route that
calls their own publish. Each subscriber's latency is the arrival of the bytes
that complete the update's marker minus that publish time (one machine, one clock).

    python -m bench.alternatives                 # both parts, ~8 minutes
    python -m bench.alternatives --part idle     # or fanout: one part, merged into the JSON
    python -m bench.alternatives --repeats 1 --streams 500,1000 --fanout 200 --quick
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common.output import (
    DOCS,
    bar,
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
from bench.common.servers import HEARTBEAT, BenchGunicorn, BenchRedis, BenchUvicorn, relay_env
from bench.load.memory import PROFILE_CONFIG, rss
from bench.load.processes import IdleClients
from bench.load.webhooks import Deliveries
from testbed import ROOT

RESULT_FILE = "alternatives.json"
PLOT_FILE = "bench-alternatives.png"
DESIGNS = ("relay", "sse_starlette", "flask_sse")
LABELS = {"relay": "Relay (gunicorn + gevent, 1 worker)",
          "sse_starlette": "sse-starlette (uvicorn, 1 process)",
          "flask_sse": "Flask-SSE + Redis (gunicorn + gevent, 1 worker)"}
BAR_KB_AT_5000 = 20.0
BAR_FANOUT_P99_S_AT_5000 = 0.4
CHANNEL = "bench"


@dataclass
class Served:
    """One design's server, ready: where streams connect and how to publish to them."""

    design: str
    server: BenchGunicorn | BenchUvicorn
    stream_url: str
    redis: BenchRedis | None = None
    deliveries: Deliveries | None = None
    prediction_id: str | None = None
    publisher: httpx.Client | None = None
    logs: str = ""

    def publish(self, marker: str) -> float:
        """Publish one update carrying `marker`; time.time() right before the request left."""
        self.logs += f"fan-out update {marker}\n"
        if self.deliveries is not None:
            assert self.prediction_id is not None
            state = self.deliveries.prediction(self.prediction_id, "processing", self.logs)
            sent_at, outcome = self.deliveries.send(state)
            if outcome != "new":
                raise RuntimeError(f"Relay took the update as {outcome}")
            return sent_at
        assert self.publisher is not None
        body = json.dumps({"id": "bench", "status": "processing", "logs": self.logs, "output": None})
        sent_at = time.time()
        answer = self.publisher.post(f"/publish?channel={CHANNEL}", content=body.encode())
        answer.raise_for_status()
        return sent_at

    def server_streams(self) -> int | None:
        query = f"?channel={CHANNEL}" if self.design == "flask_sse" else ""
        streams = httpx.get(self.server.url + "/healthz" + query, timeout=60).json().get("streams")
        return None if streams is None else int(streams)

    def close(self) -> None:
        if self.deliveries is not None:
            self.deliveries.close()
        if self.publisher is not None:
            self.publisher.close()


@contextmanager
def serve(design: str, fanout: bool, gc_log: Path | None = None) -> Iterator[Served]:
    """A fresh server for `design`; Relay in webhook mode when `fanout` (the publish is a webhook).

    With `gc_log`, Relay's worker appends every collection of generations 1 and 2 to that file
    (bench/apps/gunicorn_profile.conf.py: the repository's gunicorn settings plus that hook).
    """
    with ExitStack() as stack:
        served: Served
        if design == "relay":
            env = relay_env(RELAY_HEARTBEAT_INTERVAL=HEARTBEAT, RELAY_STREAM_MAX_AGE="3600",
                            RELAY_WATCHER_IDLE_TIMEOUT="3600", RELAY_POLL_INTERVAL="1")
            config = ROOT / "gunicorn.conf.py"
            if gc_log is not None:
                env.update(BENCH_GC_LOG=str(gc_log), BENCH_PROFILE_DIR=str(gc_log.parent))
                config = PROFILE_CONFIG
            server: BenchGunicorn | BenchUvicorn = stack.enter_context(
                BenchGunicorn("wsgi:app", env, public_url_to_self=fanout, config=config))
            created = httpx.post(server.url + "/api/predictions", timeout=30, json={
                "model": "relay/image-demo", "input": {"prompt": "fan-out", "boot_delay": 300}})
            created.raise_for_status()
            body = created.json()
            served = Served(design, server, server.url + body["stream_url"], prediction_id=body["id"])
            if fanout:
                served.deliveries = Deliveries(server.url)
        elif design == "sse_starlette":
            server = stack.enter_context(
                BenchUvicorn("bench.apps.starlette_app:app", {"BENCH_PING_SECONDS": HEARTBEAT}))
            served = Served(design, server, f"{server.url}/events?channel={CHANNEL}",
                            publisher=httpx.Client(base_url=server.url, timeout=60))
        elif design == "flask_sse":
            redis_server = stack.enter_context(BenchRedis())
            server = stack.enter_context(BenchGunicorn("bench.apps.flask_sse_app:create_app()",
                                                  {"REDIS_URL": redis_server.url}))
            served = Served(design, server, f"{server.url}/stream?channel={CHANNEL}", redis=redis_server,
                            publisher=httpx.Client(base_url=server.url, timeout=60))
        else:
            raise ValueError(design)
        try:
            yield served
        finally:
            served.close()


def stream_cap(design: str) -> int:
    """Streams one process can hold here: Flask-SSE needs two descriptors per stream (client + Redis)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return 10**9
    per_stream = 2 if design == "flask_sse" else 1
    return (hard - 300) // per_stream // 100 * 100


def open_more(clients: IdleClients, served: Served, count: int, concurrency: int) -> dict[str, Any]:
    """Open `count` more streams and make sure the server holds every one.

    Flask-SSE's stock stream sends nothing, not even its headers, until the
    first message: its streams are opened without waiting for first bytes,
    then, once Redis counts every subscription, one message is published
    through the extension's own format, so each stream has written its
    headers and one event, as Relay's and sse-starlette's have.
    """
    wait = served.design != "flask_sse"
    opened = clients.open(count, concurrency, wait=wait)
    if opened["failures"]:
        raise RuntimeError(f"{served.design}: {opened['failures']} streams failed: {opened['failure_kinds']}\n"
                           f"{served.server.log()}")
    if not wait:
        import redis
        from flask_sse import Message

        deadline = time.monotonic() + 120
        while served.server_streams() != opened["open"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"flask_sse: Redis counts {served.server_streams()} subscribers, "
                                   f"the clients opened {opened['open']}")
            time.sleep(0.25)
        assert served.redis is not None
        with redis.Redis.from_url(served.redis.url) as client:
            client.publish(CHANNEL, json.dumps(Message("hello").to_dict()))
    return opened


def idle_run(design: str, targets: list[int], warmup: int, settle: float, concurrency: int,
             on_step: Any) -> dict[str, Any]:
    """RSS of the worker before and after each cumulative stream count in `targets`."""
    cap = stream_cap(design)
    with serve(design, fanout=False) as served, IdleClients(served.stream_url) as clients:
        worker = served.server.worker()
        open_more(clients, served, warmup, concurrency)
        time.sleep(settle)
        before = rss(worker)
        redis_before = rss(served.redis.memory(), samples=3) if served.redis else None
        points = []
        have = warmup
        for target in targets:
            want = min(target, cap)
            opened = open_more(clients, served, want + warmup - have, concurrency)
            have = opened["open"]
            time.sleep(settle)
            after = rss(worker)
            counted = served.server_streams()
            if counted is not None and counted != have:
                raise RuntimeError(f"{design}: the server counts {counted} streams, the clients {have}")
            streams = have - warmup
            point = {"target": target, "streams": streams, "capped": want < target, "rss": after["rss"],
                     "uss": after["uss"], "kb_per_stream": (after["rss"] - before["rss"]) / streams / 1024,
                     "uss_kb_per_stream": (after["uss"] - before["uss"]) / streams / 1024,
                     "open_seconds": opened["seconds"]}
            if served.redis is not None and redis_before is not None:
                redis_after = rss(served.redis.memory(), samples=3)
                point["redis_kb_per_stream"] = (redis_after["rss"] - redis_before["rss"]) / streams / 1024
            points.append(point)
            on_step()
        return {"design": design, "before": before, "points": points}


def collections_between(gc_log: Path | None, start: float, end: float) -> list[dict[str, float]]:
    """Relay's garbage collections (generations 1 and 2) that started between `start` and `end`."""
    if gc_log is None or not gc_log.exists():
        return []
    found = []
    for line in gc_log.read_text().splitlines():
        wall, generation, took, collected = line.split()
        if start <= float(wall) <= end:
            found.append({"at_ms": round((float(wall) - start) * 1000, 1), "generation": int(generation),
                          "ms": round(float(took) * 1000, 1), "collected": int(collected)})
    return found


def fanout_run(design: str, sizes: list[int], publishes: int, gap: float, concurrency: int, repeat: int,
               on_step: Any) -> dict[str, Any]:
    """Latency of each update to every subscriber, at each subscriber count in `sizes` (cumulative)."""
    gc_log = Path(tempfile.mkdtemp(prefix="relay-bench-gc-")) / "gc.log" if design == "relay" else None
    with ExitStack() as cleanup:
        if gc_log is not None:
            cleanup.callback(shutil.rmtree, gc_log.parent, True)
        return _fanout_updates(design, sizes, publishes, gap, concurrency, repeat, on_step, gc_log)


def _fanout_updates(design: str, sizes: list[int], publishes: int, gap: float, concurrency: int, repeat: int,
                    on_step: Any, gc_log: Path | None) -> dict[str, Any]:
    with serve(design, fanout=True, gc_log=gc_log) as served, \
            IdleClients(served.stream_url, mode="fanout") as clients:
        results = []
        have = 0
        for size in sizes:
            opened = open_more(clients, served, size - have, concurrency)
            have = opened["open"]
            time.sleep(2.0)  # let the last connections settle before the first publish
            for number in range(publishes):
                marker = f"m{repeat}x{design}x{size}x{number}x{time.monotonic_ns()}"
                clients.send(f"arm {marker} 30")
                if not clients.read().get("armed"):
                    raise RuntimeError("the fan-out client did not arm")
                sent_at = served.publish(marker)
                times = clients.read()["times"]
                got = [t - sent_at for t in times if t is not None]
                missing = len(times) - len(got)
                if missing:
                    raise RuntimeError(f"{design}: {missing} of {len(times)} subscribers missed update {marker}")
                summary = latency_summary(got)
                # The whole distribution, compressed to its percentiles, for the JSON and the plot.
                summary["percentiles_ms"] = [round(percentile(got, q) * 1000, 3) for q in range(0, 101)]
                if gc_log is not None:  # Relay's collections while this update went out
                    summary["collections"] = collections_between(gc_log, sent_at, sent_at + max(got))
                results.append({"subscribers": have, "publish": number, **summary})
                on_step()
                time.sleep(gap)
        return {"design": design, "publishes": results}


def plot(payload: dict[str, Any]) -> str:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    idle = payload.get("idle")
    if idle:
        for design in payload["settings"]["designs"]:
            rows = idle["table"].get(design, {})
            xs = [int(target) for target in rows]
            ys = [rows[str(t)]["kb_per_stream"]["median"] for t in xs]
            left.plot(xs, ys, marker="o", label=LABELS[design])
        left.axhline(BAR_KB_AT_5000, color="grey", linestyle=":", label=f"bar for Relay: {BAR_KB_AT_5000:g} KB")
        left.set_xlabel("open idle streams in one process")
        left.set_ylabel("RSS growth per stream (KB)")
        left.set_ylim(bottom=0)
        left.set_title("Memory per idle stream (median of repeats)")
        left.legend(fontsize=7)
        left.grid(True, alpha=0.3)
    fan = payload.get("fanout")
    if fan:
        size = max(int(s) for s in fan["table"][payload["settings"]["designs"][0]])
        for design in payload["settings"]["designs"]:
            runs = [p for r in fan["runs"] if r["design"] == design for p in r["publishes"]
                    if p["subscribers"] == size]
            if not runs:
                continue
            # The median publish's percentile curve.
            curve = [statistics.median(p["percentiles_ms"][q] for p in runs) for q in range(101)]
            right.plot(curve, [q / 100 for q in range(101)], label=LABELS[design])
        right.axvline(BAR_FANOUT_P99_S_AT_5000 * 1000, color="grey", linestyle=":", label="400 ms")
        right.set_xlabel(f"delivery latency to each of {size:,} subscribers (ms)")
        right.set_ylabel("fraction of subscribers")
        right.set_title(f"Fan-out of one update to {size:,} subscribers (median publish)")
        right.legend(fontsize=7, loc="lower right")
        right.grid(True, alpha=0.3)
    return str(save_plot(figure, PLOT_FILE))


def idle_table(runs: list[dict[str, Any]], designs: list[str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for design in designs:
        mine = [r for r in runs if r["design"] == design]
        rows: dict[str, Any] = {}
        for index, point in enumerate(mine[0]["points"]):
            points = [r["points"][index] for r in mine]
            rows[str(point["target"])] = {
                "streams": point["streams"], "capped": point["capped"],
                "kb_per_stream": {**summarize([p["kb_per_stream"] for p in points]),
                                  "runs": [round(p["kb_per_stream"], 2) for p in points]},
                "uss_kb_per_stream": summarize([p["uss_kb_per_stream"] for p in points]),
                "rss_mb": summarize([p["rss"] / 2**20 for p in points]),
            }
            if "redis_kb_per_stream" in point:
                rows[str(point["target"])]["redis_kb_per_stream"] = summarize(
                    [p["redis_kb_per_stream"] for p in points])
        table[design] = rows
    return table


def fanout_table(runs: list[dict[str, Any]], designs: list[str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for design in designs:
        publishes = [p for r in runs if r["design"] == design for p in r["publishes"]]
        rows = {}
        for size in sorted({p["subscribers"] for p in publishes}):
            mine = [p for p in publishes if p["subscribers"] == size]
            rows[str(size)] = {stat: {**summarize([p[stat] for p in mine]),
                                      "runs": [round(p[stat], 1) for p in mine]}
                               for stat in ("p50_ms", "p99_ms", "max_ms")}
        table[design] = rows
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["idle", "fanout", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--streams", default="1000,5000,10000", help="idle stream counts (cumulative)")
    parser.add_argument("--fanout", default="1000,5000", help="subscriber counts for the fan-out (cumulative)")
    parser.add_argument("--publishes", type=int, default=4, help="updates timed at each subscriber count")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between updates")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--settle", type=float, default=2.5)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="don't write bench/results/ or docs/ (a trial run)")
    args = parser.parse_args()

    designs = args.designs.split(",")
    targets = [int(n) for n in args.streams.split(",")]
    sizes = [int(n) for n in args.fanout.split(",")]
    started = time.monotonic()
    info = machine()
    previous = json.loads((DOCS / RESULT_FILE).read_text()) if (DOCS / RESULT_FILE).exists() else {}
    payload: dict[str, Any] = {
        **results_header("alternatives", info),
        "settings": {"designs": designs, "repeats": args.repeats, "streams": targets, "fanout": sizes,
                     "publishes": args.publishes, "gap_s": args.gap, "warmup": args.warmup,
                     "settle_s": args.settle, "concurrency": args.concurrency, "heartbeat_s": float(HEARTBEAT),
                     "stream_caps": {d: stream_cap(d) for d in designs},
                     "open_files_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1]},
    }
    if args.part != "both":  # keep the other part's results from an earlier run
        for part in ("idle", "fanout"):
            if part != args.part and part in previous:
                payload[part] = previous[part]

    if args.part in ("idle", "both"):
        runs = []
        with bar(args.repeats * len(designs) * len(targets), "idle streams", unit="step") as progress_bar:
            for repeat in range(args.repeats):
                for design in designs:
                    progress(f"idle, repeat {repeat + 1}: {design}, up to {max(targets):,} streams")
                    run = idle_run(design, targets, args.warmup, args.settle, args.concurrency,
                                   lambda: progress_bar.update(1))
                    run["repeat"] = repeat
                    runs.append(run)
                    progress("    " + ", ".join(f"{p['streams']:,}: {p['kb_per_stream']:.2f} KB"
                                                for p in run["points"]))
        table = idle_table(runs, designs)
        at = str(5000 if 5000 in targets else targets[len(targets) // 2])
        relay_kb = table["relay"][at]["kb_per_stream"]["median"] if "relay" in table else None
        ratios = {f"{d}/relay at {at}": table[d][at]["kb_per_stream"]["median"] / relay_kb
                  for d in designs if d != "relay" and relay_kb}
        payload["idle"] = {"table": table, "ratios": ratios, "runs": runs, "measured_at": at,
                           "bar": {"relay_kb_per_stream_max": BAR_KB_AT_5000, "at": at, "value": relay_kb,
                                   "met": relay_kb is not None and relay_kb <= BAR_KB_AT_5000},
                           "machine": info}
    if args.part in ("fanout", "both"):
        runs = []
        steps = args.repeats * len(designs) * len(sizes) * args.publishes
        with bar(steps, "fan-out", unit="update") as progress_bar:
            for repeat in range(args.repeats):
                for design in designs:
                    progress(f"fan-out, repeat {repeat + 1}: {design}, {', '.join(map(str, sizes))} subscribers")
                    run = fanout_run(design, sizes, args.publishes, args.gap, args.concurrency, repeat,
                                     lambda: progress_bar.update(1))
                    run["repeat"] = repeat
                    runs.append(run)
                    progress("    " + ", ".join(f"{p['subscribers']:,}: p50 {p['p50_ms']:.0f} p99 {p['p99_ms']:.0f} ms"
                                                for p in run["publishes"]))
        table = fanout_table(runs, designs)
        at = str(5000 if 5000 in sizes else max(sizes))
        relay_p99 = table["relay"][at]["p99_ms"]["median"] if "relay" in table else None
        ratios = {f"{d}/relay p99 at {at}": table[d][at]["p99_ms"]["median"] / relay_p99
                  for d in designs if d != "relay" and relay_p99}
        ratios.update({f"{d}/relay p50 at {at}": table[d][at]["p50_ms"]["median"]
                       / table["relay"][at]["p50_ms"]["median"] for d in designs if d != "relay" and relay_p99})
        payload["fanout"] = {"table": table, "ratios": ratios, "runs": runs, "measured_at": at,
                             "bar": {"relay_p99_s_max": BAR_FANOUT_P99_S_AT_5000, "at": at,
                                     "value_s": None if relay_p99 is None else relay_p99 / 1000,
                                     "met": relay_p99 is not None
                                     and relay_p99 / 1000 <= BAR_FANOUT_P99_S_AT_5000},
                             "machine": info}
    payload["duration_s"] = round(time.monotonic() - started, 1)

    if "idle" in payload and args.part != "fanout":
        print("\nRSS growth per idle stream, KB (median of repeats; min-max)")
        for design, rows in payload["idle"]["table"].items():
            cells = ", ".join(f"{int(t):,}{'*' if r['capped'] else ''}: {r['kb_per_stream']['median']:.2f} "
                              f"({r['kb_per_stream']['min']:.2f}-{r['kb_per_stream']['max']:.2f})"
                              for t, r in rows.items())
            print(f"  {design:<14} {cells}")
        for key, value in payload["idle"]["ratios"].items():
            print(f"  {key:<30} {value:.2f}")
        b = payload["idle"]["bar"]
        print(f"  bar relay <= {b['relay_kb_per_stream_max']} KB at {b['at']}: {'met' if b['met'] else 'MISSED'}")
    if "fanout" in payload and args.part != "idle":
        print("\nFan-out latency of one update, ms (median over publishes and repeats of each publish's p50/p99)")
        for design, rows in payload["fanout"]["table"].items():
            cells = ", ".join(f"{int(s):,}: p50 {r['p50_ms']['median']:.0f}, p99 {r['p99_ms']['median']:.0f} "
                              f"({r['p99_ms']['min']:.0f}-{r['p99_ms']['max']:.0f})" for s, r in rows.items())
            print(f"  {design:<14} {cells}")
        for key, value in payload["fanout"]["ratios"].items():
            print(f"  {key:<30} {value:.2f}")
        b = payload["fanout"]["bar"]
        print(f"  bar relay p99 <= {b['relay_p99_s_max']} s at {b['at']}: {'met' if b['met'] else 'MISSED'}")
    if not args.quick:
        save_results(RESULT_FILE, payload, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
