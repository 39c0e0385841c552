"""The sections of docs/benchmarks.md for push latency, the alternatives, churn and time to first byte.

Each function takes the JSON a benchmark wrote (docs/bench-*.json) and returns
Markdown; bench/report.py puts the page together.
"""

from __future__ import annotations

import json
from typing import Any

BAR_FANOUT_P99_MS = 400.0


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def push_latency(r: dict[str, Any]) -> str:
    s, t, gets, bars = r["settings"], r["table"], r["gets"], r["bars"]
    labels = {"poll": "polling, emulator-driven (`RELAY_POLL_INTERVAL=1`)",
              "webhook": "webhooks, emulator-driven (its 0.5 s logs throttle included)",
              "bench_webhook": "webhooks, deliveries signed and sent by the bench (Relay's own share)"}
    rows = []
    for key, label in labels.items():
        p, per = t[key]["pooled"], t[key]["per_repeat"]
        p99_range = f"{_ms(per['p99_ms']['min'])}–{_ms(per['p99_ms']['max'])}"
        rows.append(f"| {label} | {p['n']:,} | **{_ms(p['p50_ms'])}** | {_ms(p['p90_ms'])} | **{_ms(p['p99_ms'])}** | "
                    f"{_ms(p['max_ms'])} | {_ms(p['mean_ms'])} | {p99_range} |")
    get_rows = []
    for mode, label in (("poll", "polling"), ("webhook", "webhooks (emulator-driven)"),
                        ("bench_webhook", "webhooks (bench-driven)")):
        g = gets[mode]["per_prediction"]
        flow = gets[mode].get("during_flow_per_30s")
        flow_cell = f"{flow['median']:.2f} (max {flow['max']:.2f})" if flow else "–"
        get_rows.append(f"| {label} | {g['median']:g} | {g['min']:g}–{g['max']:g} | "
                        f"{', '.join(str(v) for v in gets[mode]['runs'])} | {flow_cell} |")
    ratio_rows = [f"| {key} | {value:.1f} |" for key, value in r["ratios"].items()]
    hook, poll, flow = bars["webhook_p99_ms"], bars["poll_mean_ms"], bars["gets_per_30s_while_webhooks_flow"]
    hook_p99s = t["bench_webhook"]["per_repeat"]["p99_ms"]
    hook_range = f"{hook_p99s['min']:.1f}–{hook_p99s['max']:.1f}"
    hook_repeat_note = (" (one repeat above the bar on its own)" if hook_p99s["max"] > hook["bar"] else "")
    hook_spread_note = (": the slowest 1% move between repeats far more than the median does, as tails do on a "
                        "shared 2-core machine where the worker, the subscriber and the sender compete with "
                        "whatever else runs" if hook_p99s["max"] > 2 * hook_p99s["min"] else "")
    seconds = s["boot_delay"] + s["steps"] * s["step_delay"]
    costs = r.get("progress_parse_ms", {})
    cost_text = ""
    if costs:
        cells = ", ".join(f"{int(n):,} lines: {ms:.2f} ms" for n, ms in costs.items())
        cost_text = f"""
**What in `relay/` costs time on this path.** A `py-spy record` of the worker during part B
(400 deliveries, 20 ms apart) put most of its samples in socket writes and gunicorn's request
parsing, as expected, and about a quarter in `relay/progress.py`. `Feed.apply`
(`relay/feed.py`) turns every upstream answer (each poll, each webhook) into a snapshot with
`snapshot_from_prediction`, which runs `parse_progress` over the whole log *before* the hub can
tell that nothing changed. `parse_progress` finds the last bar quickly, then `_stage_heading`
walks back through every earlier line of the same bar run (up to 1,000 lines), matching each one
against the bar regexes, to look for a "stage N" heading above the run. Emulator logs print
one line per step, as Cog models' logs read once split on CR, so the cost per answer grows with
the step count: {cells} (measured in this run, `progress_parse_ms` in the JSON). At 1,000 steps that
is about 5 ms of the worker's single core per answer: 100 such predictions polled once a second
would take half a core for this alone, and it sits on the webhook path before any subscriber is
woken. Two ways out: find where the bar run starts without running the bar regexes on each of
its lines (a cheap test first, such as the same `/total` and description), or remember per
prediction where the last run started and the heading found above it, and parse only what
was appended since the previous answer.
"""
    return f"""## Push latency: polling vs webhooks

**What.** How long a change in a prediction's state takes to reach a browser following it, with
Relay polling the upstream (`RELAY_POLL_INTERVAL=1`) and with Relay taking Replicate's webhooks
(`RELAY_PUBLIC_URL` set); and how many upstream GETs each prediction costs in each mode.

**How.** `bench/push_latency.py`, two parts, repeated {s['repeats']} times.
- *A, end to end (emulator-driven).* Two Relay servers side by side
  (`gunicorn -k gevent -w 1 -c gunicorn.conf.py wsgi:app`, embedded emulator,
  `RELAY_EMULATOR_FAULTS=1`), one polling, one with `RELAY_PUBLIC_URL` pointing at itself so that
  its emulator delivers signed webhooks to it. Each gets {s['predictions']} `relay/image-demo`
  predictions per repeat (`steps={s['steps']}`, `step_delay={s['step_delay']}`,
  `boot_delay={s['boot_delay']}`; about {seconds:.0f} s each), followed by one subscriber in another
  process (`bench/clients.py watch`, httpx-sse), which notes `time.time()` when each snapshot
  arrives. The emulator's states change at known times: processing starts at `started_at`
  (= `created_at` + `boot_delay`, carried by the snapshots) and step k ends at
  `started_at + k × step_delay`. The latency of each change (the start and steps 1–{s['steps']}) is
  the arrival of the first snapshot showing it (or a later state) minus its due time. In
  webhook mode the emulator sends a `logs` delivery at most every 0.5 s (as Replicate
  throttles them) and checks for due events every 0.1 s, so these latencies are mostly the
  upstream's own pace.
- *B, Relay's own share (bench-driven).* On the webhook server, a prediction that stays
  `starting` upstream; the benchmark plays Replicate: it signs {s['deliveries']} successive states
  (a growing tqdm log, then `succeeded`) with `standardwebhooks` using the secret from
  `GET /emulator/v1/webhooks/default/secret`, and POSTs them {s['delivery_interval']} s apart over a
  kept-alive connection, noting `time.time()` right before each request leaves. A subscriber in
  another process notes the arrival of the snapshot showing that step. Same machine, same clock.

Upstream GETs come from the emulator's request log, sampled every second, so that the GETs
made while webhooks were flowing (from 0.5 s after `started_at` to the end) can be counted
apart.

| updates | n | p50 ms | p90 ms | p99 ms | max ms | mean ms | p99 per repeat, ms |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

| upstream GETs per prediction | median | min–max | runs | GETs per 30 s while webhooks flow |
|---|---:|---:|---|---:|
{chr(10).join(get_rows)}

| ratio (same run) | value |
|---|---:|
{chr(10).join(ratio_rows)}

![Push latency CDFs and GETs per prediction](bench-push-latency.png)

**Result.**
- Webhook mode, p99 ≤ {hook['bar']:g} ms on loopback: {_verdict(hook['met'])}, {hook['value']:.1f} ms
  (bench-driven deliveries, all repeats pooled; the median is {t['bench_webhook']['pooled']['p50_ms']:.1f} ms).
  The p99 of single repeats ranges {hook_range} ms{hook_repeat_note}{hook_spread_note}.
- Polling, mean about {poll['bar']:g} ms: {_verdict(poll['met'])}, {poll['value']:.0f} ms. A change waits on average
  half a poll interval. The tail (p99 {t['poll']['pooled']['p99_ms']:,.0f} ms, max
  {t['poll']['pooled']['max_ms']:,.0f} ms) is the start of processing and the steps right after it: during
  the boot phase nothing changes, the adaptive interval stretches (×1.5 per unchanged poll), and
  the first poll after the start can come more than a second late.
- At most {flow['bar']:g} upstream GET per prediction per 30 s while webhooks flow: {_verdict(flow['met'])},
  at most {flow['value']:.2f} per 30 s over predictions of about {seconds:.0f} s. In webhook mode a prediction
  costs {gets['webhook']['per_prediction']['median']:g} GETs in all (before the first push), against
  {gets['poll']['per_prediction']['median']:g} when polling.
{cost_text}
```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `docs/bench-push-latency.json`)
"""


