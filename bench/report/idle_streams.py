"""The section of docs/benchmarks.md on memory per idle stream against the queue-per-stream design.

Written from the results of bench/idle_streams.py.
"""

from __future__ import annotations

from typing import Any

_LABELS = {
    "relay": "Relay, embedded emulator (the no-token default)",
    "relay_external_upstream": "Relay, upstream in another process (as with Replicate)",
    "naive": "naive: a `gevent.queue.Queue` per stream (`bench/apps/naive_app.py`)",
    "naive_behind_dispatcher": "naive behind a `DispatcherMiddleware`, as Relay mounts its emulator",
}


def section(r: dict[str, Any]) -> str:
    s, t, ratios = r["settings"], r["table"], r["ratios"]
    rows = []
    for design, row in t.items():
        kb, uss = row["kb_per_stream"], row["uss_kb_per_stream"]
        runs = ", ".join(f"{v:.2f}" for v in kb["runs"])
        rows.append(f"| {_LABELS.get(design, design)} | **{kb['median']:.2f}** | {kb['min']:.2f}–{kb['max']:.2f} "
                    f"| {runs} | {uss['median']:.2f} | {row['rss_before_mb_median']:.1f} |")
    ratio_rows = [f"| {key} | **{value:.2f}** |" for key, value in ratios.items()]
    relay_kb = t["relay"]["kb_per_stream"]["median"]
    bar = r["bar"]["relay_kb_per_stream_max"]
    verdict = (f"meets the bar ({relay_kb:.2f} ≤ {bar:g} KB)" if r["bar"]["met"]
               else f"**misses the bar**: {relay_kb:.2f} KB per stream against ≤ {bar:g} KB")
    explanation = _idle_explanation(r)
    return f"""## Memory per idle stream

**What.** Resident memory that one idle SSE stream costs a gevent worker, at {s['streams']:,}
streams in one worker, for Relay and for the naive design.

**How.** Each measurement starts a fresh server: `gunicorn -k gevent -w 1 -c gunicorn.conf.py …`
with its soft `RLIMIT_NOFILE` raised (in the launching process, so gunicorn inherits it) and
`RELAY_HEARTBEAT_INTERVAL={s['heartbeat_s']:g}`, so the streams stay silent while they are measured.
Relay serves one prediction that stays `starting` (`boot_delay` 300 s, created with
`POST /api/predictions`), and every stream uses its `stream_url`. A separate gevent process
(`bench/load/clients.py idle`) opens {s['warmup']} warm-up streams with raw sockets. The script then
reads the worker's RSS (psutil, the gunicorn master's only child; the median of 5 samples),
opens {s['streams']:,} more streams ({s['concurrency']} at a time), waits until each has received
its first bytes plus {s['settle_s']:g} s, and reads the RSS again. The cost per stream is the
difference divided by {s['streams']:,}. The server's own count of open streams (`/healthz`) is
checked against the client's. The designs run interleaved on fresh servers, repeated
{s['repeats']} times. The table gives the median, the range and each run; USS is the same
difference measured as unique set size.

| design | KB/stream (median) | min–max | runs | USS KB/stream | RSS before (MB) |
|---|---:|---:|---|---:|---:|
{chr(10).join(rows)}

| ratio | value |
|---|---:|
{chr(10).join(ratio_rows)}

**Result.** Relay, as the benchmark runs it (no token, embedded emulator), {verdict}; the
naive baseline measures {t['naive']['kb_per_stream']['median']:.2f} KB.
{explanation}
```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `bench/results/idle-streams.json`; the diagnostics above:
`python -m bench.stream_memory --streams 2000` and `… --streams 100 --probe-depth`)
"""


PAGE_BYTES = 4096


