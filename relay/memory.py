"""Keeping a long-running worker's memory and pauses in check.

Two things measured in bench/ (docs/benchmarks.md) that no library setting covers:

- **Garbage-collector pauses during fan-out.** Every open stream keeps a few dozen
  tracked objects alive (its generator, greenlet, request, socket), and a fan-out to
  thousands of streams allocates enough short-lived containers to start full
  collections that walk all of them: 130–225 ms stalls at 5,000 streams. Freezing
  what exists once the app is loaded takes import-time objects out of every walk,
  and a higher first threshold makes collections rarer (Relay makes few cycles).
- **Freed memory that glibc keeps.** Resumes build buffers of tens of kilobytes that
  come from glibc's heap; freed out of order, they leave holes that RSS keeps
  (+18% after 20,000 connect/resume/disconnect cycles). `malloc_trim(0)` hands free
  pages back; it is run after every so many closed streams, by the housekeeper
  (`housekeep`, one thread per app), which also has the hub forget idle channels.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["housekeep", "malloc_trimmer", "tune_gc"]

log = logging.getLogger(__name__)

GEN0_THRESHOLD = 10_000
HOUSEKEEPING_SECONDS = 0.5
TRIM_AFTER_CLOSED_STREAMS = 200
REAP_SECONDS = 10  # forget idle channels; compact finished ones (relay/channels.py)


def tune_gc() -> None:
    """Call once the app is loaded in a worker (gunicorn's post_worker_init)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


def malloc_trimmer() -> Callable[[], bool] | None:
    """glibc's malloc_trim(0) as a function, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))


def housekeep(hub: Hub) -> None:
    """Until the hub closes: reap idle channels every REAP_SECONDS, and give freed memory back
    after churn (cheap, and only when streams came and went)."""
    trim = malloc_trimmer()
    reaped_at = time.monotonic()
    trimmed_after = hub.streams_closed
    while not hub.closing:
        time.sleep(HOUSEKEEPING_SECONDS)
        if time.monotonic() - reaped_at >= REAP_SECONDS:
            if hub.reap() and trim is not None:
                trim()  # forgotten channels' memory goes back too
            reaped_at = time.monotonic()
        if trim is not None and hub.streams_closed - trimmed_after >= TRIM_AFTER_CLOSED_STREAMS:
            trimmed_after = hub.streams_closed
            trim()
