"""A server worker's memory: RSS and USS readings, and the heap figures behind them (`profile`).

`profile` opens idle streams on one design under bench/apps/gunicorn_profile.conf.py,
whose hook in the worker writes the garbage collector's and pymalloc's figures
(and, on request, tracemalloc snapshots and each connection's deepest call
chain) into a folder; see bench/stream_memory.py for what they show.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import tracemalloc
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common.servers import HEARTBEAT, BenchEmulator, BenchGunicorn, relay_env
from bench.load.processes import IdleClients
from testbed import ROOT

DESIGNS = ("relay", "relay_external_upstream", "naive", "naive_behind_dispatcher")
PROFILE_CONFIG = ROOT / "bench" / "apps" / "gunicorn_profile.conf.py"


def rss(worker: psutil.Process, samples: int = 5, pause: float = 0.2) -> dict[str, int]:
    """The worker's resident and unique memory, median of a few samples."""
    rss_values, uss_values = [], []
    for _ in range(samples):
        info = worker.memory_full_info()
        rss_values.append(info.rss)
        uss_values.append(info.uss)
        time.sleep(pause)
    return {"rss": int(statistics.median(rss_values)), "uss": int(statistics.median(uss_values))}


def _short(frame: str) -> str:
    return frame.split("site-packages/")[-1].replace(str(ROOT) + "/", "").split("lib/python3.")[-1]


def take_figures(folder: Path, name: str, timeout: float = 60) -> tuple[dict[str, Any], tracemalloc.Snapshot | None]:
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
    config = PROFILE_CONFIG
    with ExitStack() as stack:
        if design.startswith("relay"):
            if design == "relay_external_upstream":
                env["REPLICATE_BASE_URL"] = stack.enter_context(BenchEmulator()).url
            server = stack.enter_context(BenchGunicorn("wsgi:app", relay_env(
                **env, RELAY_STREAM_MAX_AGE="3600", RELAY_WATCHER_IDLE_TIMEOUT="3600"), config=config))
            created = httpx.post(server.url + "/api/predictions", timeout=30, json={
                "model": "relay/image-demo", "input": {"prompt": "idle", "boot_delay": 300}})
            created.raise_for_status()
            url = server.url + created.json()["stream_url"]
        else:
            app = f"bench.apps.naive_app:create_app(mounted={design == 'naive_behind_dispatcher'})"
            server = stack.enter_context(BenchGunicorn(app, env, config=config))
            url = server.url + "/api/predictions/idle/events"
        worker = server.worker()
        clients = IdleClients(url)
        try:
            clients.open(warmup)
            time.sleep(2)
            rss_before = worker.memory_info().rss  # before take_figures, which runs a full collection
            before, snap_before = take_figures(folder, "before")
            opened = clients.open(streams)
            time.sleep(3)
            rss_after = worker.memory_info().rss
            after, snap_after = take_figures(folder, "after")
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
