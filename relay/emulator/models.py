"""The two demo models and what their predictions show at a given moment.

`relay/image-demo` mimics a diffusion model: tqdm progress in its logs, one
PNG at the end. `relay/text-demo` mimics a language model: tokens appear in
its output one by one and on its stream. Everything a model shows is a pure
function of the stored record, the current time and the URL root the client
reached the emulator on.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .inputs import InputSpec, resolve_input
from .progress import progress_line
from .store import Record
from .timeline import Phase, Timeline

_BOOT_DELAY = InputSpec(
    "boot_delay",
    "number",
    "Emulator only: seconds spent in `starting`",
    default=0.5,
    minimum=0,
    maximum=300,
)


@dataclass(frozen=True)
class State:
    """A prediction's changing fields at one moment."""

    status: str
    started_at: float | None
    completed_at: float | None
    logs: str | None
    output: Any
    error: str | None


class DemoModel(ABC):
    owner = "relay"
    name: str
    description: str
    inputs: tuple[InputSpec, ...]
    streams = False

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def version_id(self) -> str:
        # One fixed version per model, stable across runs and processes.
        return hashlib.sha256(self.ref.encode()).hexdigest()

    def values(self, record: Record) -> dict[str, Any]:
        """The record's input with defaults (it was validated at create)."""
        return resolve_input(self.inputs, record.input)

    @abstractmethod
    def timeline(self, record: Record) -> Timeline: ...

    @abstractmethod
    def _show(self, record: Record, phase: Phase, url_root: str) -> State: ...

    def state(self, record: Record, now: float, url_root: str) -> State:
        phase = self.timeline(record).phase(now, record.canceled_at)
        return self._show(record, phase, url_root)

    def next_change(self, record: Record, now: float) -> float | None:
        if record.canceled_at is not None and record.canceled_at <= now:
            return None
        return self.timeline(record).next_change(now)


def default_seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")


class ImageDemo(DemoModel):
    name = "image-demo"
    description = "Emulated text-to-image model: tqdm progress in logs, one PNG output."
    inputs = (
        InputSpec("prompt", "string", "What to draw", required=True),
        InputSpec("steps", "integer", "Denoising steps", default=20, minimum=1, maximum=500),
        InputSpec("seed", "integer", "Random seed; derived from the prompt when omitted"),
        InputSpec("width", "integer", "Image width", default=512, minimum=64, maximum=1024),
        InputSpec("height", "integer", "Image height", default=512, minimum=64, maximum=1024),
        InputSpec("step_delay", "number", "Seconds per step", default=0.15, minimum=0, maximum=10),
        InputSpec("fail_at_step", "integer", "Fail when this step is reached", minimum=1),
        _BOOT_DELAY,
    )

    def seed(self, values: dict[str, Any]) -> int:
        seed = values["seed"]
        return int(seed) if seed is not None else default_seed(values["prompt"])

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        return Timeline(record.created_at, v["boot_delay"], v["step_delay"], v["steps"], v["fail_at_step"])

    def _show(self, record: Record, phase: Phase, url_root: str) -> State:
        v = self.values(record)
        logs = None
        if phase.started_at is not None:
            lines = [f"Using seed: {self.seed(v)}"]
            lines += [progress_line(k, v["steps"], k * v["step_delay"]) for k in range(phase.done + 1)]
            logs = "".join(line + "\n" for line in lines)
        output = [f"{url_root}files/{record.id}/output.png"] if phase.status == "succeeded" else None
        error = f"Simulated failure at step {v['fail_at_step']}" if phase.status == "failed" else None
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, error)


_VOCABULARY = (
    "the quick river light carries a quiet song across old stone and warm rain "
    "while small birds gather near open windows under amber sky every morning "
    "brings new paths through tall grass where distant bells echo softly over "
    "green hills and silver clouds drift slowly toward the sea"
).split()


def tokens_for(prompt: str, count: int) -> list[str]:
    """The first `count` tokens a text-demo prediction emits for `prompt`."""
    out = []
    for i in range(count):
        digest = hashlib.sha256(f"{prompt}\0{i}".encode()).digest()
        word = _VOCABULARY[int.from_bytes(digest[:4], "big") % len(_VOCABULARY)]
        out.append(word if i == 0 else " " + word)
    return out


class TextDemo(DemoModel):
    name = "text-demo"
    description = "Emulated language model: tokens stream one at a time."
    streams = True
    inputs = (
        InputSpec("prompt", "string", "Text to continue", required=True),
        InputSpec("max_tokens", "integer", "Tokens to generate", default=24, minimum=1, maximum=2000),
        InputSpec("token_delay", "number", "Seconds per token", default=0.08, minimum=0, maximum=10),
        InputSpec("fail_at_token", "integer", "Fail when this token is reached", minimum=1),
        _BOOT_DELAY,
    )

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        return Timeline(
            record.created_at, v["boot_delay"], v["token_delay"], v["max_tokens"], v["fail_at_token"]
        )

    def _show(self, record: Record, phase: Phase, url_root: str) -> State:
        v = self.values(record)
        if phase.started_at is None:
            return State(phase.status, None, phase.completed_at, None, None, None)
        logs = f"Generating up to {v['max_tokens']} tokens\n"
        if phase.status == "succeeded":
            logs += f"Generated {phase.done} tokens\n"
        output = tokens_for(v["prompt"], phase.done)
        error = f"Simulated failure at token {v['fail_at_token']}" if phase.status == "failed" else None
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, error)


MODELS: dict[str, DemoModel] = {m.ref: m for m in (ImageDemo(), TextDemo())}
_BY_VERSION = {m.version_id: m for m in MODELS.values()}


def model_for(ref: str) -> DemoModel | None:
    return MODELS.get(ref)


def model_for_version(version: str) -> DemoModel | None:
    """Resolve `<64 hex>`, `owner/name` or `owner/name:<64 hex>`."""
    if "/" not in version:
        return _BY_VERSION.get(version)
    ref, sep, version_id = version.partition(":")
    model = MODELS.get(ref)
    if model is None or (sep and version_id != model.version_id):
        return None
    return model
