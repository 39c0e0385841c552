"""Demo models for the other output kinds a page must render.

- `relay/audio-demo`: one WAV file (a real, short tune derived from the prompt).
- `relay/json-demo`: a JSON object as the output.
- `relay/caption-demo`: a file input: it reads an uploaded image (or a data:
  URI) by URL and describes it in a sentence.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from typing import Any, ClassVar

from .base import BOOT_DELAY, DemoModel, OutputFile, Reader, State
from .inputs import InputSpec
from .progress import progress_line
from .store import Record
from .timeline import Phase, Timeline

SAMPLE_RATE = 16000
_NOTES = (261.63, 293.66, 329.63, 349.23, 392.0, 440.0, 493.88, 523.25)  # C major, C4 to C5


def render_wav(prompt: str, seconds: float) -> bytes:
    """A mono 16-bit WAV: eight notes per second picked from the prompt's hash, softly enveloped."""
    digest = hashlib.sha256(prompt.encode()).digest()
    total = int(SAMPLE_RATE * seconds)
    per_note = SAMPLE_RATE // 8
    frames = bytearray()
    for i in range(total):
        note = i // per_note
        pitch = _NOTES[digest[note % len(digest)] % len(_NOTES)]
        t_in_note = (i % per_note) / per_note
        envelope = math.sin(math.pi * t_in_note)  # fade in and out, no clicks
        frames += struct.pack("<h", int(12000 * envelope * math.sin(2 * math.pi * pitch * i / SAMPLE_RATE)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


class AudioDemo(DemoModel):
    name = "audio-demo"
    description = "Emulated text-to-audio model: progress in logs, one short WAV file."
    default_example: ClassVar[dict[str, Any]] = {"prompt": "a calm morning"}
    inputs = (
        InputSpec("prompt", "string", "What the tune is about", required=True),
        InputSpec("duration", "number", "Seconds of audio", default=1.0, minimum=0.25, maximum=5),
        InputSpec("step_delay", "number", "Seconds per rendering step", default=0.1, minimum=0, maximum=10),
        BOOT_DELAY,
    )
    steps = 10

    def output_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uri", "title": "Output"}

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        return Timeline(record.created_at, v["boot_delay"], v["step_delay"], self.steps)

    def _show(self, record: Record, phase: Phase, files_root: str) -> State:
        v = self.values(record)
        logs = None
        if phase.started_at is not None:
            lines = [progress_line(k, self.steps, k * v["step_delay"]) for k in range(phase.done + 1)]
            logs = "".join(line + "\n" for line in lines)
        output = f"{files_root}files/{record.id}/output.wav" if phase.status == "succeeded" else None
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, None)

    def file(self, record: Record, name: str) -> OutputFile | None:
        if name != "output.wav":
            return None
        v = self.values(record)
        return OutputFile(render_wav(v["prompt"], v["duration"]), "audio/wav")


_MOODS = ("positive", "neutral", "negative")


class JsonDemo(DemoModel):
    name = "json-demo"
    description = "Emulated analysis model: its output is one JSON object."
    default_example: ClassVar[dict[str, Any]] = {"text": "What a lovely day by the sea"}
    inputs = (
        InputSpec("text", "string", "Text to analyse", required=True),
        InputSpec("delay", "number", "Seconds of work", default=0.3, minimum=0, maximum=60),
        BOOT_DELAY,
    )

    def output_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "title": "Output",
            "required": ["words", "characters", "sentiment", "score", "keywords"],
            "properties": {
                "words": {"type": "integer", "title": "Words"},
                "characters": {"type": "integer", "title": "Characters"},
                "sentiment": {"type": "string", "title": "Sentiment"},
                "score": {"type": "number", "title": "Score"},
                "keywords": {"type": "array", "items": {"type": "string"}, "title": "Keywords"},
            },
        }

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        return Timeline(record.created_at, v["boot_delay"], v["delay"], 1)

    def _show(self, record: Record, phase: Phase, files_root: str) -> State:
        if phase.started_at is None:
            return State(phase.status, None, phase.completed_at, None, None, None)
        text = self.values(record)["text"]
        logs = "Analysing text\n"
        output = None
        if phase.status == "succeeded":
            digest = hashlib.sha256(text.encode()).digest()
            words = text.split()
            output = {
                "words": len(words),
                "characters": len(text),
                "sentiment": _MOODS[digest[0] % len(_MOODS)],
                "score": round(digest[1] / 255, 3),
                "keywords": sorted({w.strip(".,!?;:").lower() for w in words if len(w) > 3})[:5],
            }
            logs += "Done\n"
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, None)


def describe_file(data: bytes, content_type: str) -> tuple[str, str]:
    """(kind, dimensions) of an image's bytes, read from its header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "PNG", f"{width}×{height}"
    if data.startswith(b"\xff\xd8"):
        return "JPEG", ""
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "GIF", f"{width}×{height}"
    return content_type or "unknown", ""


class CaptionDemo(DemoModel):
    name = "caption-demo"
    description = "Emulated captioning model: reads an image file input and describes it."
    default_example: ClassVar[dict[str, Any]] = {
        "image": "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
        "style": "short",
    }
    inputs = (
        InputSpec("image", "string", "Image to describe", required=True, format="uri"),
        InputSpec("style", "string", "How much to say", default="short", choices=("short", "detailed")),
        InputSpec("delay", "number", "Seconds of work", default=0.3, minimum=0, maximum=60),
        BOOT_DELAY,
    )

    def output_schema(self) -> dict[str, Any]:
        return {"type": "string", "title": "Output"}

    def prepare(self, values: dict[str, Any], reader: Reader) -> dict[str, Any] | None:
        found = reader.read(values["image"])
        if found is None:
            return {"problem": "Could not read the image at the given URL"}
        data, content_type = found
        kind, size = describe_file(data, content_type)
        digest = hashlib.sha256(data).hexdigest()
        short = f"A {size + ' ' if size else ''}{kind} image".replace("  ", " ")
        detailed = f"{short}, {len(data)} bytes, sha256 {digest[:12]}"
        return {"short": short, "detailed": detailed}

    def timeline(self, record: Record) -> Timeline:
        v = self.values(record)
        failing = 1 if (record.extra or {}).get("problem") else None
        return Timeline(record.created_at, v["boot_delay"], v["delay"], 1, failing)

    def _show(self, record: Record, phase: Phase, files_root: str) -> State:
        if phase.started_at is None:
            return State(phase.status, None, phase.completed_at, None, None, None)
        extra = record.extra or {}
        logs = "Reading image\n"
        output = None
        error = None
        if phase.status == "succeeded":
            output = str(extra.get(self.values(record)["style"], ""))
        elif phase.status == "failed":
            error = str(extra.get("problem"))
        return State(phase.status, phase.started_at, phase.completed_at, logs, output, error)
