"""Test-only routes under /_emulator: fault injection and request counts.

They exist only when the emulator is created with `faults_enabled=True`;
otherwise the paths are simply unknown (404).
"""

from __future__ import annotations

import time
from dataclasses import asdict

from flask import Flask, Response

from .api import json_response, read_json_body
from .core import Emulator
from .faults import parse_fault


def register_admin(app: Flask, emu: Emulator) -> None:
    @app.post("/_emulator/faults")
    def set_fault() -> Response:
        fault = parse_fault(read_json_body(), time.time())
        emu.faults.set(fault)
        return json_response({"fault": asdict(fault)})

    @app.get("/_emulator/faults")
    def get_fault() -> Response:
        fault = emu.faults.current()
        return json_response({"fault": None if fault is None else asdict(fault)})

    @app.delete("/_emulator/faults")
    def clear_fault() -> Response:
        emu.faults.clear()
        return json_response({"fault": None})

    @app.get("/_emulator/stats")
    def get_stats() -> Response:
        return json_response(emu.stats.summary())

    @app.delete("/_emulator/stats")
    def reset_stats() -> Response:
        emu.stats.reset()
        return json_response(emu.stats.summary())