_ALT_LABELS = {"relay": "Relay (gunicorn + gevent, default setup)",
               "sse_starlette": "sse-starlette 3 under uvicorn (`bench/starlette_app.py`)",
               "flask_sse": "Flask-SSE + Redis under gunicorn + gevent (`bench/flask_sse_app.py`)"}


def alternatives(r: dict[str, Any]) -> str:
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
limit; a client process (`bench/clients.py idle`, raw sockets) opens {s['warmup']} warm-up
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

**Result.** Relay ≤ {b['relay_kb_per_stream_max']:g} KB per stream at {int(b['at']):,}: {_verdict(b['met'])}
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
        before = _load_doc("bench-alternatives-before-gc-tuning.json")
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

**How.** For each design and repeat a fresh server; a client process (`bench/clients.py
fanout`) opens {", ".join(f"{int(n):,}" for n in sizes)} subscribers (cumulative) on one prediction
(channel). For each update, the client first puts every socket in one epoll set (so it adds
microseconds, not greenlet switches, to a subscriber's latency) and says so; the benchmark then
notes `time.time()` and publishes. Relay runs in webhook mode (`RELAY_PUBLIC_URL` = itself), its
worker with `bench/gunicorn_profile.conf.py` (the repository's gunicorn settings plus a hook that
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

**Result.** Relay p99 ≤ {b['relay_p99_s_max']:g} s at {int(b['at']):,} subscribers: {_verdict(b['met'])} for the
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
other's results; raw results in `docs/bench-alternatives.json`)
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
    import statistics

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
    import statistics

    now = _collection_figures(fan, at)
    if now is None:
        return ""
    then = _collection_figures(before, at) if before is not None else None
    text = ("\n**Garbage collection.** Relay's worker logs its collections of generations 1 and 2 in this "
            "benchmark (`bench/gunicorn_profile.conf.py`, `BENCH_GC_LOG`).")
    if then is not None and then["full"]:
        commit = before["machine"]["git"]["commit"][:12] if before else "?"
        first = statistics.median(p["percentiles_ms"][0] for p in then["full"])
        text += (f" In the run before Relay tuned its collector (commit `{commit}`, "
                 f"`docs/bench-alternatives-before-gc-tuning.json`), a full (generation 2) collection ran during "
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


def _load_doc(name: str) -> dict[str, Any] | None:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "docs" / name
    return json.loads(path.read_text()) if path.exists() else None


def churn(r: dict[str, Any]) -> str:
    s, t, b = r["settings"], r["table"], r["bar"]
    labels = {"relay": f"Relay (resume with Last-Event-ID; events with {s['log_size']} bytes of logs)",
              "relay_small_events": "Relay, events with 20 bytes of logs (smaller replays)",
              "naive": "naive app, no resume (`bench/naive_app.py`)"}
    before = _load_doc("bench-churn-before-trim.json")
    if before is not None and before["machine"]["git"]["commit"] == r["machine"]["git"]["commit"]:
        before = None
    rows = []

    def row_cells(label: str, row: dict[str, Any], settled: bool) -> str:
        per_repeat = ", ".join(f"{v:+.2f}%" for v in row["growth_pct"]["runs"])
        quiet = row.get("growth_at_quiet_pct", row["growth_pct"] if not settled else None)
        quiet_cell = f"{quiet['median']:+.2f}%" if quiet else "–"
        settled_cell = f"**{row['growth_pct']['median']:+.2f}%** ({per_repeat})" if settled else "–"
        trimmed = row.get("rss_after_malloc_trim_mb")
        trim_cell = f"{trimmed['median']:.1f}" if trimmed else "–"
        return (f"| {label} | {row['rss_first_mb']['median']:.1f} | {row['rss_last_mb']['median']:.1f} | "
                f"{settled_cell} | {quiet_cell} | {trim_cell} | {row['cycles_per_s']['median']:.0f} |")

    settled_run = "settle_s" in s
    for design, row in t.items():
        rows.append(row_cells(labels.get(design, design), row, settled_run))
    if before is not None:
        commit = before["machine"]["git"]["commit"][:12]
        for design in ("relay", "relay_small_events"):
            if design in before["table"]:
                label = (f"Relay{', events with 20 bytes of logs' if design != 'relay' else ''}, "
                         f"before Relay trimmed its heap (commit `{commit}`)")
                rows.append(row_cells(label, before["table"][design], False))
    ratio_rows = [f"| {key} | {value:.2f} |" for key, value in r["ratios"].items()]
    head = (f"| design | RSS after {s['block']:,} (MB) | after {s['cycles']:,} (MB) | growth, settled (per repeat) "
            "| growth at quiet | after malloc_trim (MB) | cycles/s |")
    relay = t.get("relay", {})
    small = t.get("relay_small_events") or (before or {}).get("table", {}).get("relay_small_events")
    old_relay = (before or {}).get("table", {}).get("relay")
    quiet = relay.get("growth_at_quiet_pct")
    settle_text = ""
    if settled_run and quiet:
        settle_text = (f"\nRelay now hands freed heap memory back itself: its housekeeping calls glibc's "
                       "`malloc_trim(0)` once 200 streams have closed since the last trim (checked every 0.5 s) "
                       "(`relay/service.py`, "
                       f"`relay/memory.py`). Right when the server goes quiet, its RSS has grown by "
                       f"{quiet['median']:+.2f}% (median); {s['settle_s']:g} s later, by "
                       f"{relay['growth_pct']['median']:+.2f}%.")
    why = ""
    reference = old_relay or relay
    if reference.get("rss_after_malloc_trim_mb"):
        small_text = ""
        if small:
            small_text = (f" With events of 20 bytes of logs instead of {s['log_size']}, the same cycles grew RSS by "
                          f"{small['growth_pct']['median']:+.2f}% instead of "
                          f"{reference['growth_pct']['median']:+.2f}%: the growth rose with the size of what each "
                          "resume replays, and the rest came with the cycles themselves.")
        when = ("In the run before Relay trimmed its heap (the \"before\" rows), RSS grew by "
                f"{reference['growth_pct']['median']:+.2f}% (median) by the end. " if old_relay else "")
        why = f"""
**Where the growth came from.** {when}Not live objects. Run with `--trace` (the worker under
tracemalloc; `bench/churn.py --trace --cycles 6000 --repeats 1 --designs relay`), the Python heap
grew by under 3 bytes per cycle between the first and the last reading (the webhook ids
`relay/webhooks.py` remembers for an hour), while RSS grew by hundreds of bytes per cycle.
When the worker called `malloc_trim(0)` after the last reading (the "after malloc_trim" column;
`bench/gunicorn_profile.conf.py`), RSS fell to {reference['rss_after_malloc_trim_mb']['median']:.1f} MB,
below the reading after the first {s['block']:,} cycles ({reference['rss_first_mb']['median']:.1f} MB): the growth was
memory Python had freed and glibc's allocator kept, fragmented, in the process.{small_text} Part of
it has a clear source, which is still there: each resume makes large short-lived buffers.
`_Follower.render_replay` (`relay/streams.py`) joins every replayed event into one `bytes` (here
about 50 events of ~{s['log_size'] + 300} bytes), and gunicorn's chunked writer copies that chunk once
more to frame it. Buffers of tens of kilobytes come from glibc's heap, not from Python's
small-object allocator, and freed in another order than they were taken they leave holes the
heap keeps; the other objects of a cycle (a request's worth of Flask, token, hub and gunicorn
state, several times the naive app's, which stays flat) add to it. Yielding the replay event by
event (the events' `wire` bytes already exist in the hub's history and need no copy) would keep
every per-resume allocation small, with or without the trim.
"""
    return f"""## Connection churn

**What.** Whether one worker gives back what {s['cycles']:,} connect / resume / disconnect cycles
took: its RSS after the first {s['block']:,} cycles and after all {s['cycles']:,}.

**How.** `bench/churn.py`. One Relay server (`gunicorn -k gevent -w 1`, embedded emulator,
webhook mode) and one prediction that stays `starting` upstream; the benchmark moves it with
signed webhook deliveries (`bench/webhook_driver.py`), {s['prefill']} before the first cycle (the
history holds 256 events) and then one every {s['tick_s']:g} s, each with a log of the same size
({s['log_size']} bytes), so the prediction's history does not grow during the run. A client process
(`bench/clients.py churn`) follows the stream once to learn event ids, then runs cycles,
{s['concurrency']} at a time: connect with a `Last-Event-ID` from the last 100 events, read until the
first replayed event, hang up. The server notices a gone client at its next write (the next
delivery, within {s['tick_s']:g} s). After every {s['block']:,} cycles the benchmark waits until
`/healthz` counts only the follower's stream and reads the worker's RSS (median of 5 samples:
"at quiet"), then waits {s.get('settle_s', 0):g} s more and reads it again ("settled"; the bar is
judged on this one). The Relay worker runs with `bench/gunicorn_profile.conf.py` (the
repository's settings plus a hook that, after the last reading, calls `malloc_trim(0)` in the
worker on request). The baseline, in the same run and under the same gunicorn settings, is
the naive queue-per-stream app (it has no resume: each cycle reads its first event; heartbeat
1 s, so abandoned streams end as soon). {s['repeats']} repeats, interleaved.

{head}
|---|---:|---:|---|---:|---:|---:|
{chr(10).join(rows)}

| ratio (same run) | value |
|---|---:|
{chr(10).join(ratio_rows)}

![Worker RSS through connection churn](bench-churn.png)

**Result.** RSS after {s['cycles']:,} cycles within {b['growth_max'] * 100:g}% of RSS after the first
{s['block']:,} (worst repeat, settled readings): {_verdict(b['met'])} ({b['value'] * 100:+.2f}%).{settle_text}
{why}
```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `docs/bench-churn.json`; the run before Relay
trimmed its heap in `docs/bench-churn-before-trim.json`)
"""


def ttfb(r: dict[str, Any]) -> str:
    s, t = r["settings"], r["table"]
    labels = {"relay_stream": "stream, Relay", "naive_stream": "stream, naive app (baseline)",
              "relay_create": "create, Relay (`POST /api/predictions`)",
              "emulator_create": "create, the upstream alone (the emulator's own create)"}
    rows = []
    for kind, label in labels.items():
        row = t[kind]
        b, body, per = row["first_byte"], row["first_body"], row["per_repeat"]
        p99_range = f"{per['p99_ms']['min']:.2f}–{per['p99_ms']['max']:.2f}"
        rows.append(f"| {label} | {b['n']:,} | **{b['p50_ms']:.2f}** | **{b['p99_ms']:.2f}** | "
                    f"{p99_range} | {body['p50_ms']:.2f} | {body['p99_ms']:.2f} |")
    ratio_rows = [f"| {key} | {value:.2f} |" for key, value in r["ratios"].items()]
    stream, create = t["relay_stream"], t["relay_create"]
    create_input = json.dumps(s["create_input"])
    return f"""## Time to first byte

**What.** How soon a stream starts answering (a browser shows nothing before; Heroku's router
gives up after 30 s), and, for context, how long the create route takes.

**How.** `bench/ttfb.py`. One Relay server and the naive app (`gunicorn -k gevent -w 1`, same
settings; `RELAY_HEARTBEAT_INTERVAL=1` so abandoned streams end within a second). A client
process (`bench/clients.py ttfb`) sends requests one after another, each on a new TCP
connection, and times from just before `connect` to the answer's first byte (its status line)
and to its first body bytes (a stream's `retry:` chunk; a create's whole JSON answer). Streams
follow a prediction that stays `starting`; creates start `relay/image-demo` with
`{create_input}`. The upstream-alone baseline sends the same create straight to the embedded
emulator. {s['streams']} streams and {s['creates']} creates per design and repeat, {s['repeats']} repeats
interleaved, after a few unmeasured requests of each kind; all repeats pooled.

| request | n | first byte p50 ms | first byte p99 ms | p99 per repeat | first body / whole answer p50 ms | p99 ms |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

| ratio (same run) | value |
|---|---:|
{chr(10).join(ratio_rows)}

![Time to first byte](bench-ttfb.png)

**Result.** No bar was set here. A Relay stream's first bytes (its status line, and with it the
`retry:` chunk) leave {stream['first_byte']['p50_ms']:.1f} ms after the connection opens (p99
{stream['first_byte']['p99_ms']:.1f} ms), {r['ratios']['relay/naive stream, p50']:.2f} times the naive app's:
the difference is the token check, the resume lookup and the subscription. A create takes
{create['first_body']['p50_ms']:.1f} ms (p99 {create['first_body']['p99_ms']:.1f} ms), about
{r['ratios']['relay create / emulator create, p50']:.1f} times the upstream's own create: Relay's share is the
validation, the rate limit, the upstream call itself over HTTP through the `replicate` client
(here to the emulator in the same worker), starting the watcher and signing two tokens.

```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `docs/bench-ttfb.json`)
"""
