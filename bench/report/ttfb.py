"""The section of docs/benchmarks.md on time to first byte of a create and of a stream.

Written from the results of bench/ttfb.py.
"""

from __future__ import annotations

import json
from typing import Any


def section(r: dict[str, Any]) -> str:
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
process (`bench/load/clients.py ttfb`) sends requests one after another, each on a new TCP
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
(about {r['duration_s']:.0f} s here; raw results in `bench/results/ttfb.json`)
"""
