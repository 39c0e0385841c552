"""Where an idle stream's memory goes: the worker's heap before and after N streams.

A diagnostic beside bench/idle_streams.py, not a benchmark. By default it
reports the worker's RSS growth per stream, with the garbage collector's and
pymalloc's figures (objects, cyclic garbage, bytes in use). With --probe-depth
a profile hook records each connection greenlet's deepest Python call chain. On
CPython 3.11+ every greenlet has a frame stack of its own, and every 4 KiB page
that stack once touched stays resident while the stream lives, so one frame more
on the deepest path can cost a page per stream. With --trace the worker runs
under tracemalloc, and the source lines whose live allocations grew the most per
stream are listed. Probing and tracing both inflate RSS.

    .venv/bin/python bench/stream_memory.py
    .venv/bin/python bench/stream_memory.py --streams 100 --probe-depth
    .venv/bin/python bench/stream_memory.py --streams 1000 --trace --designs relay,naive
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from idle_streams import HEARTBEAT, Clients
from servers import Gunicorn, StandaloneEmulator, relay_env

HERE = Path(__file__).resolve().parent
DESIGNS = ("relay", "relay_external_upstream", "naive", "naive_behind_dispatcher")


def _short(frame: str) -> str:
    return frame.split("site-packages/")[-1].replace(str(HERE.parent) + "/", "").split("lib/python3.")[-1]


def _take(folder: Path, name: str, timeout: float = 60) -> tuple[dict[str, Any], tracemalloc.Snapshot | None]:
    """Ask the worker for its figures (see gunicorn_profile.conf.py) and load them."""
    request = folder / f"{name}.request"
    request.touch()
    deadline = time.monotonic() + timeout
    while request.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker wrote no figures within {timeout} s")
        time.sleep(0.2)
    figures = json.loads((folder / f"{name}.json").read_text())
    snapshot_file = folder / f"{name}.snapshot"
    return figures, tracemalloc.Snapshot.load(str(snapshot_file)) if snapshot_file.exists() else None


def profile(design: str, streams: int = 100, warmup: int = 20, *, trace: bool = False,
            probe_depth: bool = False, top: int = 20) -> dict[str, Any]:
    """Open `streams` idle streams on `design` and return what grew, per stream."""
    folder = Path(tempfile.mkdtemp(prefix="relay-bench-profile-"))
    env = {"BENCH_PROFILE_DIR": str(folder), "RELAY_HEARTBEAT_INTERVAL": HEARTBEAT}
    if trace:
        env["PYTHONTRACEMALLOC"] = "1"
    if probe_depth:
        env["BENCH_DEPTH_PROBE"] = "1"
    config = HERE / "gunicorn_profile.conf.py"
    with ExitStack() as stack:
        if design.startswith("relay"):
            if design == "relay_external_upstream":
                env["REPLICATE_BASE_URL"] = stack.enter_context(StandaloneEmulator()).url
            server = stack.enter_context(Gunicorn("wsgi:app", relay_env(
                **env, RELAY_STREAM_MAX_AGE="3600", RELAY_WATCHER_IDLE_TIMEOUT="3600"), config=config))
            created = httpx.post(server.url + "/api/predictions", timeout=30, json={
                "model": "relay/image-demo", "input": {"prompt": "idle", "boot_delay": 300}})
            created.raise_for_status()
            url = server.url + created.json()["stream_url"]
        else:
            app = f"bench.naive_app:create_app(mounted={design == 'naive_behind_dispatcher'})"
            server = stack.enter_context(Gunicorn(app, env, config=config))
            url = server.url + "/api/predictions/idle/events"
        worker = server.worker()
        clients = Clients(url)
        try:
            clients.open(warmup)
            time.sleep(2)
            rss_before = worker.memory_info().rss  # before _take, which runs a full collection
            before, snap_before = _take(folder, "before")
            opened = clients.open(streams)
            time.sleep(3)
            rss_after = worker.memory_info().rss
            after, snap_after = _take(folder, "after")
        finally:
            clients.close()
    count = opened["open"] - warmup
    result: dict[str, Any] = {
        "design": design,
        "streams": count,
        "traced": trace,
        "probed": probe_depth,
        "rss_kb_per_stream": (rss_after - rss_before) / count / 1024,
        "gc_objects_before": before["tracked_objects"],
        "gc_objects_per_stream": (after["tracked_objects"] - before["tracked_objects"]) / count,
        "cyclic_garbage_per_stream": after["unreachable_found_by_collect"] / count,
        "pymalloc_bytes_per_stream": {
            key: (after["pymalloc"][key] - before["pymalloc"][key]) / count
            for key in ("bytes in allocated blocks", "bytes in available blocks", "bytes in unused pools")
            if key in after["pymalloc"] and key in before["pymalloc"]
        },
    }
    chains = after["deepest_per_connection"]  # [bytes, frames], sorted by bytes
    if chains:
        size, frames = chains[len(chains) // 2]
        result["deepest_chain"] = {"median_bytes": size, "min_bytes": chains[0][0], "max_bytes": chains[-1][0],
                                   "greenlets": len(chains), "frames": [_short(f) for f in frames]}
    if snap_before is not None and snap_after is not None:
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*>")]
        diff = snap_after.filter_traces(ignore).compare_to(snap_before.filter_traces(ignore), "lineno")
        result["traced_kb_per_stream"] = sum(d.size_diff for d in diff) / count / 1024
        result["traced_top"] = [
            {"where": f"{_short(stat.traceback[0].filename)}:{stat.traceback[0].lineno}",
             "bytes_per_stream": stat.size_diff / count, "objects_per_stream": stat.count_diff / count}
            for stat in diff[:top]
        ]
    return result


def show(result: dict[str, Any]) -> None:
    inflated = "  (inflated by probing/tracing)" if result["traced"] or result["probed"] else ""
    print(f"\n== {result['design']}: {result['streams']} streams")
    print(f"  RSS growth             {result['rss_kb_per_stream']:8.2f} KB/stream{inflated}")
    print(f"  gc-tracked objects     {result['gc_objects_per_stream']:8.1f} /stream "
          f"({result['gc_objects_before']:,} before the streams)")
    print(f"  cyclic garbage         {result['cyclic_garbage_per_stream']:8.1f} objects/stream "
          "(found by a full collection after opening)")
    for key, value in result["pymalloc_bytes_per_stream"].items():
        print(f"  pymalloc {key:<26} {value:8.1f} B/stream")
    deepest = result.get("deepest_chain")
    if deepest:
        print(f"  deepest Python call chain per connection greenlet: median ~{deepest['median_bytes']} bytes "
              f"of frame stack (min {deepest['min_bytes']}, max {deepest['max_bytes']}; "
              f"{deepest['greenlets']} greenlets). The median one:")
        for frame in deepest["frames"]:
            print("    " + frame)
    if "traced_top" in result:
        print(f"  traced live heap       {result['traced_kb_per_stream']:8.2f} KB/stream")
        print(f"  {'bytes/stream':>13} {'objects/stream':>15}  where")
        for row in result["traced_top"]:
            print(f"  {row['bytes_per_stream']:13.1f} {row['objects_per_stream']:15.2f}  {row['where']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated, of: " + ", ".join(DESIGNS))
    parser.add_argument("--probe-depth", action="store_true", help="record each connection's deepest call chain")
    parser.add_argument("--trace", action="store_true", help="run the worker under tracemalloc")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    for design in args.designs.split(","):
        show(profile(design, args.streams, args.warmup, trace=args.trace, probe_depth=args.probe_depth,
                     top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
