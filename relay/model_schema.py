"""A model version's schemas as Relay uses them: resolved, described, typed.

Pure functions over JSON (no I/O), tested on schemas recorded from Replicate:
`resolve_refs` inlines Cog's `allOf: [{"$ref": …}]` choices, `output_kind` reads
what to show from the Output schema and the default example's file type, and
`describe` makes one `GET /api/models` entry from a schema and an allow-list entry
(its pins and `#edit`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import AllowedModel

__all__ = ["PLAIN_PROMPT", "Kind", "ModelInfo", "ModelSchema", "describe", "ordered_properties",
           "output_kind", "readable", "resolve_refs", "schema_from_model_json"]

Kind = Literal["image", "video", "audio", "text", "json", "file"]
_MAX_DEPTH = 32
_IMAGE = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".svg", ".avif")
_VIDEO = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
_AUDIO = (".wav", ".mp3", ".ogg", ".flac", ".m4a", ".aac", ".opus")
PLAIN_PROMPT: dict[str, Any] = {
    "type": "object", "title": "Input", "required": ["prompt"],
    "properties": {"prompt": {"type": "string", "title": "Prompt", "x-order": 0}},
}


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """One model version's resolved schemas, with what its default example showed."""

    name: str
    version: str | None
    description: str | None
    input: dict[str, Any]
    output: dict[str, Any]
    example_input: dict[str, Any] = field(default_factory=dict)
    example_output: Any = None
    known: bool = True  # False: the schema could not be fetched (plain prompt, no validation)

    def as_json(self) -> str:
        return json.dumps({"name": self.name, "version": self.version, "description": self.description,
                           "input": self.input, "output": self.output, "example_input": self.example_input,
                           "example_output": self.example_output})

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSchema:
        data = json.loads(text)
        return cls(data["name"], data["version"], data["description"], data["input"], data["output"],
                   data.get("example_input") or {}, data.get("example_output"))

    @classmethod
    def unknown(cls, name: str) -> ModelSchema:
        return cls(name, None, None, PLAIN_PROMPT, {}, known=False)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One entry of `GET /api/models`."""

    name: str
    title: str
    description: str
    kind: Kind
    inputs: dict[str, Any]
    output: dict[str, Any]
    default_input: dict[str, Any]
    editable: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description, "kind": self.kind,
                "inputs": self.inputs, "output": self.output, "default_input": dict(self.default_input),
                "editable": list(self.editable)}


# -- pure functions -------------------------------------------------------------------
def resolve_refs(node: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """`node` with every `#/components/schemas/…` reference replaced by what it names.

    A property `{"allOf": [{"$ref": …}], "default": …}` becomes the referenced schema
    merged with the property's own keywords (Cog's way of writing a choice). The
    referenced schema's generic title and description ("An enumeration.") give way
    to the property's, or go.
    """
    if depth > _MAX_DEPTH:
        raise ValueError("the schema nests references too deeply")
    if isinstance(node, list):
        return [resolve_refs(item, components, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    own = {k: resolve_refs(v, components, depth + 1) for k, v in node.items() if k not in ("$ref", "allOf")}
    merged: dict[str, Any] = {}
    refs = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    parts = _as_list(node.get("allOf"))
    for part in parts:
        if isinstance(part, dict) and set(part) == {"$ref"} and isinstance(part["$ref"], str):
            refs.append(part["$ref"])
        else:
            merged.update(resolve_refs(part, components, depth + 1))
    for ref in refs:
        target = _lookup(ref, components)
        resolved = resolve_refs(target, components, depth + 1)
        if isinstance(resolved, dict):
            merged.update({k: v for k, v in resolved.items() if k not in ("title", "description")})
    merged.update(own)
    return merged


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _lookup(ref: str, components: dict[str, Any]) -> Any:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix) or ref[len(prefix):] not in components:
        raise ValueError(f"the schema refers to {ref!r}, which it does not define")
    return components[ref[len(prefix):]]


def schema_from_model_json(name: str, openapi: dict[str, Any], *, version: str | None,
                           description: str | None, example: dict[str, Any] | None) -> ModelSchema:
    """A ModelSchema from a version's `openapi_schema` and the model's `default_example`."""
    components = openapi.get("components", {}).get("schemas", {})
    if not isinstance(components, dict) or not isinstance(components.get("Input"), dict):
        raise ValueError("the schema has no components.schemas.Input")
    inputs = resolve_refs(components["Input"], components)
    output = resolve_refs(components.get("Output") or {}, components)
    example = example or {}
    example_input = _as_dict(example.get("input"))
    return ModelSchema(name, version, description, inputs, output, example_input, example.get("output"))


def readable(name: str) -> str:
    """`meta/llama-2-70b-chat` → "Llama 2 70b Chat"; `num_outputs` → "Num Outputs"."""
    last = name.rsplit("/", 1)[-1]
    words = last.replace("_", " ").replace("-", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words) or name


def _first_url(output: Any) -> str | None:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        for item in output:
            if isinstance(item, str):
                return item
    if isinstance(output, dict):
        for value in output.values():
            found = _first_url(value)
            if found:
                return found
    return None


def _file_kind(example_output: Any) -> Kind:
    url = _first_url(example_output)
    if url is None:
        return "file"
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    if path.startswith("data:"):
        media = path[5:].split(";", 1)[0].split(",", 1)[0]
        return "image" if media.startswith("image/") else "video" if media.startswith("video/") \
            else "audio" if media.startswith("audio/") else "file"
    if path.endswith(_IMAGE):
        return "image"
    if path.endswith(_VIDEO):
        return "video"
    if path.endswith(_AUDIO):
        return "audio"
    return "file"


def _described_kind(description: str) -> Kind:
    """For a file output without an example to look at: what the model says it makes."""
    text = description.lower()
    made = re.search(r"\bto[- ](image|video|audio|speech|music|sound)\b", text)
    word = made.group(1) if made else next(
        (w for w in ("video", "audio", "image") if re.search(rf"\b{w}s?\b", text)), None)
    if word in ("audio", "speech", "music", "sound"):
        return "audio"
    return "video" if word == "video" else "image" if word == "image" else "file"


def output_kind(output: dict[str, Any], example_output: Any, description: str = "") -> Kind:
    """What the output is, for showing it: from the Output schema, files by the example's type
    (or, when the default example shows no output, by what the model's description says it makes)."""
    kind = output.get("type")
    files = (kind == "array" and _as_dict(output.get("items")).get("format") == "uri") or \
        (kind == "string" and output.get("format") == "uri")
    if files:
        found = _file_kind(example_output)
        return _described_kind(description) if found == "file" and _first_url(example_output) is None else found
    if kind == "array":
        items = _as_dict(output.get("items"))
        return "text" if items.get("type") == "string" else "json"
    if kind == "string":
        return "text"
    if kind in ("object", None) and output:
        return "json"
    if kind in ("integer", "number", "boolean"):
        return "text"
    return "text" if not output else "json"


def _fallback_value(prop: dict[str, Any]) -> Any:
    """A valid stand-in for a required input with no default and no example."""
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    kind = prop.get("type")
    if kind in ("integer", "number"):
        low = prop.get("minimum", 0)
        value = max(low, 0) if prop.get("maximum", low) >= max(low, 0) else low
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return ""


def ordered_properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The Input schema's properties in `x-order` (then name) order."""
    items = [(k, v) for k, v in _as_dict(schema.get("properties")).items() if isinstance(v, dict)]
    return sorted(items, key=lambda kv: (kv[1].get("x-order", 10**6), kv[0]))


def describe(entry: AllowedModel, schema: ModelSchema) -> ModelInfo:
    """What `GET /api/models` shows for one allow-list entry."""
    properties = ordered_properties(schema.input)
    required = set(schema.input.get("required") or [])
    editable = tuple(name for name, _ in properties if entry.editable(name))
    default_input: dict[str, Any] = {}
    for name, prop in properties:
        if name not in editable:
            continue
        if "default" in prop and prop["default"] is not None:
            default_input[name] = prop["default"]
        elif name in required:
            example = schema.example_input.get(name)
            default_input[name] = example if example is not None else _fallback_value(prop)
    return ModelInfo(
        name=entry.name,
        title=readable(entry.name),
        description=schema.description or "",
        kind=output_kind(schema.output, schema.example_output, schema.description or ""),
        inputs=schema.input,
        output=schema.output,
        default_input=default_input,
        editable=editable,
    )
