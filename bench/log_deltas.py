"""Updates that cost what changed: logs as deltas beside the design before them.

Two designs, same run, same harness, each measured in a fresh process:
- before: every snapshot carries the whole log; the history keeps 256 events,
  each a copy (bench/apps/before_logs/: a copy of the modules as they were);
- now: Relay's relay/feed.py + relay/hub.py (log deltas, tail snapshots,
  history bounded by bytes, progress read incrementally).

Scenario "growing": one prediction whose log grows to 10 KB, 100 KB or 1 MB over
1,000 updates, followed by 10 subscribers (the real SSE body generators, read
after each update, as a keeping-up browser would). Per design and size:
bytes each subscriber received, worker RSS growth (the prediction unfinished),
and CPU per webhook delivery (json.loads of the delivery's body + Feed.apply;
the fan-out's rendering is counted apart, per subscriber).

Scenario "finished": 200 predictions whose logs grow to 50 KB over 50 updates
each, then succeed; RSS growth once they are all finished (for "now", after the
housekeeper's compaction, which runs 10 s after the last subscriber leaves).

This is in-process: no HTTP, no signature check. Results go to
bench/results/log_deltas.json and a plot to docs/log_deltas.svg.

    python -m bench.log_deltas            # ~2 minutes
    python -m bench.log_deltas --quick    # fewer updates
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"10 KB": 10_000, "100 KB": 100_000, "1 MB": 1_000_000}
DESIGNS = ("before", "now")


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def modules(design: str) -> tuple[Any, Any, Any]:
    if design == "before":
        from bench.apps.before_logs import feed, hub, streams
    else:
        from relay import feed, hub, streams  # type: ignore[no-redef]
    return feed, hub, streams


def prediction(pid: str, log: str, status: str = "processing") -> dict[str, Any]:
    return {"id": pid, "status": status, "logs": log, "output": None, "error": None,
            "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:01Z"}


def growing(design: str, size: int, updates: int, subscribers: int) -> dict[str, Any]:
    feed_mod, hub_mod, streams_mod = modules(design)
    start = rss()
    hub = hub_mod.MemoryHub()
    feed = feed_mod.Feed(hub)
    pid = "p-growing"
    feed.apply(prediction(pid, ""))
    limits = streams_mod.StreamLimits(heartbeat=30.0, max_age=3600.0)
    bodies = [streams_mod.event_stream(hub, [pid], [hub.replay(pid, None)], limits, multiplexed=False)
              for _ in range(subscribers)]
    received = [len(next(body)) + len(next(body)) for body in bodies]
    line = "x" * (size // updates - 1) + "\n"
    log = ""
    apply_cpu = render_cpu = 0.0
    for _ in range(updates):
        log += line
        body = json.dumps(prediction(pid, log)).encode()
        started = time.process_time()
        feed.apply(json.loads(body))
        middle = time.process_time()
        for index, stream in enumerate(bodies):
            received[index] += len(next(stream))
        render_cpu += time.process_time() - middle
        apply_cpu += middle - started
    grown = rss() - start
    for stream in bodies:
        stream.close()
    return {"bytes_per_subscriber": sum(received) / subscribers, "log_bytes": len(log),
            "rss_growth": grown, "cpu_ms_per_delivery": 1000 * apply_cpu / updates,
            "render_ms_per_delivery_per_subscriber": 1000 * render_cpu / updates / subscribers}


def finished(design: str, count: int, updates: int) -> dict[str, Any]:
    feed_mod, hub_mod, _streams = modules(design)
    start = rss()
    hub = hub_mod.MemoryHub()
    feed = feed_mod.Feed(hub)
    line = "y" * (50_000 // updates - 1) + "\n"
    for k in range(count):
        log = ""
        for _ in range(updates):
            log += line
            feed.apply(json.loads(json.dumps(prediction(f"p-{k}", log))))
        feed.apply(prediction(f"p-{k}", log, "succeeded"))
    if design == "now":
        hub.channels.reap(finished_grace=0)  # what the housekeeper does 10 s later
    return {"rss_growth": rss() - start, "count": count}


def run_one(args: argparse.Namespace) -> None:
    if args.scenario == "growing":
        result = growing(args.design, SIZES[args.size], args.updates, args.subscribers)
    else:
        result = finished(args.design, args.count, 50)
    print(json.dumps(result))


def child(*extra: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.log_deltas", "--one", *extra], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def svg(results: dict[str, Any]) -> str:
    """Bytes per subscriber and RSS growth, before beside now, on a log scale (no plotting library)."""
    import math

    rows = [(f"{size} bytes/sub", [results["growing"][d][size]["bytes_per_subscriber"] for d in DESIGNS])
            for size in SIZES]
    rows += [(f"{size} RSS", [results["growing"][d][size]["rss_growth"] for d in DESIGNS]) for size in SIZES]
    rows += [("200 finished RSS", [results["finished"][d]["rss_growth"] for d in DESIGNS])]
    width, bar, gap = 720, 12, 14
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{len(rows) * (2 * bar + gap) + 40}" '
             'font-family="sans-serif" font-size="11">',
             '<text x="10" y="14">log10 bytes: before (grey) and now (blue)</text>']
    y = 28
    for label, values in rows:
        parts.append(f'<text x="10" y="{y + bar + 4}">{label}</text>')
        for value, colour in zip(values, ("#999", "#1f6feb"), strict=True):
            length = max(1.0, (math.log10(max(value, 1)) / 11) * (width - 230))
            parts.append(f'<rect x="150" y="{y}" width="{length:.0f}" height="{bar}" fill="{colour}"/>')
            parts.append(f'<text x="{155 + length:.0f}" y="{y + bar - 2}">{value / 1e6:.2f} MB</text>')
            y += bar
        y += gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default="growing")
    parser.add_argument("--design", default="now")
    parser.add_argument("--size", default="100 KB")
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.one:
        run_one(args)
        return
    updates = "200" if args.quick else str(args.updates)
    results: dict[str, Any] = {"growing": {d: {} for d in DESIGNS}, "finished": {}}
    for size in SIZES:
        for design in DESIGNS:  # interleaved, same run
            one = child("--scenario", "growing", "--design", design, "--size", size, "--updates", updates,
                        "--subscribers", str(args.subscribers))
            results["growing"][design][size] = one
            print(f"{design:6} {size:>6}: {one['bytes_per_subscriber'] / 1e6:9.2f} MB/subscriber  "
                  f"RSS +{one['rss_growth'] / 1e6:7.2f} MB  {one['cpu_ms_per_delivery']:6.3f} ms/delivery  "
                  f"render {one['render_ms_per_delivery_per_subscriber']:6.3f} ms/delivery/subscriber", flush=True)
    for design in DESIGNS:
        one = child("--scenario", "finished", "--design", design, "--count", "50" if args.quick else str(args.count))
        results["finished"][design] = one
        print(f"{design:6} {one['count']} finished 50 KB logs: RSS +{one['rss_growth'] / 1e6:.2f} MB", flush=True)
    results["settings"] = {"updates": int(updates), "subscribers": args.subscribers}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "log_deltas.json").write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "docs" / "log_deltas.svg").write_text(svg(results))
    print(f"wrote {out / 'log_deltas.json'} and docs/log_deltas.svg")


if __name__ == "__main__":
    main()
