"""The graded next-turn metric and its baselines, on hand-made dialogues."""

from __future__ import annotations

import json

from evals.tool_calls import (
    FrequencyBaseline,
    LexicalBaseline,
    arguments_match,
    dialogue_turns,
    fill_arguments,
    grade,
    judge_turn,
)


def _tool(name: str, description: str, types: dict[str, str], required: list[str]) -> dict:
    """An OpenAI-format tool with flat parameters of the given JSON types."""
    properties = {arg: {"type": kind} for arg, kind in types.items()}
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


TOOLS = [
    _tool(
        "cancel_order",
        "Cancel an order that has not shipped yet and record the reason.",
        {"order_id": "string", "reason": "string"},
        ["order_id", "reason"],
    ),
    _tool(
        "refund_return",
        "Refund an approved return to the original payment method.",
        {"return_request_id": "string", "refund_amount": "number", "notify": "boolean"},
        ["return_request_id", "refund_amount"],
    ),
]


def _call(name: str, arguments: dict) -> dict:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


DIALOGUE = [
    {"role": "system", "content": "policy"},
    {"role": "user", "content": "Please cancel an order (order id ORD-1008, reason 'moved abroad')."},
    _call("cancel_order", {"order_id": "ORD-1008", "reason": "moved abroad"}),
    {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "cancelled"}'},
    {"role": "assistant", "content": "Done. Anything else?"},
    {
        "role": "user",
        "content": "Then refund an approved return (return request id RRX-1013, refund amount 235.2).",
    },
    _call("refund_return", {"return_request_id": "RRX-1013", "refund_amount": 235.2}),
    {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "refunded"}'},
    {"role": "assistant", "content": "Done. Anything else?"},
]


def _turns():
    return dialogue_turns(DIALOGUE, TOOLS, "retail", "vertical", "t1")


def test_turns_are_every_assistant_turn_with_its_gold():
    turns = _turns()
    assert [t.gold_name for t in turns] == ["cancel_order", None, "refund_return", None]
    assert [t.position for t in turns] == [0, 1, 1, 2]
    assert turns[2].prefix == DIALOGUE[:6]


def test_right_call_scores_every_grade():
    refund = _turns()[2]
    verdict = judge_turn(
        refund, _call("refund_return", {"refund_amount": "235.20", "return_request_id": "rrx-1013"})
    )
    assert (verdict.well_formed, verdict.name, verdict.name_arguments) == (True, True, True)


def test_wrong_name_wrong_type_extra_argument_and_unparseable():
    refund = _turns()[2]
    wrong_name = judge_turn(
        refund, _call("cancel_order", {"return_request_id": "RRX-1013", "refund_amount": 235.2})
    )
    assert (wrong_name.well_formed, wrong_name.name, wrong_name.name_arguments) == (True, False, False)
    wrong_type = judge_turn(
        refund, _call("refund_return", {"return_request_id": "RRX-1013", "refund_amount": "a lot"})
    )
    assert (wrong_type.name, wrong_type.name_arguments) == (True, False)
    extra = judge_turn(
        refund,
        _call("refund_return", {"return_request_id": "RRX-1013", "refund_amount": 235.2, "notify": True}),
    )
    assert (extra.name, extra.name_arguments) == (True, False)
    garbage = judge_turn(
        refund, {"role": "assistant", "content": "<tool_call>{oops", "parse_errors": ["bad json"]}
    )
    assert (garbage.well_formed, garbage.name) == (False, False)


def test_text_turn_scores_stopping():
    text_turn = _turns()[1]
    assert judge_turn(text_turn, {"role": "assistant", "content": "Done."}).stopped
    assert not judge_turn(text_turn, _call("cancel_order", {})).stopped
    assert not judge_turn(
        text_turn, {"role": "assistant", "content": "<tool_call>", "parse_errors": ["x"]}
    ).stopped


def test_grade_counts_rates_and_intervals_per_group():
    turns = _turns()
    replies = [
        _call("cancel_order", {"order_id": "ORD-1008", "reason": "moved abroad"}),
        {"role": "assistant", "content": "Done."},
        _call("cancel_order", {}),
        _call("refund_return", {}),
    ]
    graded = grade(turns, [judge_turn(t, r) for t, r in zip(turns, replies, strict=True)])
    vertical = graded["vertical"]
    assert vertical["name"]["hits"] == 1 and vertical["name"]["n"] == 2
    assert vertical["name_arguments"]["rate"] == 0.5
    assert vertical["stopped"] == {**vertical["stopped"], "hits": 1, "n": 2}
    low, high = vertical["name"]["ci95"]
    assert 0 < low < 0.5 < high < 1
    assert graded["all"]["name"]["n"] == 2


def test_arguments_match_is_order_free_and_type_normalised():
    schema = {"n": {"type": "integer"}, "s": {"type": "string"}}
    assert arguments_match({"s": " Abc ", "n": "2"}, {"n": 2, "s": "abc"}, schema)
    assert not arguments_match({"n": 2}, {"n": 2, "s": "abc"}, schema)
    assert not arguments_match({"n": 3, "s": "abc"}, {"n": 2, "s": "abc"}, schema)


def test_lexical_baseline_picks_by_words_and_fills_by_type():
    turns = _turns()
    replies = LexicalBaseline().answer(turns)
    assert replies[0]["tool_calls"][0]["function"] == {
        "name": "cancel_order",
        "arguments": {"order_id": "ORD-1008", "reason": "moved abroad"},
    }
    assert "tool_calls" not in replies[1]  # the user did not speak last
    assert replies[2]["tool_calls"][0]["function"]["name"] == "refund_return"
    assert LexicalBaseline().answer(turns) == replies  # deterministic
    assert fill_arguments(TOOLS[1]["function"]["parameters"], "id RRX-1 amount 12") == {
        "return_request_id": "RRX-1",
        "refund_amount": 12,
    }


def test_frequency_baseline_uses_position_then_domain_and_is_deterministic():
    baseline = FrequencyBaseline({"retail": [["cancel_order", "refund_return"], ["cancel_order"]]})
    turns = _turns()
    names = [r.get("tool_calls", [{}])[0].get("function", {}).get("name") for r in baseline.answer(turns)]
    assert names == ["cancel_order", None, "refund_return", None]
    unseen = dialogue_turns(DIALOGUE, TOOLS, "new-domain", "general", "t2")
    # A domain never trained on: its prior comes from the evaluated dialogues themselves.
    first = FrequencyBaseline({}).answer(unseen)[0]
    assert first["tool_calls"][0]["function"]["name"] == "cancel_order"
