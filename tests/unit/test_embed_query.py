"""The widget's query string, read strictly (relay/embed.py): every problem named."""

from __future__ import annotations

from typing import Any

from relay.config import EMULATOR_MODELS
from relay.embed import parse_embed_query
from relay.emulator.models import MODELS
from relay.emulator.routes import _model_json
from relay.model_schema import describe, schema_from_model_json

IMAGE = "relay/image-demo"


def schema(name: str) -> Any:
    """The emulator's demo model as Relay reads any model: from its version's OpenAPI schema."""
    model = _model_json(MODELS[name])
    return schema_from_model_json(name, model["latest_version"]["openapi_schema"], version=None,
                                  description=model["description"], example=model["default_example"])


def test_query_parameters_are_read_strictly_and_every_problem_is_named() -> None:
    models = [describe(entry, schema(entry.name)) for entry in EMULATOR_MODELS]
    options = parse_embed_query({"model": "Relay/Image-Demo", "autostart": "yes", "theme": "DARK",
                                 "editable": "prompt, steps", "input.steps": "5", "input.seed": '"7"',
                                 "input.style": "soft light", "input.step_delay": "NaN"}, models)
    assert options.problems == ()
    assert options.model is not None and options.model.name == IMAGE
    assert (options.autostart, options.theme, options.editable) == (True, "dark", ("prompt", "steps"))
    assert options.preset_input == {"steps": 5, "seed": "7", "style": "soft light", "step_delay": "NaN"}
    assert options.prompt == models[0].default_input["prompt"]

    bad = parse_embed_query({"model": "x/y", "autostart": "2", "theme": "sepia", "frame": "a b",
                             "editable": "colour", "input.prompt": "p", "size": "9"}, models)
    assert bad.model is None and len(bad.problems) == 7, bad.problems
