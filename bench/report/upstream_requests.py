"""The section of docs/benchmarks.md on upstream GETs per prediction as subscribers grow.

Written from the results of bench/upstream_requests.py.
"""

from __future__ import annotations

from typing import Any

BAR_FLAT_TEXT = "1.1"
_UPSTREAM_LABELS = {"relay": "Relay, polling (one watcher per prediction)",
                    "relay_webhook": "Relay, webhooks (polling only as a safety net)",
                    "seed": "seed (each subscriber polls)"}


def section(r: dict[str, Any]) -> str:
    s = r["settings"]
    designs = s.get("designs", ["relay", "seed"])
    counts = s["subscribers"]
    low, high = min(counts), max(counts)
    t, ratios = r["table"], r["ratios"]
    rows = []
    for design in designs:
        for count in counts:
            row = t[f"{design}({count})"]
            runs = ", ".join(str(v) for v in row["runs"])
            rows.append(f"| {_UPSTREAM_LABELS.get(design, design)} | {count:,} | **{row['mean']:.1f}** | "
                        f"{row['median']:g} | {row['min']}–{row['max']} | {runs} |")
    ratio_rows = []
    for key, value in ratios.items():
        name = key.replace("relay_webhook", "Relay-webhooks").replace("relay", "Relay").replace("/", " / ")
        if key.endswith(f"({high})/relay({low})") or key.endswith(f"({high})/relay_webhook({low})"):
            name += f" (bar: ≤ {r['bar']['relay_high_over_low_max']})"
        ratio_rows.append(f"| {name} | **{value['mean']:.2f}** | {value['median']:.2f} |")
    bar_values = r["bar"].get("values") or {"relay": ratios[f"relay({high})/relay({low})"]["mean"]}
    verdict = "meets" if r["bar"]["met"] else "**misses**"
    bar_text = "; ".join(f"{_UPSTREAM_LABELS[d].split(' (')[0]}: {v:.2f}" for d, v in bar_values.items())
    seed_text = ""
    if "seed" in designs:
        per_subscriber = sorted({g for run in r["runs"] if run["design"] == "seed" and run["subscribers"] == high
                                 for g in (run["gets_per_subscriber"]["min"], run["gets_per_subscriber"]["max"])})
        seed_low_each = t[f"seed({low})"]["median"] / low
        demand = t[f"seed({low})"]["mean"] * high / low
        seed_high = ratios[f"seed({high})/relay({high})"]["mean"]
        spread = (f"between {per_subscriber[0]} and {per_subscriber[-1]}" if len(per_subscriber) > 1
                  else f"{per_subscriber[0]}")
        failed = [run for run in r["runs"] if run["design"] == "seed" and run.get("failed_subscribers")]
        failed_text = ""
        if failed:
            kinds = sorted({e.split(":")[0] for run in failed for e in run.get("errors", [])})
            failed_text = (f" In {len(failed)} of the seed's runs some pollers failed outright "
                           f"({sum(run['failed_subscribers'] for run in failed)} in all"
                           + (f": {', '.join(kinds)}" if kinds else "") + "), as the seed's page would have.")
        seed_text = f"""
The seed's traffic grows with the number of subscribers: at {high:,} subscribers it is
{seed_high:,.0f} times Relay's (polling). Even that understates the design's demand. A lone seed
subscriber polled {seed_low_each:g} times; with {high:,} subscribers each one managed {spread}
polls, because the one worker serving the emulator could not answer them all every
{s['poll_interval']} s on this machine, so each poll took longer and fewer fit into the
prediction's lifetime. An upstream that kept up would get about {demand:,.0f} GETs for one
prediction ({high:,} × seed({low})).{failed_text}
"""
    webhook_text = ""
    if "relay_webhook" in designs:
        w_low, w_high = t[f"relay_webhook({low})"], t[f"relay_webhook({high})"]
        webhook_text = f"""
In webhook mode the emulator pushes every state to Relay, so the watcher polls only before the
first push and then waits for `RELAY_WEBHOOK_RECONCILE` (30 s) of silence, which never comes in a
prediction this short: {w_low['mean']:.1f} GETs with {low} subscriber, {w_high['mean']:.1f} with
{high:,}.
"""
    inp = s["input"]
    return f"""## Upstream requests per prediction

**What.** The number of `GET /v1/predictions/<id>` requests the upstream API receives for one
prediction while {", ".join(f"{c:,}" for c in counts)} browsers follow it: Relay polling, Relay
taking webhooks, and the seed's design.

**How.** Two Relay servers (`gunicorn -k gevent -w 1 -c gunicorn.conf.py wsgi:app`,
`RELAY_POLL_INTERVAL={s['poll_interval']}`, `RELAY_EMULATOR_FAULTS=1`) on their embedded
emulators; the second has `RELAY_PUBLIC_URL` set to its own address, so its emulator delivers
signed webhooks to it. Each run creates one `relay/image-demo` prediction (`steps={inp['steps']}`,
`step_delay={inp['step_delay']}`, `boot_delay={inp['boot_delay']}`), which takes about
{t[f'relay({low})']['prediction_seconds_median']:.1f} s from start to end.
- *Relay*: a separate gevent process (`bench/load/clients.py follow`) creates the prediction with
  `POST /api/predictions`, then opens N SSE streams on its `stream_url` at once (httpx + httpx-sse)
  and reads each one to `event: done`.
- *Seed* (baseline): `bench/load/clients.py poll` reproduces the seed's design. It creates the
  prediction directly on the emulator, and N greenlets each poll
  `GET /emulator/v1/predictions/<id>` through the `replicate` client every {s['poll_interval']} s
  until the prediction is terminal.

The count comes from the emulator's own request log for that prediction id
(`GET /emulator/_emulator/stats`), so it includes every GET from any source. Runs are
interleaved (every design at 1 subscriber, then at 10, …) and repeated {s['repeats']} times.

| design | subscribers | GETs (mean) | median | min–max | runs |
|---|---:|---:|---:|---:|---|
{chr(10).join(rows)}

| ratio | of means | of medians |
|---|---:|---:|
{chr(10).join(ratio_rows)}

![GETs per prediction against subscribers](bench-upstream-requests.png)

**Result.** Relay {verdict} the bar (GETs with {high:,} subscribers / with {low}, ≤ {BAR_FLAT_TEXT}): {bar_text}
(means over {s['repeats']} runs). One watcher follows each prediction and the hub fans the events
out, so Relay's upstream traffic does not depend on how many browsers watch. Its count still
varies by a GET or so from run to run whatever the number of subscribers: the poll interval has
±10% jitter and stretches while the state does not change (the boot phase), so where the polls
fall against the prediction's phases differs from run to run; a ratio of medians of numbers this
small moves in steps of about 0.1, hence the means.
{webhook_text}{seed_text}
```sh
{r['command'].strip()}
```
(about {r['duration_s']:.0f} s here; raw results in `bench/results/upstream-requests.json`)
"""
