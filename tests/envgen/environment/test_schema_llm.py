"""A model's proposed tables and programs are parsed, checked and probed like ours, and used only when
at least as many tools run as under the rules."""

from __future__ import annotations

import asyncio
import json

import pytest

from envgen.environment.build import BuildReport, build_environment
from envgen.environment.programs import EnvironmentDoc, ToolProgram, program_problem
from envgen.environment.schema_llm import build_environment_with_model, parse_proposal


class Proposer:
    """A test double for the proposing model: answers with a fixed text and records the prompt."""

    name = "test:proposer"

    def __init__(self, reply: str):
        self.reply = reply
        self.prompts: list[str] = []

    async def complete(self, messages, tools, **kw):
        self.prompts.append(messages[0]["content"])
        return {"role": "assistant", "content": self.reply}


@pytest.fixture(scope="module")
def hotel_specs(bundled_specs):
    return [s for s in bundled_specs if s.tags[0] == "hotel"]


@pytest.fixture(scope="module")
def rule_json(hotel_specs) -> str:
    env, snap, report = build_environment("hotel", "hotel", hotel_specs)
    snap.close()
    assert not report.refused
    return env.model_dump_json()


@pytest.fixture
def rule_doc(rule_json):
    """A fresh copy of the rule-derived environment for each test to edit."""
    return json.loads(rule_json)


def _build(specs, reply):
    model = Proposer(reply)
    env, snap, report = asyncio.run(build_environment_with_model("hotel", "hotel", specs, model))
    snap.close()
    return env, report, model


def test_a_sound_proposal_is_used_and_every_tool_runs(hotel_specs, rule_doc):
    # A model that adds a precondition the description states: booking dates must be in order.
    programs = rule_doc["programs"]
    book = next(p for p in programs if p["tool"] == "book_room")
    book["steps"].insert(
        0,
        {
            "op": "check",
            "left": {"arg": "check_out_date"},
            "cmp": "gt",
            "right": {"arg": "check_in_date"},
            "error": "check-out must be after check-in",
        },
    )
    tables = [{k: v for k, v in t.items() if k != "key_prefix"} for t in rule_doc["tables"]]
    reply = "Here is the design:\n```json\n" + json.dumps({"tables": tables, "programs": programs}) + "\n```"
    env, report, model = _build(hotel_specs, reply)
    assert report.source == "model" and report.choice.startswith("model: model 13/13 tools run, rules 13/13")
    assert len(report.kept) == 13 and not report.refused
    assert env.program("book_room").steps[0].op == "check"
    assert "book_room" in model.prompts[0] and '"new_key"' in model.prompts[0]


def test_a_proposal_that_runs_fewer_tools_loses_to_the_rules(hotel_specs, rule_doc):
    programs = [p for p in rule_doc["programs"] if p["tool"] != "cancel_booking"]
    broken = next(p for p in programs if p["tool"] == "get_guest_profile")
    broken["steps"][0]["table"] = "visitor"  # a table the proposal does not have
    reply = json.dumps({"tables": rule_doc["tables"], "programs": programs})
    env, report, _ = _build(hotel_specs, reply)
    assert report.source == "rules" and report.choice == "rules: model 11/13 tools run, rules 13/13"
    assert len(env.programs) == 13


@pytest.mark.parametrize(
    "reply, why",
    [
        ("I cannot help with that.", "holds no JSON object"),
        ('{"tables": [', "holds no JSON object"),
        ('{"tables": [{"name": "guest"]}', "does not parse"),
        ('{"programs": []}', "not an object with a `tables` list"),
        (
            '{"tables": [{"name": "guest", "key": "guest_id", "columns": [{"name": "x", "type": "date"}]}]}',
            "table #0",
        ),
    ],
)
def test_unusable_replies_keep_the_rules_with_the_reason(hotel_specs, reply, why):
    _, report, _ = _build(hotel_specs, reply)
    assert report.source == "rules" and len(report.kept) == 13
    assert report.choice.startswith("rules: the model's proposal is unusable") and why in report.choice


def test_per_tool_refusals_name_the_problem(hotel_specs, rule_doc):
    programs = [p for p in rule_doc["programs"] if p["tool"] != "search_hotels"]
    bad = next(p for p in programs if p["tool"] == "get_hotel_details")
    bad["steps"][0]["op"] = "drop_table"
    report = BuildReport()
    doc = parse_proposal(
        json.dumps({"tables": rule_doc["tables"], "programs": programs}),
        "hotel",
        "hotel",
        hotel_specs,
        0,
        5,
        report,
    )
    assert report.refused["search_hotels"] == "the model wrote no program for it"
    assert report.refused["get_hotel_details"].startswith("model program does not parse")
    assert len(doc.programs) == 11


def test_static_check_names_missing_columns_arguments_and_bindings(rule_doc):
    doc = EnvironmentDoc.model_validate(rule_doc)
    assert all(program_problem(doc, p) is None for p in doc.programs)
    prog = json.loads(doc.program("cancel_booking").model_dump_json())
    prog["steps"][-1]["bind"] = "ghost"
    assert "returns 'ghost', which no earlier step binds" in program_problem(
        doc, ToolProgram.model_validate(prog)
    )
    upd = next(s for s in prog["steps"] if s["op"] == "update")
    upd["set"]["colour"] = {"const": "red"}
    assert "has no columns ['colour']" in program_problem(doc, ToolProgram.model_validate(prog))
    upd["set"] = {"status": {"arg": "reason_code"}}
    assert "argument 'reason_code' is not a parameter" in program_problem(
        doc, ToolProgram.model_validate(prog)
    )


def test_a_schema_sqlite_refuses_keeps_the_rules(hotel_specs, rule_doc):
    tables = rule_doc["tables"] + [rule_doc["tables"][0]]  # the same table twice
    _, report, _ = _build(hotel_specs, json.dumps({"tables": tables, "programs": rule_doc["programs"]}))
    assert report.source == "rules" and len(report.kept) == 13
    assert "OperationalError" in report.choice and "already exists" in report.choice


def test_a_program_comparing_mismatched_types_fails_only_its_tool(hotel_specs, rule_doc):
    book = next(p for p in rule_doc["programs"] if p["tool"] == "book_room")
    check = {"op": "check", "left": {"const": "a"}, "cmp": "gt", "right": {"const": 1}, "error": "never"}
    book["steps"].insert(0, check)
    _, report, _ = _build(
        hotel_specs, json.dumps({"tables": rule_doc["tables"], "programs": rule_doc["programs"]})
    )
    assert report.source == "rules" and report.choice == "rules: model 12/13 tools run, rules 13/13"
