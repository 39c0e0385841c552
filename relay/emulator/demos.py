"""The first two demo models, which the rest of Relay is built around.

`relay/image-demo` mimics a diffusion model: tqdm progress in its logs and
`num_outputs` PNGs at the end. `relay/text-demo` mimics a language model:
tokens appear in its output one by one and on its stream.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from .base import BOOT_DELAY, DemoModel, OutputFile, State, default_seed
from .inputs import InputSpec
from .png import render_image
from .progress import progress_line
from .store import Record
from .timeline import Phase, Timeline


def image_name(index: int) -> str:
    return "output.png" if index == 0 else f"output-{index}.png"


class ImageDemo(DemoModel):
    name = "image-demo"
    description = "Emulated text-to-image model: tqdm progress in logs, one PNG per output."
    default_example: ClassVar[dict[str, Any]] = {"prompt": "a lighthouse at dawn"}
    inputs = (
        InputSpec("prompt", "string", "What to draw", required=True),
        InputSpec("steps", "integer", "Denoising steps", default=20, minimum=1, maximum=500),
        InputSpec("seed", "integer", "Random seed; derived from the prompt when omitted"),
        InputSpec("width", "integer", "Image width", default=512, minimum=64, maximum=1024),
        InputSpec("height", "integer", "Image height", default=512, minimum=64, maximum=1024),
        InputSpec("num_outputs", "integer", "Number of images", default=1, minimum=1, maximum=4),
        InputSpec("step_delay", "number", "Seconds per step", default=0.15, minimum=0, maximum=10),
        InputSpec("fail_at_step", "integer", "Fail when this step is reached", minimum=1),
        BOOT_DELAY,
    )

    def seed(self, values: dict[str, Any]) -> int:
        seed = values["seed"]
        return int(seed) if seed is not None else default_seed(values["prompt"])

    def output_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"}

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        return Timeline(record.created_at, v["boot_delay"], v["step_delay"], v["steps"], v["fail_at_step"])

    def _show(self, record: Record, phase: Phase, files_root: str) -> State:
        v = self.values(record)
        logs = None
        if phase.started_at is not None:
            lines = [f"Using seed: {self.seed(v)}"]
            lines += [progress_line(k, v["steps"], k * v["step_delay"]) for k in range(phase.done + 1)]
            logs = "".join(line + "\n" for line in lines)
        output = None
        if phase.status == "succeeded":
            output = [f"{files_root}files/{record.id}/{image_name(k)}" for k in range(v["num_outputs"])]
        error = f"Simulated failure at step {v['fail_at_step']}" if phase.status == "failed" else None
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, error)

    def file(self, record: Record, name: str) -> OutputFile | None:
        v = self.values(record)
        for k in range(v["num_outputs"]):
            if name == image_name(k):
                # Later images get their own seed, so a batch shows different pictures.
                png = render_image(v["prompt"], self.seed(v) + k, v["width"], v["height"])
                return OutputFile(png, "image/png")
        return None


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
    default_example: ClassVar[dict[str, Any]] = {"prompt": "Tell me about the sea"}
    inputs = (
        InputSpec("prompt", "string", "Text to continue", required=True),
        InputSpec("max_tokens", "integer", "Tokens to generate", default=24, minimum=1, maximum=2000),
        InputSpec("token_delay", "number", "Seconds per token", default=0.08, minimum=0, maximum=10),
        InputSpec("fail_at_token", "integer", "Fail when this token is reached", minimum=1),
        BOOT_DELAY,
    )

    def output_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "string"},
            "title": "Output",
            "x-cog-array-type": "iterator",
            "x-cog-array-display": "concatenate",
        }

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        return Timeline(
            record.created_at, v["boot_delay"], v["token_delay"], v["max_tokens"], v["fail_at_token"]
        )

    def _show(self, record: Record, phase: Phase, files_root: str) -> State:
        v = self.values(record)
        if phase.started_at is None:
            return State(phase.status, None, phase.completed_at, None, None, None)
        logs = f"Generating up to {v['max_tokens']} tokens\n"
        if phase.status == "succeeded":
            logs += f"Generated {phase.done} tokens\n"
        output = tokens_for(v["prompt"], phase.done)
        error = f"Simulated failure at token {v['fail_at_token']}" if phase.status == "failed" else None
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, error)
