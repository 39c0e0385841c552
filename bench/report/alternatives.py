"""The section of docs/benchmarks.md on relay beside sse-starlette and Flask-SSE: memory per idle stream, fan-out.

Written from the results of bench/alternatives.py.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.report.common import load_result, verdict

BAR_FANOUT_P99_MS = 400.0


_ALT_LABELS = {"relay": "Relay (gunicorn + gevent, default setup)",
               "sse_starlette": "sse-starlette 3 under uvicorn (`bench/apps/starlette_app.py`)",
               "flask_sse": "Flask-SSE + Redis under gunicorn + gevent (`bench/apps/flask_sse_app.py`)"}


def section(r: dict[str, Any]) -> str:
    s = r["settings"]
    parts = ["""## Relay beside sse-starlette and Flask-SSE

**What.** Two costs of an SSE server, for Relay and two off-the-shelf stacks, in the same run:
resident memory per idle stream at 1,000, 5,000 and 10,000 streams in one process, and the
latency of fanning one update out to 1,000 and 5,000 subscribers of one channel.

**The alternatives** (`bench/requirements.txt`):
- *sse-starlette* under uvicorn (one process, asyncio event loop, h11): the smallest app that
  does what Relay's streams do, written as the package suggests: an `asyncio.Queue` per
  connection, `EventSourceResponse` with pings, a first comment at once, and a publish route
  that puts the event into every subscriber's queue.
- *Flask-SSE* on Redis under `gunicorn -k gevent -w 1` with the repository's `gunicorn.conf.py`:
  the extension's stock `sse` blueprint, unchanged (each stream subscribes to Redis pub/sub on a
  connection of its own), and its `sse.publish` behind a small route.
"""]
    idle = r.get("idle")
    if idle:
        t = idle["table"]
        targets = [str(n) for n in s["streams"]]
        header = " | ".join(f"{int(n):,} streams" for n in targets)
        rows = []
        for design, row in t.items():
            cells = []
            for n in targets:
                cell = row[n]
                kb = cell["kb_per_stream"]
                capped = f" (at {cell['streams']:,}†)" if cell["capped"] else ""
                cells.append(f"**{kb['median']:.2f}** ({kb['min']:.2f}–{kb['max']:.2f}){capped}")
            rows.append(f"| {_ALT_LABELS.get(design, design)} | {' | '.join(cells)} |")
        ratio_rows = [f"| {key} | **{value:.2f}** |" for key, value in idle["ratios"].items()]
        b = idle["bar"]
        redis_text = ""
        if "flask_sse" in t:
            at = t["flask_sse"][b["at"]].get("redis_kb_per_stream")
            if at:
                redis_text = (f" Flask-SSE's figure is the gunicorn worker's alone: the Redis server grows by another "
                              f"{at['median']:.1f} KB per stream (its client buffers), not counted above.")
        capped_text = ""
        if any(t[d][n]["capped"] for d in t for n in targets):
            capped_text = (f"\n† Flask-SSE needs two open files per stream in the worker (the browser's socket and "
                           f"its own Redis connection), and this machine's hard limit is "
                           f"{s['open_files_hard_limit']:,} open files per process, so its largest step holds "
                           f"{s['stream_caps']['flask_sse']:,} streams.\n")
        parts.append(f"""### Memory per idle stream

**How.** For each design and repeat a fresh server, its soft `RLIMIT_NOFILE` raised to the hard
limit; a client process (`bench/load/clients.py idle`, raw sockets) opens {s['warmup']} warm-up
streams, the benchmark reads the serving process's RSS (psutil, median of 5 samples), then the
client opens streams ({s['concurrency']} at a time) up to {", ".join(f"{int(n):,}" for n in targets)} in
all, and the RSS is read {s['settle_s']:g} s after each step. Cost per stream = growth over the
warm-up state / streams added. The server's own count of open streams (`/healthz`; for
Flask-SSE, Redis's `PUBSUB NUMSUB`) is checked against the client's at each step. Relay runs its
default setup (embedded emulator, polling) and its streams all follow one prediction that stays
`starting`; heartbeats and pings are set to {s['heartbeat_s']:g} s so that nothing is written while
memory is read. Flask-SSE's stream sends nothing, not even its headers, before its first
message, so its streams are opened without waiting for bytes and then, once Redis counts them
all, sent one message: every design's streams have then written their headers and one event.
Designs interleaved, {s['repeats']} repeats; median (min–max), KB per stream:

