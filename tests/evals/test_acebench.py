"""ACEBench support: loading, ACEBench's judging rules, the agent apps, and the run entry point.

The fixture under tests/evals/fixtures/acebench is hand-written in ACEBench's exact file format with invented
content (including stand-in scenario modules whose literal __init__ data the apps read).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from envgen.llm.backends import DoNothingAgent
from evals.acebench import (
    NEEDS_USER,
    SCORED,
    AceBenchDataNotFound,
    AceBenchFormatError,
    acebench_tool_schemas,
    load_acebench,
    run_acebench,
)
from evals.acebench.agent import final_state_check, process_accuracy
from evals.acebench.apps import Scenario
from evals.acebench.calls import parse_text_calls
from evals.acebench.checker import check_normal, check_special

FIXTURE = Path(__file__).parent / "fixtures" / "acebench"


@pytest.fixture(scope="module")
def data():
    return load_acebench(FIXTURE)


class Scripted:
    """A ChatBackend replaying fixed assistant messages (text or tool calls), then finishing."""

    name = "scripted:test"

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.seen: list[list[dict[str, Any]]] = []

    async def complete(self, messages, tools, **sampling):
        self.seen.append([dict(m) for m in messages])
        reply = self.replies.pop(0) if self.replies else "finish conversation"
        if isinstance(reply, dict):
            return {"role": "assistant", "content": "", **reply}
        return {"role": "assistant", "content": reply}


def only(data, category: str, sub: str, n: int = 1):
    """`data` cut to the first `n` items of one subcategory, so a scripted agent meets them alone."""
    return replace(data, items={category: {sub: data.items[category][sub][:n]}})


def tool_call(name: str, **args: Any) -> dict[str, Any]:
    return {
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ]
    }


def test_loads_every_category_with_answers(data):
    assert data.counts() == {
        "agent": {"multi_step": 3, "multi_turn": 1},
        "normal": {
            "atom_bool": 2,
            "multi_turn_user_switch": 2,
            "preference": 1,
            "similar_api": 1,
            "single_turn_parallel_function": 1,
        },
        "special": {"error_param": 1, "incomplete": 1, "irrelevant": 1},
    }
    step = data.items["agent"]["multi_step"][0]
    assert step.involved_classes == ["BaseApi", "FoodPlatform"] and len(step.mile_stone) == 3
    assert data.items["normal"]["preference"][0].profile.startswith("Brother")


def test_missing_path_says_data_not_found(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(AceBenchDataNotFound) as exc:
        load_acebench(missing)
    assert str(exc.value) == f"data not found at {missing}"
    assert isinstance(exc.value, FileNotFoundError)


def test_malformed_line_names_file_and_line(tmp_path):
    root = tmp_path / "ace"
    shutil.copytree(FIXTURE, root)
    path = root / "data_all" / "data_en" / "data_normal_atom_bool.json"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + '{"id": "normal_atom_bool_1", "question": \n')
    with pytest.raises(AceBenchFormatError, match=r"data_normal_atom_bool\.json:2: not valid JSON"):
        load_acebench(root)


@pytest.mark.parametrize("category", ["normal", "special", "agent"])
def test_gold_replay_scores_one(data, category):
    res = run_acebench(data, category, "gold")
    assert res.status == SCORED and res.n > 0
    assert res.successes == res.n and res.rate == 1.0 and res.acebench_score == 1.0
    assert res.ci_high == 1.0 and 0.0 < res.ci_low < 1.0
    if category == "agent":
        assert res.process_accuracy == 1.0
        assert res.per_subcategory == {"multi_step": (3, 3), "multi_turn": (1, 1)}  # Travel included
    json.dumps(res.to_dict())  # JSON-able


def test_do_nothing_floor(data):
    normal = run_acebench(data, "normal", DoNothingAgent())
    assert (normal.successes, normal.n) == (0, 6) and normal.failures == {"no_answer": 6}
    special = run_acebench(data, "special", DoNothingAgent())
    # ACEBench's special rules are text matches; the stock do-nothing reply names none of its phrases.
    assert special.successes == 0 and special.failures == {"error_detection": 3}
    # An agent that never calls and gives ACEBench's refusal sentence is the floor that scores: irrelevant.
    refuse = Scripted(['["Due to the limitations of the function, I cannot solve this problem."]'] * 3)
    floor = run_acebench(data, "special", refuse, concurrency=1)
    assert floor.per_subcategory == {"error_param": (0, 1), "incomplete": (0, 1), "irrelevant": (1, 1)}


def test_wrong_argument_scores_zero(data):
    agent = Scripted([tool_call("PackingList_create", destination="Madrid", include_weather=True)])
    res = run_acebench(only(data, "normal", "atom_bool"), "normal", agent)
    assert res.records[0].category == "wrong_argument" and res.failures == {"wrong_argument": 1}
    one = data.items["normal"]["atom_bool"][0]
    verdict = check_normal(one.functions, [{"PackingList_create": {"destination": "Madrid"}}], one.answer)
    assert not verdict.valid and verdict.category == "wrong_argument" and verdict.error_type == "value_error"
    assert res.successes == 0 and set(res.failures) <= {
        "wrong_argument",
        "wrong_function_name",
        "missing_call",
    }


def test_acebench_value_rules(data):
    one = data.items["normal"]["atom_bool"][0]
    ok = {"PackingList_create": {"destination": "  lisbon.", "include_weather": True}}
    assert check_normal(one.functions, [ok], one.answer).valid  # normalised strings, substring rule
    extra = {"PackingList_create": {"destination": "Lisbon", "include_weather": True, "days": 2}}
    assert check_normal(one.functions, [extra], one.answer).error_type == "addition_args"
    assert check_normal(one.functions, [ok, ok], one.answer).category == "unexpected_call"
    other = {"trip.weatherLookup": {"city": "Lisbon"}}
    assert check_normal(one.functions, [other], one.answer).category == "wrong_function_name"
    alt = data.items["normal"]["atom_bool"][1]  # two possible answers: the second passes
    second = {"PackingList_create": {"destination": "Oslo, Norway", "include_weather": False, "days": 3}}
    assert check_normal(alt.functions, [second], alt.answer).valid
    par = data.items["normal"]["single_turn_parallel_function"][0]  # `_1`/`_2` suffixes, any order
    calls = [{"Lamp_set": {"room": "hall", "level": 5}}, {"Lamp_set": {"room": "kitchen", "level": 3}}]
    assert check_normal(par.functions, calls, par.answer).valid
    tags = data.items["normal"]["similar_api"][0]
    wrong_order = [{"Photo_tag": {"photo_id": "P-7", "tags": ["sunset", "beach"]}}]
    assert not check_normal(tags.functions, wrong_order, tags.answer).valid


def test_text_form_answers_parse(data):
    assert parse_text_calls(
        "[Lamp_set(room='hall', level=5), trip.weatherLookup(city=\"Oslo\", days=-1)]"
    ) == [
        {"Lamp_set": {"room": "hall", "level": 5}},
        {"trip.weatherLookup": {"city": "Oslo", "days": -1}},
    ]
    with pytest.raises(ValueError):
        parse_text_calls("[__import__('os').system('true') + 1]")
    text = "Sure: [PackingList_create(destination='Lisbon', include_weather=True)]"
    res = run_acebench(data, "normal", Scripted([text, "[Lamp_set(room='x', level=1)]"] * 4), concurrency=1)
    assert res.records[0].id == "normal_atom_bool_0" and res.records[0].solved
    prefs = Scripted(["[Gift_suggest(recipient={'age': 30, 'hobby': 'Chess'}, budget='50 dollars')]"])
    pref = run_acebench(only(data, "normal", "preference"), "normal", prefs)
    assert pref.per_subcategory["preference"] == (1, 1)
    assert "loves chess" in prefs.seen[0][0]["content"]  # the profile is in the prompt


def test_special_rules_are_text_matches(data):
    inc = data.items["special"]["incomplete"][0]
    good = '["Missing necessary parameters (date, seat_class) for the api (Flight_book)"]'
    assert check_special("incomplete", good, inc.answer).valid
    half = check_special(
        "incomplete", '["Missing necessary parameters (date) for the api (Flight_book)"]', inc.answer
    )
    assert half.category == "error_correction"
    err = data.items["special"]["error_param"][0]
    assert check_special("error_param", "There is incorrect value (ana#mail.com) for email", err.answer).valid
    called = run_acebench(
        data, "special", Scripted([tool_call("Flight_book", origin="Porto")] * 3), concurrency=1
    )
    assert called.failures == {"unexpected_call": 3}


def test_unknown_scenario_class_fails_the_item_and_names_file_line_and_class(tmp_path):
    root = tmp_path / "ace"
    shutil.copytree(FIXTURE, root)
    path = root / "data_all" / "data_en" / "data_agent_multi_step.json"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["involved_classes"] = ["BaseApi", "Finance"]  # a class ACEBench names but ships no module for
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    res = run_acebench(load_acebench(root), "agent", "gold")
    bad = next(r for r in res.records if r.id == "agent_multi_step_0")
    assert not bad.solved and bad.category == "scenario_unavailable"
    assert bad.error == f"{path}:1: scenario class Finance is not implemented"
    assert res.n == 4 and res.successes == 3  # counted in the denominator, never skipped
    assert res.failures == {"scenario_unavailable": 1}


def test_agent_final_state_and_milestones_on_hand_made_calls(data):
    item = data.items["agent"]["multi_step"][0]
    sc = Scenario.build(FIXTURE, "en", "multi_step", item.involved_classes, item.initial_config)
    assert (
        sc.call("login_food_platform", {"username": "Ana", "password": "pw-ana"})["status"] is False
    )  # no wifi
    sc.call("turn_on_wifi", {})
    sc.call("login_food_platform", {"username": "Ana", "password": "pw-ana"})
    sc.call(
        "add_food_delivery_order",
        {
            "username": "Ana",
            "merchant_name": "Noodle Bar",
            "items": [{"product": "Veggie Noodles", "quantity": 1}],
        },
    )
    valid, errors, _ = final_state_check(sc.state(), item.answer, executed=4)
    assert not valid and any("users" in e for e in errors)
    done = [
        "[turn_on_wifi()]",
        "[login_food_platform(username='Ana', password=\"pw-ana\")]",
        "[add_food_delivery_order(username='Ana', merchant_name='Noodle Bar', items=[{'product': 'Veggie Noodles', 'quantity': 1}])]",  # noqa: E501
    ]
    assert process_accuracy(done, item.mile_stone) == pytest.approx(0.667)
    # ACEBench's greedy scan: a first milestone never found consumes the whole process, so nothing counts.
    assert process_accuracy(done[1:2], item.mile_stone) == 0.0
    msg = data.items["agent"]["multi_step"][1]  # two alternative milestone lists: the best one counts
    assert process_accuracy(["[delete_message(message_id=3)]"], msg.mile_stone) == 0.5


def test_agent_multi_step_with_tool_calls(data):
    good = Scripted(
        [
            tool_call("turn_on_wifi"),
            tool_call("login_food_platform", username="Ana", password="pw-ana"),
            "[add_food_delivery_order(username='Ana', merchant_name='Noodle Bar', items=[{'product': 'Veggie Noodles', 'quantity': 2}])]",  # noqa: E501
            "finish conversation",
        ]
    )
    res = run_acebench(only(data, "agent", "multi_step"), "agent", good)
    rec = next(r for r in res.records if r.id == "agent_multi_step_0")
    assert rec.solved and rec.process == 1.0 and rec.detail["termination"] == "finished"
    assert any(m["role"] == "tool" for m in good.seen[-1])  # results went back as tool messages


def test_agent_multi_turn_needs_user(data):
    res = run_acebench(data, "agent", DoNothingAgent())
    assert res.status == NEEDS_USER and "needs a user-simulator endpoint" in res.note
    assert set(res.per_subcategory) == {"multi_step"}
    user = Scripted(
        [
            "Please add a reminder 'Dentist', description 'Checkup at 10', at 2024-06-12 10:00.",
            "finish conversation",
        ]
    )
    agent = Scripted(
        [
            tool_call("add_reminder", title="Dentist", description="Checkup at 10", time="2024-06-12 10:00"),
            "Done, anything else?",
        ]
    )  # noqa: E501
    res = run_acebench(only(data, "agent", "multi_turn"), "agent", agent, user=user)
    assert res.status == SCORED and (res.successes, res.n) == (1, 1)
    assert res.records[0].detail["termination"] == "user_stop"


def test_tool_schemas_are_openai_tools(data):
    tools = acebench_tool_schemas(data)
    names = [t["function"]["name"] for t in tools]
    assert len(names) == len(set(names)) and "trip_weatherLookup" in names  # dots are not allowed by OpenAI
    tag = next(t for t in tools if t["function"]["name"] == "Photo_tag")["function"]["parameters"]
    assert tag["properties"]["tags"] == {"type": "array", "description": "Tags.", "items": {"type": "string"}}
    gift = next(t for t in tools if t["function"]["name"] == "Gift_suggest")["function"]["parameters"]
    assert gift["properties"]["recipient"]["type"] == "object"
