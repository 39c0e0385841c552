"""Ending open streams when the server asks the process to stop, however Relay is run.

A stream never ends by itself (heartbeats keep it open), so a server that waits
for open responses before exiting would wait out its whole graceful timeout. On
SIGTERM Relay ends every stream at once instead; browsers resume on another
worker with their last event id.

This hook belongs to the app, not to gunicorn.conf.py, so `gunicorn -k gevent
wsgi:app` run from anywhere behaves like the Procfile: `create_app` wraps the
SIGTERM handler the server installed (gunicorn's worker installs its own before
it loads the app) so that it first starts `shutdown`, then does what it did.
Without a Python-level handler (`flask run`, a plain script) SIGTERM ends the
process anyway and there is nothing to wrap.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["end_streams_on_sigterm"]

log = logging.getLogger(__name__)


def _in_background(work: Callable[[], None]) -> None:
    """Run `work` outside the signal handler: a greenlet under gevent, else a thread."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        patched = False
    else:
        patched = bool(monkey.is_module_patched("threading"))
    if patched:
        import gevent

        gevent.spawn(work)
    else:
        threading.Thread(target=work, name="relay-shutdown", daemon=True).start()


def end_streams_on_sigterm(shutdown: Callable[[], None]) -> bool:
    """Call `shutdown` (once) when SIGTERM arrives, before the server's own handler; True if hooked."""
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return False
    done = threading.Event()

    def once() -> None:
        if not done.is_set():
            done.set()
            shutdown()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        _in_background(once)
        previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    log.debug("open streams end on SIGTERM")
    return True
