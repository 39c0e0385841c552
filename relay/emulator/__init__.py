"""A local, Replicate-compatible HTTP API with two demo models.

Relay talks to it through the real `replicate` client, over HTTP, exactly as
it talks to api.replicate.com. Every answer is derived from files in one state
directory, so any number of worker processes can each mount an instance and
agree with each other.

The app is imported lazily: `python -m relay.emulator` must be able to
monkey-patch with gevent before Flask, httpx or ssl are imported.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import flask

__all__ = ["create_emulator"]


def create_emulator(state_dir: str | os.PathLike[str], *, faults_enabled: bool = False) -> flask.Flask:
    """A standalone WSGI app serving the emulator from `state_dir`.

    Mount it anywhere (e.g. under `/emulator` with DispatcherMiddleware): every
    URL it returns is built from the request's own root. `faults_enabled` adds
    the test-only `/_emulator/faults` and `/_emulator/stats` routes.
    """
    from .app import create_app

    return create_app(state_dir, faults_enabled=faults_enabled)
