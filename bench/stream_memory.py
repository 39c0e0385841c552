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

    python -m bench.stream_memory
    python -m bench.stream_memory --streams 100 --probe-depth
    python -m bench.stream_memory --streams 1000 --trace --designs relay,naive
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.load.memory import DESIGNS, profile


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