| design | {header} |
|---|{"---:|" * len(targets)}
{chr(10).join(rows)}
{capped_text}
| ratio at {int(b['at']):,} streams (medians) | value |
|---|---:|
{chr(10).join(ratio_rows)}

**Result.** Relay ≤ {b['relay_kb_per_stream_max']:g} KB per stream at {int(b['at']):,}: {verdict(b['met'])}
({b['value']:.2f} KB). The cost per stream is flat from 1,000 to 10,000 streams for every
design.{redis_text} Relay's stream is a generator, a cursor and a wake-up flag on a greenlet
(`relay/hub.py`, `relay/streams.py`); sse-starlette keeps per connection an asyncio task group
(the body, the pings, a disconnect and a shutdown listener) and a queue, Flask-SSE a Redis connection pool, a
pub/sub object and a socket.
""")
    fan = r.get("fanout")
    if fan:
        t = fan["table"]
        sizes = [str(n) for n in s["fanout"]]
        rows = []
        for design, row in t.items():
            cells = []
            for n in sizes:
                cell = row.get(n)
                if cell is None:
                    cells.append("–")
                    continue
                cells.append(f"{cell['p50_ms']['median']:.0f} / **{cell['p99_ms']['median']:.0f}** "
                             f"({cell['p99_ms']['min']:.0f}–{cell['p99_ms']['max']:.0f})")
            rows.append(f"| {_ALT_LABELS.get(design, design)} | {' | '.join(cells)} |")
        ratio_rows = [f"| {key} | **{value:.2f}** |" for key, value in fan["ratios"].items()]
        b = fan["bar"]
        header = " | ".join(f"{int(n):,} subscribers: p50 / p99 (p99 range)" for n in sizes)
        pooled_rows = []
        for design in t:
            cells = []
            for n in sizes:
                curves = [p["percentiles_ms"] for run in fan["runs"] if run["design"] == design
                          for p in run["publishes"] if str(p["subscribers"]) == n]
                cells.append(f"{pooled_percentile(curves, 99):.0f}" if curves else "–")
            pooled_rows.append(f"| {_ALT_LABELS.get(design, design)} | {' | '.join(cells)} |")
        relay_pooled = pooled_percentile([p["percentiles_ms"] for run in fan["runs"] if run["design"] == "relay"
                                          for p in run["publishes"] if str(p["subscribers"]) == b["at"]], 99)
        before = load_result("alternatives-before-gc-tuning.json")
        before_fan = (before or {}).get("fanout")
        if before_fan is not None and before_fan["machine"]["git"]["commit"] == fan["machine"]["git"]["commit"]:
            before_fan = None
        gc_text = _fanout_collections(fan, b["at"], before_fan)
        if before_fan is not None:
            commit = before_fan["machine"]["git"]["commit"][:12]
            label = f"Relay before it tuned its garbage collector (commit `{commit}`)"
            cells, pooled_cells = [], []
            for n in sizes:
                cell = before_fan["table"]["relay"].get(n)
                curves = [p["percentiles_ms"] for run in before_fan["runs"] if run["design"] == "relay"
                          for p in run["publishes"] if str(p["subscribers"]) == n]
                cells.append("–" if cell is None else
                             f"{cell['p50_ms']['median']:.0f} / **{cell['p99_ms']['median']:.0f}** "
                             f"({cell['p99_ms']['min']:.0f}–{cell['p99_ms']['max']:.0f})")
                pooled_cells.append(f"{pooled_percentile(curves, 99):.0f}" if curves else "–")
            rows.append(f"| {label} | {' | '.join(cells)} |")
            pooled_rows.append(f"| {label} | {' | '.join(pooled_cells)} |")
        parts.append(f"""### Fan-out: one update to many subscribers

