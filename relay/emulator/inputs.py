"""Declared model inputs, their validation and their JSON schema.

Replicate checks a prediction's input against the model version's OpenAPI
schema before anything runs and answers 422 listing each bad field. The demo
models declare their inputs here once; the same declarations give the 422
answers, the defaults used while a prediction runs, and the schema shown on
the model's version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from .problems import InvalidField, validation_failed

Kind = Literal["string", "integer", "number"]


@dataclass(frozen=True)
class InputSpec:
    name: str
    kind: Kind
    description: str
    required: bool = False
    default: int | float | str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None  # an enum: Cog publishes it as its own schema
    format: str | None = None  # "uri" for file inputs

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").title()


def json_type(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _coerce(spec: InputSpec, value: Any) -> int | float | str | None:
    """The value as the spec's kind, or None when its type does not fit."""
    if spec.kind == "string":
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if spec.kind == "integer":
        # JSON Schema counts 3.0 as an integer; so does Replicate's validator.
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        return value
    return float(value)


def _number_text(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


def resolve_input(specs: tuple[InputSpec, ...], raw: Any) -> dict[str, Any]:
    """Validate `raw` and return every declared input with defaults filled in.

    Unknown keys are ignored, as on Replicate. Raises a 422 Problem listing
    every bad field at once.
    """
    if not isinstance(raw, dict):
        expected = f"Invalid type. Expected: object, given: {json_type(raw)}"
        raise validation_failed([InvalidField("invalid_type", "input", expected)])
    bad: list[InvalidField] = []
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in raw:
            if spec.required:
                bad.append(InvalidField("required", "input", f"{spec.name} is required"))
            values[spec.name] = spec.default
            continue
        field = f"input.{spec.name}"
        value = _coerce(spec, raw[spec.name])
        if value is None:
            description = f"Invalid type. Expected: {spec.kind}, given: {json_type(raw[spec.name])}"
            bad.append(InvalidField("invalid_type", field, description))
            continue
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(f'"{c}"' for c in spec.choices)
            bad.append(InvalidField("enum", field, f"{spec.name} must be one of the following: {allowed}"))
            continue
        if isinstance(value, (int, float)):
            if spec.minimum is not None and value < spec.minimum:
                description = f"Must be greater than or equal to {_number_text(spec.minimum)}"
                bad.append(InvalidField("number_gte", field, description))
                continue
            if spec.maximum is not None and value > spec.maximum:
                description = f"Must be less than or equal to {_number_text(spec.maximum)}"
                bad.append(InvalidField("number_lte", field, description))
                continue
        values[spec.name] = value
    if bad:
        raise validation_failed(bad)
    return values


def input_schema(specs: tuple[InputSpec, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `Input` schema as Cog publishes it, and the enum schemas it refers to by $ref."""
    properties: dict[str, Any] = {}
    enums: dict[str, Any] = {}
    for order, spec in enumerate(specs):
        prop: dict[str, Any] = {"title": spec.title, "description": spec.description, "x-order": order}
        if spec.choices is not None:
            # Cog turns an enum into a component schema and points at it with allOf.
            enums[spec.name] = {
                "title": spec.name,
                "description": "An enumeration.",
                "enum": list(spec.choices),
                "type": spec.kind,
            }
            # Like Cog, the property then carries no type or title of its own.
            prop = {"allOf": [{"$ref": f"#/components/schemas/{spec.name}"}], "description": spec.description,
                    "x-order": order}
        else:
            prop["type"] = spec.kind
        if spec.format is not None:
            prop["format"] = spec.format
        if spec.default is not None:
            prop["default"] = spec.default
        if spec.minimum is not None:
            prop["minimum"] = spec.minimum
        if spec.maximum is not None:
            prop["maximum"] = spec.maximum
        properties[spec.name] = prop
    schema: dict[str, Any] = {"type": "object", "title": "Input", "properties": properties}
    required = [s.name for s in specs if s.required]
    if required:
        schema["required"] = required
    return schema, enums
