"""A local, Replicate-compatible HTTP API with demo models.

Relay talks to it through the real `replicate` client, over HTTP, exactly as
it talks to api.replicate.com. Every answer is derived from files in one state
directory, so any number of worker processes can each mount an instance and
agree with each other. It never imports the rest of Relay.

The app is imported lazily: `python -m relay.emulator` must be able to
monkey-patch with gevent before Flask, httpx or ssl are imported.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .auth import token_from_secret

if TYPE_CHECKING:
    import flask

__all__ = ["create_emulator", "token_from_secret"]


def create_emulator(state_dir: str | os.PathLike[str], *, faults_enabled: bool = False,
                    token: str | None = None, files_url: str | None = None,
                    data_ttl: float | None = None, keep_for: float | None = None) -> flask.Flask:
    """A standalone WSGI app serving the emulator from `state_dir`.

    - `token`: the only bearer token the API accepts (compared in constant
      time); None accepts any non-empty token.
    - `files_url`: where browsers reach the output files (an absolute URL the
      emulator is mounted at, e.g. `https://relay.example/emulator`); None
      gives root-relative paths built from the mount point (`/emulator/files/…`).
      Never taken from a request's Host.
    - `data_ttl` / `keep_for`: seconds after a prediction ends until its data
      is removed (default an hour, like Replicate), then until it is deleted.
    - `faults_enabled` adds the test-only `/_emulator/faults` and `/_emulator/stats` routes.
    """
    from .app import create_app
    from .expiry import DATA_TTL, KEEP_FOR

    return create_app(state_dir, faults_enabled=faults_enabled, token=token, files_url=files_url,
                      data_ttl=DATA_TTL if data_ttl is None else data_ttl,
                      keep_for=KEEP_FOR if keep_for is None else keep_for)
