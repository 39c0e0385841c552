"""The /embed widget's query parameters, checked once and turned into typed options.

A host page writes these by hand or through relay-embed.js, so every problem
becomes a sentence the widget shows instead of an error page:

    model      an allowed "owner/name"; the first allowed model when absent
    prompt     the preset prompt; the model's sample prompt when absent
    autostart  1/0, true/false, yes/no, on/off: start the preset at once
    theme      light, dark or auto (follow the visitor's system)
    editable   comma-separated: which inputs a visitor may change ("model",
               "prompt", or another input's name); "model,prompt" when absent
    input.KEY  a preset for another input; JSON scalars (5, 0.1, true, "5")
               are read as JSON, anything else is kept as a string
    frame      the id relay-embed.js gave this iframe, echoed in its messages
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .model_schema import ModelInfo

__all__ = ["THEMES", "EmbedOptions", "parse_embed_query"]

THEMES = ("auto", "light", "dark")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_INPUT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_FRAME_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_PROMPT = 2000
_MAX_VALUE = 2000
_MAX_INPUTS = 20
_KNOWN = {"model", "prompt", "autostart", "theme", "editable", "frame"}


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    """What the widget starts with; `problems` lists every parameter it could not use."""

    model: ModelInfo | None
    prompt: str
    autostart: bool = False
    theme: str = "auto"
    editable: tuple[str, ...] = ("model", "prompt")
    preset_input: dict[str, Any] = field(default_factory=dict)
    frame: str = ""
    problems: tuple[str, ...] = ()


def parse_embed_query(query: Mapping[str, str], models: list[ModelInfo]) -> EmbedOptions:
    """Read the widget's query parameters; never raises, the problems are in the result."""
    problems: list[str] = []
    model = _model(query.get("model", "").strip(), models, problems)
    prompt = query.get("prompt", "")
    if len(prompt) > _MAX_PROMPT:
        problems.append(f"The prompt is {len(prompt)} characters long; the widget takes at most {_MAX_PROMPT}.")
        prompt = prompt[:_MAX_PROMPT]
    if not prompt and model is not None:
        sample = model.default_input.get("prompt")
        prompt = sample if isinstance(sample, str) else ""
    preset_input = _preset_input(query, problems)
    return EmbedOptions(
        model=model,
        prompt=prompt,
        autostart=_flag("autostart", query.get("autostart", ""), problems),
        theme=_theme(query.get("theme", "auto"), problems),
        editable=_editable(query.get("editable"), model, preset_input, problems),
        preset_input=preset_input,
        frame=_frame(query.get("frame", ""), problems),
        problems=tuple(problems),
    )


def _model(name: str, models: list[ModelInfo], problems: list[str]) -> ModelInfo | None:
    if not models:
        problems.append("This Relay has no models to run.")
        return None
    if not name:
        return models[0]
    for model in models:
        if model.name == name.lower():
            return model
    available = ", ".join(m.name for m in models)
    problems.append(f"The model “{name[:200]}” is not available here. Choose one of: {available}.")
    return None


def _flag(name: str, raw: str, problems: list[str]) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        problems.append(f"{name} must be 1 or 0 (or true/false), not “{raw[:100]}”.")
    return False


def _theme(raw: str, problems: list[str]) -> str:
    value = raw.strip().lower() or "auto"
    if value not in THEMES:
        problems.append(f"theme must be light, dark or auto, not “{raw[:100]}”.")
        return "auto"
    return value


def _frame(raw: str, problems: list[str]) -> str:
    if raw and not _FRAME_ID.match(raw):
        problems.append("frame must be up to 64 letters, digits, '-' or '_'.")
        return ""
    return raw


def _preset_input(query: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    preset: dict[str, Any] = {}
    for name, raw in query.items():
        if name in _KNOWN:
            continue
        if not name.startswith("input."):
            problems.append(f"Unknown parameter “{name[:100]}”: use model, prompt, autostart, theme, "
                            "editable or input.<name>.")
            continue
        key = name[len("input."):]
        if not _INPUT_KEY.match(key) or key == "prompt":
            problems.append(f"“{name[:100]}” is not an input the widget can preset (use prompt= for the prompt).")
            continue
        if len(raw) > _MAX_VALUE:
            problems.append(f"The value of {name} is longer than {_MAX_VALUE} characters.")
            continue
        preset[key] = _scalar(raw)
    if len(preset) > _MAX_INPUTS:
        problems.append(f"The widget takes at most {_MAX_INPUTS} input.* parameters.")
        return {}
    return preset


def _scalar(raw: str) -> Any:
    """JSON numbers, booleans and quoted strings as such; anything else as the text it is."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, float) and not math.isfinite(value):
        return raw  # Python reads NaN and Infinity, which no JSON parser in a browser accepts
    return value if isinstance(value, (str, int, float, bool)) else raw


def _editable(raw: str | None, model: ModelInfo | None, preset: dict[str, Any],
              problems: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ("model", "prompt")
    known = {"model", "prompt", *preset}
    if model is not None:
        known.update(model.default_input)
    chosen: list[str] = []
    for item in raw.split(","):
        name = item.strip()
        if not name or name in chosen:
            continue
        if name not in known:
            problems.append(f"editable names “{name[:100]}”, which is not one of: {', '.join(sorted(known))}.")
            continue
        chosen.append(name)
    return tuple(chosen)
