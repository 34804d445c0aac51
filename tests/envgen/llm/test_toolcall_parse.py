"""Parsing generated Hermes-style text into OpenAI assistant messages must be exact on good input and never
raise on bad input (small models produce plenty of it)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from envgen.llm.toolcall_parse import arguments_as_objects, parse_assistant_text


def _call(name: str, arguments: object) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def _assert_well_formed(message: dict) -> None:
    assert message["role"] == "assistant"
    assert isinstance(message["content"], str)
    for index, call in enumerate(message.get("tool_calls", []), start=1):
        assert call["id"] == f"call_{index}"
        assert call["type"] == "function"
        assert isinstance(call["function"]["name"], str) and call["function"]["name"]
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert all(isinstance(e, str) for e in message.get("parse_errors", []))


def test_plain_text_is_content() -> None:
    assert parse_assistant_text("  It is 21 degrees.\n") == {
        "role": "assistant",
        "content": "It is 21 degrees.",
    }


def test_single_call() -> None:
    message = parse_assistant_text(_call("get_weather", {"city": "Paris"}))
    assert message == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }


def test_multiple_calls_with_content() -> None:
    text = "Let me check.\n" + _call("a", {"x": 1}) + "\n" + _call("b", {"y": [1, 2]})
    message = parse_assistant_text(text)
    _assert_well_formed(message)
    assert message["content"] == "Let me check."
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["a", "b"]
    assert json.loads(message["tool_calls"][1]["function"]["arguments"]) == {"y": [1, 2]}
    assert "parse_errors" not in message


def test_string_arguments_and_missing_arguments_are_accepted() -> None:
    text = _call("a", '{"x": 1}') + '<tool_call>{"name": "b"}</tool_call>'
    calls = parse_assistant_text(text)["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"x": 1}, {}]


def test_broken_json_is_kept_as_content() -> None:
    text = '<tool_call>\n{"name": "a", "arguments": {"x": 1}\n</tool_call>'
    message = parse_assistant_text(text)
    assert "tool_calls" not in message
    assert message["content"] == text.strip()
    assert "invalid JSON" in message["parse_errors"][0]


def test_missing_closing_tag() -> None:
    text = _call("a", {}) + ' then <tool_call>{"name": "b", "arguments": {}}'
    message = parse_assistant_text(text)
    assert len(message["tool_calls"]) == 1
    assert message["content"].startswith("then <tool_call>")
    assert any("unclosed" in e for e in message["parse_errors"])


def test_non_object_missing_name_and_bad_arguments() -> None:
    text = (
        "<tool_call>[1, 2]</tool_call>"
        '<tool_call>{"arguments": {}}</tool_call>'
        '<tool_call>{"name": "a", "arguments": [1]}</tool_call>'
        '<tool_call>{"name": "a", "arguments": "not json"}</tool_call>'
        "</tool_call>"
    )
    message = parse_assistant_text(text)
    assert "tool_calls" not in message
    assert len(message["parse_errors"]) == 5
    assert "<tool_call>[1, 2]</tool_call>" in message["content"]


def test_valid_call_after_broken_one_is_numbered_from_one() -> None:
    message = parse_assistant_text("<tool_call>{oops}</tool_call>" + _call("a", {}))
    assert message["tool_calls"][0]["id"] == "call_1"
    assert len(message["parse_errors"]) == 1


def test_arguments_as_objects_copies_and_converts() -> None:
    messages = [
        {
            "role": "assistant",
            "content": "",
            "parse_errors": ["x"],
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
                {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "broken"}},
            ],
        },
    ]
    converted = arguments_as_objects(messages)
    assert converted[0]["tool_calls"][0]["function"]["arguments"] == {"x": 1}
    assert converted[0]["tool_calls"][1]["function"]["arguments"] == "broken"
    assert "parse_errors" not in converted[0]
    assert messages[0]["tool_calls"][0]["function"]["arguments"] == '{"x": 1}'


_FRAGMENTS = st.sampled_from(
    [
        "<tool_call>",
        "</tool_call>",
        "{",
        "}",
        '"name"',
        ": ",
        '"a"',
        ", ",
        '"arguments"',
        "[",
        "]",
        "\n",
        "x",
        "null",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _assert_well_formed(parse_assistant_text(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=30).map("".join))
def test_tool_call_like_text_never_raises(text: str) -> None:
    message = parse_assistant_text(text)
    _assert_well_formed(message)
    if text.count("<tool_call>") > len(message.get("tool_calls", [])):
        assert message["parse_errors"]
