"""The section of docs/benchmarks.md on connection churn: RSS through connect/resume/disconnect cycles.

Written from the results of bench/churn.py.
"""

from __future__ import annotations

from typing import Any

from bench.report.common import load_result, verdict


def section(r: dict[str, Any]) -> str:
    s, t, b = r["settings"], r["table"], r["bar"]
    labels = {"relay": f"Relay (resume with Last-Event-ID; events with {s['log_size']} bytes of logs)",
              "relay_small_events": "Relay, events with 20 bytes of logs (smaller replays)",
              "naive": "naive app, no resume (`bench/apps/naive_app.py`)"}
    before = load_result("churn-before-trim.json")
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
`bench/apps/gunicorn_profile.conf.py`), RSS fell to {reference['rss_after_malloc_trim_mb']['median']:.1f} MB,
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
signed webhook deliveries (`bench/load/webhooks.py`), {s['prefill']} before the first cycle (the
history holds 256 events) and then one every {s['tick_s']:g} s, each with a log of the same size
({s['log_size']} bytes), so the prediction's history does not grow during the run. A client process
(`bench/load/clients.py churn`) follows the stream once to learn event ids, then runs cycles,
{s['concurrency']} at a time: connect with a `Last-Event-ID` from the last 100 events, read until the
first replayed event, hang up. The server notices a gone client at its next write (the next
delivery, within {s['tick_s']:g} s). After every {s['block']:,} cycles the benchmark waits until
`/healthz` counts only the follower's stream and reads the worker's RSS (median of 5 samples:
"at quiet"), then waits {s.get('settle_s', 0):g} s more and reads it again ("settled"; the bar is
judged on this one). The Relay worker runs with `bench/apps/gunicorn_profile.conf.py` (the
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
{s['block']:,} (worst repeat, settled readings): {verdict(b['met'])} ({b['value'] * 100:+.2f}%).{settle_text}
{why}
```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `bench/results/churn.json`; the run before Relay
trimmed its heap in `bench/results/churn-before-trim.json`)
"""
