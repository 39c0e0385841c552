"""gunicorn settings for bench/stream_memory.py: the repository's, plus a snapshot hook.

Whenever a `<name>.request` file appears in $BENCH_PROFILE_DIR, the worker
writes `<name>.snapshot` (tracemalloc, when PYTHONTRACEMALLOC is set) and
`<name>.json` (garbage collector and pymalloc figures), so a profiler outside
can compare the heap before and after it opens streams. A request named
`trim…` instead calls glibc's malloc_trim(0) (bench/churn.py --trim).

With BENCH_GC_LOG=<file> every collection of generations 1 and 2 is appended
to that file (start time, generation, seconds taken, objects collected).

With BENCH_DEPTH_PROBE=1 a profile hook also records the deepest Python call
chain seen (as slots of CPython's per-greenlet frame stack, which keeps every
page it once touched for as long as its greenlet lives).
"""

import os
from pathlib import Path

# gunicorn reads one config file; run the repository's own in this namespace so every setting
# and hook it defines applies unchanged, then wrap its post_worker_init.
_repo_config = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
exec(compile(_repo_config.read_text(), str(_repo_config), "exec"))

_repo_post_worker_init = post_worker_init  # type: ignore[name-defined]  # noqa: F821


def post_worker_init(worker):
    import gc
    import json
    import sys
    import tempfile
    import tracemalloc

    import gevent

    _repo_post_worker_init(worker)
    if os.environ.get("BENCH_GC_LOG"):
        _log_collections(os.environ["BENCH_GC_LOG"])
    folder = Path(os.environ["BENCH_PROFILE_DIR"])
    deepest = {"per_connection": {}}
    if os.environ.get("BENCH_DEPTH_PROBE") == "1":
        sys.setprofile(_depth_probe(deepest))

    def snapshots_on_request():
        while worker.alive:
            for request in folder.glob("*.request"):
                if request.stem.startswith("trim"):
                    # Hand glibc's free heap memory back to the system: what RSS drops by was
                    # free but kept, not in use.
                    import ctypes

                    trimmed = ctypes.CDLL("libc.so.6").malloc_trim(0)
                    request.with_suffix(".json").write_text(json.dumps({"malloc_trim": trimmed}))
                    request.unlink()
                    continue
                if tracemalloc.is_tracing():
                    tracemalloc.take_snapshot().dump(str(request.with_suffix(".snapshot")))
                figures = {"gc_counts": gc.get_count(), "tracked_objects": len(gc.get_objects()),
                           "pymalloc": _pymalloc_figures(sys, tempfile)}
                figures["unreachable_found_by_collect"] = gc.collect()
                figures["deepest_per_connection"] = sorted(deepest["per_connection"].values())
                deepest["per_connection"].clear()  # the next request reports only what came since
                request.with_suffix(".json").write_text(json.dumps(figures))
                request.unlink()
            gevent.sleep(0.2)

    gevent.spawn(snapshots_on_request)


def _pymalloc_figures(sys, tempfile):
    """The summary lines of sys._debugmallocstats(), which writes to the C-level stderr."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    figures = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip().lstrip("# ").strip()
        if sep and value.strip().replace(",", "").isdigit():
            figures[key] = int(value.strip().replace(",", ""))
    return figures


_GENERATOR_FLAGS = 0x20 | 0x100 | 0x200  # generator, coroutine, async generator: frames live in the object
_FRAME_SPECIALS = 7  # words CPython 3.11 adds to each frame's locals and value stack


def _depth_probe(deepest):
    """A sys.setprofile hook: per connection greenlet, the call chain needing the most frame-stack bytes.

    `deepest["per_connection"]` maps a greenlet's id to (bytes, frames); only greenlets
    that serve a connection (started by gevent's server) are kept.
    """
    import gevent

    per_connection = deepest.setdefault("per_connection", {})

    def probe(frame, event, arg):
        if event != "call":
            return
        total, chain = 0, []
        current = frame
        while current is not None:
            code = current.f_code
            if not code.co_flags & _GENERATOR_FLAGS:
                slots = code.co_nlocals + len(code.co_cellvars) + len(code.co_freevars) + code.co_stacksize
                total += (slots + _FRAME_SPECIALS) * 8
            chain.append(current)
            current = current.f_back
        if chain[-1].f_code.co_name != "_handle_and_close_when_done":
            return
        key = id(gevent.getcurrent())
        if total > per_connection.get(key, (0, None))[0]:
            frames = [f"{f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}" for f in reversed(chain)]
            per_connection[key] = (total, frames)

    return probe


def _log_collections(path):
    """Append one line per garbage collection of generation 1 or 2: wall time, generation, seconds, objects."""
    import gc
    import time

    started = {}

    def callback(phase, info):
        if info["generation"] < 1:
            return
        if phase == "start":
            started["at"] = time.perf_counter()
            started["wall"] = time.time()
        elif "at" in started:
            took = time.perf_counter() - started.pop("at")
            with open(path, "a") as log:
                log.write(f"{started['wall']:.6f} {info['generation']} {took:.6f} {info['collected']}\n")

    gc.callbacks.append(callback)