def _idle_explanation(r: dict[str, Any]) -> str:
    """Why the designs differ, from the variants and the call-depth probe of the same run."""
    t, diagnosis = r["table"], r.get("diagnosis", {})
    kb = {design: row["kb_per_stream"]["median"] for design, row in t.items()}
    if not {"relay", "relay_external_upstream", "naive", "naive_behind_dispatcher"} <= kb.keys():
        return ""
    mount_naive = kb["naive_behind_dispatcher"] - kb["naive"]
    mount_relay = kb["relay"] - kb["relay_external_upstream"]
    bar = r["bar"]["relay_kb_per_stream_max"]
    rows = []
    for design, chain in diagnosis.items():
        if chain:
            rows.append(f"| {_LABELS.get(design, design)} | {kb[design]:.2f} | ~{chain['median_bytes']:,} "
                        f"| {len(chain['frames'])} |")
    chain_table = ""
    if rows:
        chain_table = (
            "\n| design | KB/stream | deepest call chain, frame-stack bytes (estimate) | frames |\n"
            "|---|---:|---:|---:|\n" + "\n".join(rows) + "\n")
    relay_chain = diagnosis.get("relay", {}).get("frames", [])
    chain_listing = ""
    if relay_chain:
        chain_listing = ("\nRelay's deepest call chain for a stream request, from the probe (outermost first):\n\n"
                         "```\n" + "\n".join(relay_chain) + "\n```\n")
    one_page = abs(mount_naive * 1024 - PAGE_BYTES) < 512
    base_chain = diagnosis.get("naive", {}).get("median_bytes", 0)
    mount_text = (
        f"Putting the naive app behind a `DispatcherMiddleware`, which is all that changes, adds "
        f"{mount_naive:+.2f} KB per stream"
        + (", one 4 KiB page." if one_page else ".")
    )
    if abs(mount_relay) < 1:
        relay_text = (f"Relay reaches its embedded emulator through a route, not a dispatcher around the app, "
                      f"so the emulator costs its streams nothing in this run ({kb['relay']:.2f} KB with the "
                      f"embedded emulator, {kb['relay_external_upstream']:.2f} KB with the upstream in another "
                      "process).")
    else:
        relay_text = (
            f"Relay pays the same: {kb['relay']:.2f} KB per stream with the embedded emulator, which "
            f"`relay/__init__.py` mounts with a `DispatcherMiddleware` when no token and no "
            f"`REPLICATE_BASE_URL` are set. Run with its upstream in another process (`REPLICATE_BASE_URL` "
            f"pointing to a standalone `python -m relay.emulator`, as with Replicate in production), the "
            f"same Relay costs {kb['relay_external_upstream']:.2f} KB ({mount_relay:+.2f} KB)."
        )
    verdict = ""
    if kb["relay"] > bar >= kb["relay_external_upstream"]:
        verdict = (
            f"\n**So the bar is missed by the mount, not by the hub.** Without the embedded emulator, Relay "
            f"is under the bar and below the baseline ({kb['relay_external_upstream']:.2f} against "
            f"{kb['naive']:.2f} KB, {kb['relay_external_upstream'] / kb['naive']:.2f}×). A stream costs "
            "it a cursor and a wake-up flag (`relay/hub.py`: `Waker`), where the baseline "
            "holds a `Queue` per stream. To bring the default setup (no token) under the bar, serve the emulator "
            "without wrapping every request in a WSGI dispatcher: for example, register its routes on the "
            "app itself, or run it as its own process. This is a threshold effect, so it can flip either way. "
            "Any frame added to or removed from the deepest path of a stream request moves every stream by "
            "a whole page. Examples are another middleware, a `ProxyFix` (added when "
            "`RELAY_TRUSTED_PROXIES` > 0, as on Heroku) or a deeper route.\n"
        )
    return f"""
### Where the per-stream memory goes

{mount_text} {relay_text}

Why a whole page: each connection runs in its own greenlet. On CPython 3.11, each greenlet also
gets its own stack for Python frames, allocated with mmap. Every page that stack touches at its
deepest point stays resident for as long as the greenlet lives, even after the stream
returns to a shallow idle wait. For these requests the deepest point is werkzeug's recursive URL
matcher inside `Flask.wsgi_app`, at about {base_chain / 1024:.1f} KiB of frames by the estimate
below. One more frame on the path (the dispatcher's `__call__`) pushes every stream onto a second
page. When we ran `bench/stream_memory.py` (no probe), the Python heap (pymalloc blocks,
gc-tracked objects) grew by the same amount with and without the mount. The call-depth probe (`bench/stream_memory.py
--probe-depth`, 100 streams per design, run by this script after the measurements) estimates each
connection's deepest chain:
{chain_table}{chain_listing}{verdict}"""
