"""Parameter schemas of any shape: normalised from each dialect, refused by name, checked at call time."""

import json

import pytest

from envgen.catalog.json_schema import parameter, violation
from envgen.catalog.loaders import load_paths, parse_document, refused_specs_frame
from envgen.catalog.spec import SpecError
from envgen.graph.tool_graph import feeds_edges


def test_bfcl_dialect_becomes_nested_json_schema_with_its_constraints():
    node = {
        "type": "dict",
        "description": "Where to ship.",
        "properties": {
            "lines": {
                "type": "list",
                "items": {"type": "dict", "properties": {"qty": {"type": "int", "minimum": 1}}},
            },
            "rate": {
                "type": "float",
                "maximum": 1,
                "default": "0.5",
            },  # a default of the wrong type is dropped
            "when": {"type": ["string", "null"], "format": "date-time"},
        },
        "required": ["lines", "ghost"],
    }
    out = parameter("ship", "order", node)
    assert out["type"] == "object" and out["required"] == ["lines"]  # undeclared required names go
    assert out["properties"]["lines"] == {
        "type": "array",
        "items": {"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}},
    }
    assert out["properties"]["rate"] == {"type": "number", "maximum": 1}
    assert out["properties"]["when"] == {"type": "string", "format": "date-time"}
    # an array that does not say what it holds holds strings
    assert parameter("t", "tags", {"type": "array"})["items"] == {"type": "string"}


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"type": "any"}, "parameter 'p' has unsupported type 'any'"),
        ({"type": "array", "items": {"type": "FILE"}}, "parameter 'p[]' has unsupported type 'FILE'"),
        (
            {"type": "object", "properties": {"a": {"description": "no type"}}},
            "parameter 'p.a' has unsupported",
        ),
        (
            {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "array", "items": {"type": "array"}}},
                    },
                },
            },
            "nested deeper than 4",
        ),
    ],
)
def test_unusable_parameter_schemas_are_refused_naming_the_part(node, message):
    with pytest.raises(SpecError, match="tool 't'") as err:
        parameter("t", "p", node)
    assert message in str(err.value)


EDITS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {"oldText": {"type": "string"}, "newText": {"type": "string"}},
        "required": ["oldText", "newText"],
    },
}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([{"oldText": "a", "newText": "b"}], None),
        ([], "needs at least 1 items"),
        ([{"oldText": "a", "newText": 3}], "argument 'edits[0].newText' must be of type string"),
        ([{"oldText": "a"}], "argument 'edits[0]' lacks required fields ['newText']"),
        ([{"oldText": "a", "newText": "b", "extra": 1}], "unknown fields ['extra']"),
        ({"oldText": "a"}, "argument 'edits' must be of type array"),
    ],
)
def test_violations_name_the_offending_part(value, problem):
    found = violation("edits", value, EDITS)
    assert found is None if problem is None else problem in found


def test_ranges_enums_and_lengths_are_checked():
    assert "at most 5" in violation("speed", 6, {"type": "integer", "maximum": 5})
    assert "at least 0" in violation("speed", -1, {"type": "integer", "minimum": 0})
    assert "must be of type integer" in violation("speed", True, {"type": "integer"})  # a bool is no number
    channels = {"type": "array", "items": {"type": "string", "enum": ["email", "sms"]}}
    assert "'channels[1]' must be one of" in violation("channels", ["sms", "fax"], channels)
    assert "at most 3 characters" in violation("code", "ABCD", {"type": "string", "maxLength": 3})
    assert violation("meta", {"any": {"thing": 1}}, {"type": "object"}) is None  # a free-form record


def test_an_openai_request_body_and_json_lines_in_a_json_file_load(tmp_path):
    fn = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    specs, refused = parse_document({"model": "m", "tools": [{"type": "function", "function": fn}]}, "mem")
    assert [s.name for s in specs] == ["get_weather"] and not refused
    lines = [dict(fn, name=f"tool_{i}") for i in range(3)]
    path = tmp_path / "funcs.json"  # BFCL ships JSON lines under a .json suffix
    path.write_text("\n".join(json.dumps(x) for x in lines))
    load = load_paths([path])
    assert [s.name for s in load.specs] == ["tool_0", "tool_1", "tool_2"]
    assert load.specs[2].source_origin == f"{path}:3"


def test_a_name_described_again_is_a_variant_and_a_foreign_api_of_that_name_is_refused(tmp_path):
    def fn(*params):
        return {
            "name": "send",
            "parameters": {"type": "object", "properties": {p: {"type": "string"} for p in params}},
        }

    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps(f) for f in (fn("to", "text"), fn("to", "text", "cc")))
    )
    (tmp_path / "b.json").write_text(json.dumps([fn("to", "text", "urgent")]))  # overlaps: a variant
    (tmp_path / "c.json").write_text(json.dumps([fn("channel", "payload")]))  # another API, same name
    load = load_paths([tmp_path])
    assert [set(s.properties) for s in load.specs] == [{"to", "text"}]
    frame = refused_specs_frame(load)
    assert frame.select("kind").to_series().to_list() == ["refused", "variant", "variant"]
    assert "name already used" in frame["reason"][0] and frame["origin"][0].endswith("c.json")


def test_a_declared_response_is_what_the_tool_returns_and_feeds_the_tool_that_takes_it():
    """BFCL's multi-turn docs declare a `response`: its fields are the returned record (a field no
    environment can hold is left out, the tool kept), and a returned key links to the tool requiring it."""
    post = {
        "name": "post_tweet",
        "parameters": {
            "type": "dict",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
        },
        "response": {"type": "dict", "properties": {"tweetId": {"type": "integer"}, "raw": {"type": "any"}}},
    }
    retweet = {
        "name": "retweet",
        "parameters": {
            "type": "dict",
            "properties": {"tweetId": {"type": "integer"}},
            "required": ["tweetId"],
        },
    }
    specs, refused = parse_document([post, retweet], "mem")
    assert not refused and specs[0].source_format == "bfcl"
    assert specs[0].returns == {
        "type": "object",
        "properties": {"tweetId": {"type": "integer", "description": ""}},
    }
    assert feeds_edges(specs) == [(0, 1, "tweetId")]