**How.** For each design and repeat a fresh server; a client process (`bench/load/clients.py
fanout`) opens {", ".join(f"{int(n):,}" for n in sizes)} subscribers (cumulative) on one prediction
(channel). For each update, the client first puts every socket in one epoll set (so it adds
microseconds, not greenlet switches, to a subscriber's latency) and says so; the benchmark then
notes `time.time()` and publishes. Relay runs in webhook mode (`RELAY_PUBLIC_URL` = itself), its
worker with `bench/apps/gunicorn_profile.conf.py` (the repository's gunicorn settings plus a hook that
logs every garbage collection of generations 1 and 2), and the update is a signed webhook
delivery carrying the prediction's new state (its log grows by one line holding a unique
marker); the alternatives get the same JSON through their own
publish (a POST to their publish route). Each subscriber's latency is the arrival of the bytes
that complete the marker minus the publish time, on the same clock. {s['publishes']} updates per
size, {s['gap_s']:g} s apart, {s['repeats']} repeats: the table gives the medians over all updates of
each update's p50 and p99, and the range of the p99s, in ms.

| design | {header} |
|---|{"---:|" * len(sizes)}
{chr(10).join(rows)}

The same, all deliveries of all updates pooled (each update weighted alike), p99 in ms:

| design | {" | ".join(f"{int(n):,} subscribers" for n in sizes)} |
|---|{"---:|" * len(sizes)}
{chr(10).join(pooled_rows)}

| ratio at {int(b['at']):,} subscribers (medians) | value |
|---|---:|
{chr(10).join(ratio_rows)}

**Result.** Relay p99 ≤ {b['relay_p99_s_max']:g} s at {int(b['at']):,} subscribers: {verdict(b['met'])} for the
median update ({b['value_s'] * 1000:.0f} ms); over all deliveries pooled the p99 is {relay_pooled:.0f} ms.
Relay encodes an event once when it is published and wakes each
stream's greenlet, which writes the shared bytes; the time to reach the last subscriber is
the time one core takes to make {int(b['at']):,} socket writes through gunicorn's chunked
writer. sse-starlette does the same work through asyncio tasks and queues; Flask-SSE has Redis
send the message once per subscriber connection and each stream decode it again, JSON and all.
{gc_text}""")
    parts_run = ""
    if idle and fan and idle.get("machine") and fan.get("machine"):
        idle_git, fan_git = idle["machine"]["git"]["commit"], fan["machine"]["git"]["commit"]
        if idle_git != fan_git:
            parts_run = (f"The two parts ran separately (`--part`): memory at Relay commit `{idle_git[:12]}` (load "
                         f"average at start {idle['machine']['load_average_at_start']}), fan-out at `{fan_git[:12]}` "
                         f"(load average at start {fan['machine']['load_average_at_start']}); the machine line "
                         "below is the later run's.\n\n")
    picture = "![Memory per idle stream and fan-out latency, Relay and the alternatives](bench-alternatives.png)"
    parts.append(f"""{parts_run}{picture}

