"""The section of docs/benchmarks.md on push latency: polling against webhooks.

Written from the results of bench/push_latency.py.
"""

from __future__ import annotations

from typing import Any

from bench.report.common import ms, verdict


def section(r: dict[str, Any]) -> str:
    s, t, gets, bars = r["settings"], r["table"], r["gets"], r["bars"]
    labels = {"poll": "polling, emulator-driven (`RELAY_POLL_INTERVAL=1`)",
              "webhook": "webhooks, emulator-driven (its 0.5 s logs throttle included)",
              "bench_webhook": "webhooks, deliveries signed and sent by the bench (Relay's own share)"}
    rows = []
    for key, label in labels.items():
        p, per = t[key]["pooled"], t[key]["per_repeat"]
        p99_range = f"{ms(per['p99_ms']['min'])}–{ms(per['p99_ms']['max'])}"
        rows.append(f"| {label} | {p['n']:,} | **{ms(p['p50_ms'])}** | {ms(p['p90_ms'])} | **{ms(p['p99_ms'])}** | "
                    f"{ms(p['max_ms'])} | {ms(p['mean_ms'])} | {p99_range} |")
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
  process (`bench/load/clients.py watch`, httpx-sse), which notes `time.time()` when each snapshot
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
- Webhook mode, p99 ≤ {hook['bar']:g} ms on loopback: {verdict(hook['met'])}, {hook['value']:.1f} ms
  (bench-driven deliveries, all repeats pooled; the median is {t['bench_webhook']['pooled']['p50_ms']:.1f} ms).
  The p99 of single repeats ranges {hook_range} ms{hook_repeat_note}{hook_spread_note}.
- Polling, mean about {poll['bar']:g} ms: {verdict(poll['met'])}, {poll['value']:.0f} ms. A change waits on average
  half a poll interval. The tail (p99 {t['poll']['pooled']['p99_ms']:,.0f} ms, max
  {t['poll']['pooled']['max_ms']:,.0f} ms) is the start of processing and the steps right after it: during
  the boot phase nothing changes, the adaptive interval stretches (×1.5 per unchanged poll), and
  the first poll after the start can come more than a second late.
- At most {flow['bar']:g} upstream GET per prediction per 30 s while webhooks flow: {verdict(flow['met'])},
  at most {flow['value']:.2f} per 30 s over predictions of about {seconds:.0f} s. In webhook mode a prediction
  costs {gets['webhook']['per_prediction']['median']:g} GETs in all (before the first push), against
  {gets['poll']['per_prediction']['median']:g} when polling.
{cost_text}
```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `bench/results/push-latency.json`)
"""
