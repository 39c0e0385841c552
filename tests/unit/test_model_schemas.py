"""Schemas recorded from Replicate, resolved and described as GET /api/models shows them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.config import AllowedModel
from relay.inputs import validate_input
from relay.model_schema import describe, output_kind, readable, resolve_refs
from testbed.recorded import FIXTURES, recorded


def test_every_fixture_names_its_source() -> None:
    for path in FIXTURES.glob("*.json"):
        source = json.loads(path.read_text())["source"]
        assert source["repo"] == "replicate/replicate-python"
        assert source["path"].startswith("tests/cassettes/") and len(source["commit"]) == 40


def test_choices_written_as_allof_ref_become_enums_with_the_property_s_own_keywords() -> None:
    sdxl = recorded("stability-ai__sdxl")
    scheduler = sdxl.input["properties"]["scheduler"]
    assert scheduler["enum"] == ["DDIM", "DPMSolverMultistep", "HeunDiscrete", "KarrasDPM",
                                 "K_EULER_ANCESTRAL", "K_EULER", "PNDM"]
    assert scheduler["type"] == "string" and scheduler["default"] == "K_EULER"
    assert scheduler["description"] == "scheduler" and scheduler["x-order"] == 7
    assert "allOf" not in scheduler and "title" not in scheduler  # the enum's "scheduler" title goes
    assert sdxl.input["properties"]["refine"]["enum"][0] == "no_refiner"
    assert sdxl.input["properties"]["image"]["format"] == "uri"


def test_references_resolve_recursively_and_unknown_ones_are_an_error() -> None:
    components = {"A": {"allOf": [{"$ref": "#/components/schemas/B"}], "default": 1},
                  "B": {"enum": [1, 2], "type": "integer", "title": "B", "description": "An enumeration."}}
    assert resolve_refs({"$ref": "#/components/schemas/A"}, components) == {
        "enum": [1, 2], "type": "integer", "default": 1}
    with pytest.raises(ValueError, match="does not define"):
        resolve_refs({"allOf": [{"$ref": "#/components/schemas/Missing"}]}, components)
    with pytest.raises(ValueError, match="too deeply"):
        resolve_refs({"$ref": "#/components/schemas/Loop"}, {"Loop": {"$ref": "#/components/schemas/Loop"}})


@pytest.mark.parametrize(("name", "kind"), [
    ("stability-ai__sdxl", "image"),
    ("meta__llama-2-70b-chat", "text"),
    ("catio-apps__controlnet-interior-design", "image"),
])
def test_kind_of_recorded_models(name: str, kind: str) -> None:
    schema = recorded(name)
    assert output_kind(schema.output, schema.example_output) == kind


@pytest.mark.parametrize(("output", "example", "kind"), [
    ({"type": "string", "format": "uri"}, "https://x/y/out.mp4", "video"),
    ({"type": "array", "items": {"type": "string", "format": "uri"}}, ["https://x/a.WAV?sig=1"], "audio"),
    ({"type": "string", "format": "uri"}, "https://x/a.mp3", "audio"),
    ({"type": "string", "format": "uri"}, "https://x/a.glb", "file"),
    ({"type": "string", "format": "uri"}, None, "file"),
    ({"type": "object", "properties": {"text": {"type": "string"}}}, {"text": "hi"}, "json"),
    ({"type": "array", "items": {"type": "object"}}, [], "json"),
    ({"type": "string"}, "hello", "text"),
    ({"type": "array", "items": {"type": "string"}, "x-cog-array-type": "iterator"}, None, "text"),
])
def test_kind_from_output_schema_and_example_file_type(output: dict[str, Any], example: Any, kind: str) -> None:
    assert output_kind(output, example) == kind


@pytest.mark.parametrize(("description", "kind"), [
    ("Emulated text-to-image model: tqdm progress in logs, one PNG per output.", "image"),
    ("Emulated text-to-audio model: progress in logs, one short WAV file.", "audio"),
    ("Turn an image into a short video (image-to-video)", "video"),
    ("Text to speech in many voices", "audio"),
    ("Makes 3D meshes", "file"),
])
def test_without_an_example_output_the_description_tells_the_file_type(description: str, kind: str) -> None:
    files = {"type": "array", "items": {"type": "string", "format": "uri"}}
    assert output_kind(files, None, description) == kind
    assert output_kind(files, ["https://x/a.mp4"], description) == "video"  # an example wins


def test_describe_lists_inputs_output_defaults_and_what_visitors_may_edit() -> None:
    info = describe(AllowedModel.parse("stability-ai/sdxl"), recorded("stability-ai__sdxl")).as_dict()
    assert set(info) == {"name", "title", "description", "kind", "inputs", "output", "default_input", "editable"}
    assert info["name"] == "stability-ai/sdxl" and info["title"] == "Sdxl" and info["kind"] == "image"
    assert info["editable"][:3] == ["prompt", "negative_prompt", "image"]  # x-order
    assert info["default_input"]["num_inference_steps"] == 50 and info["default_input"]["scheduler"] == "K_EULER"
    assert "seed" not in info["default_input"]  # optional without a default


@pytest.mark.parametrize("name", ["stability-ai__sdxl", "meta__llama-2-70b-chat",
                                  "catio-apps__controlnet-interior-design"])
def test_default_input_is_itself_valid(name: str) -> None:
    schema = recorded(name)
    info = describe(AllowedModel(schema.name), schema)
    assert validate_input(schema, info.default_input) == info.default_input


def test_a_required_input_without_default_takes_the_example_s_value() -> None:
    llama = recorded("meta__llama-2-70b-chat")
    info = describe(AllowedModel(llama.name), llama)
    assert info.default_input["prompt"].startswith("Can you write a poem")


def test_pins_and_edit_shape_editable_and_default_input() -> None:
    sdxl = recorded("stability-ai__sdxl")
    entry = AllowedModel.parse("stability-ai/sdxl?num_outputs=1&width=768#edit=prompt+num_inference_steps")
    assert entry.editable("prompt") and not entry.editable("num_outputs") and not entry.editable("seed")
    info = describe(entry, sdxl)
    assert info.editable == ("prompt", "num_inference_steps")
    assert info.default_input == {"prompt": "An astronaut riding a rainbow unicorn", "num_inference_steps": 50}


@pytest.mark.parametrize(("name", "title"), [("meta/llama-2-70b-chat", "Llama 2 70b Chat"),
                                             ("relay/image-demo", "Image Demo"), ("num_outputs", "Num Outputs")])
def test_readable(name: str, title: str) -> None:
    assert readable(name) == title