```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; `--part idle` or `--part fanout` runs one part and keeps the
other's results; raw results in `bench/results/alternatives.json`)
""")
    return "\n".join(parts)


def pooled_percentile(curves: list[list[float]], q: float) -> float:
    """The q-th percentile of several equally weighted distributions, each given by its 101 percentiles.

    Each distribution's fraction at or below x is read off its curve by linear interpolation;
    the pooled one is their mean, and this finds where it reaches q/100 (bisection).
    """
    def fraction(curve: list[float], x: float) -> float:
        if x <= curve[0]:
            return 0.0
        if x >= curve[-1]:
            return 1.0
        for i in range(100):
            if curve[i] <= x <= curve[i + 1]:
                span = curve[i + 1] - curve[i]
                return (i + (0.0 if span == 0 else (x - curve[i]) / span)) / 100
        return 1.0

    low, high = min(c[0] for c in curves), max(c[-1] for c in curves)
    for _ in range(60):
        middle = (low + high) / 2
        if sum(fraction(c, middle) for c in curves) / len(curves) < q / 100:
            low = middle
        else:
            high = middle
    return high


def _collection_figures(fan: dict[str, Any], at: str) -> dict[str, Any] | None:
    """Relay's updates at `at` subscribers and the garbage collections that ran while they went out."""
    updates = [p for run in fan["runs"] if run["design"] == "relay" for p in run["publishes"]
               if str(p["subscribers"]) == at and "collections" in p]
    if not updates:
        return None
    full = [p for p in updates if any(c["generation"] == 2 for c in p["collections"])]
    rest = [p for p in updates if p not in full]
    pauses = [c["ms"] for p in full for c in p["collections"] if c["generation"] == 2]
    gen1 = [c["ms"] for p in updates for c in p["collections"] if c["generation"] == 1]
    return {
        "updates": updates, "full": full, "rest": rest, "pauses": pauses, "gen1_max": max(gen1, default=0.0),
        "over": [p for p in updates if p["p99_ms"] > BAR_FANOUT_P99_MS],
        "pooled_p99": pooled_percentile([p["percentiles_ms"] for p in updates], 99),
        "p99_median": statistics.median(p["p99_ms"] for p in updates),
    }


def _fanout_collections(fan: dict[str, Any], at: str, before: dict[str, Any] | None = None) -> str:
    """What Relay's garbage collections did to the fan-out at `at` subscribers, now and in an earlier run."""
    now = _collection_figures(fan, at)
    if now is None:
        return ""
    then = _collection_figures(before, at) if before is not None else None
    text = ("\n**Garbage collection.** Relay's worker logs its collections of generations 1 and 2 in this "
            "benchmark (`bench/apps/gunicorn_profile.conf.py`, `BENCH_GC_LOG`).")
    if then is not None and then["full"]:
        commit = before["machine"]["git"]["commit"][:12] if before else "?"
        first = statistics.median(p["percentiles_ms"][0] for p in then["full"])
        text += (f" In the run before Relay tuned its collector (commit `{commit}`, "
                 f"`bench/results/alternatives-before-gc-tuning.json`), a full (generation 2) collection ran during "
                 f"{len(then['full'])} of the {len(then['updates'])} updates to {int(at):,} subscribers, taking "
                 f"{statistics.median(then['pauses']):.0f} ms (median; {min(then['pauses']):.0f}–"
                 f"{max(then['pauses']):.0f}): the first subscriber then waited {first:.0f} ms (median) and the "
                 f"update's p99 was {statistics.median(p['p99_ms'] for p in then['full']):.0f} ms; "
                 f"{len(then['over'])} updates had a p99 above {BAR_FANOUT_P99_MS:.0f} ms (worst "
                 f"{max((p['p99_ms'] for p in then['over']), default=0):.0f} ms), and over all deliveries pooled "
                 f"the p99 was {then['pooled_p99']:.0f} ms. A collection walks every object of the generations it "
                 "collects; each open stream keeps its generator, greenlet, socket, WSGI environ, request and "
                 "response alive (about 61 tracked objects per stream over some 88,000 at start, by "
                 "`bench/stream_memory.py --streams 2000 --designs relay`), and the short-lived objects one "
                 "fan-out allocates (a list of events and a rendered chunk per stream) start the collections. "
                 "None of those objects was garbage: the collections freed nothing.")
    if now["full"]:
        text += (f" In this run a full collection ran during {len(now['full'])} of the {len(now['updates'])} "
                 f"updates to {int(at):,} subscribers, taking {statistics.median(now['pauses']):.0f} ms (median); "
                 f"{len(now['over'])} updates had a p99 above {BAR_FANOUT_P99_MS:.0f} ms, and over all "
                 f"deliveries pooled the p99 was {now['pooled_p99']:.0f} ms.")
    else:
        text += (f" In this run no full collection ran while an update to {int(at):,} subscribers went out"
                 + (" (Relay's workers now freeze the objects that exist once the app is loaded and raise the "
                    "first collection threshold: `relay/memory.py`, called from `gunicorn.conf.py`)"
                    if then is not None and then["full"] else "")
                 + f"; generation-1 collections took at most {now['gen1_max']:.0f} ms, the median update's p99 "
                 f"was {now['p99_median']:.0f} ms and the pooled p99 {now['pooled_p99']:.0f} ms.")
    return text + "\n"
