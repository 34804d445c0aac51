"""The operation language and its engine: validation, isolation, rollback, safe SQL."""

import json

import pytest
from pydantic import ValidationError

from envgen.environment.programs import ToolProgram
from envgen.environment.runtime import Episode, quote, validate_arguments


def test_programs_are_validated_against_the_grammar():
    with pytest.raises(ValidationError):
        ToolProgram.model_validate(
            {
                "tool": "x",
                "kind": "read",
                "action": "get",
                "entity": "e",
                "steps": [{"op": "exec", "code": "import os"}],
            }
        )
    with pytest.raises(ValidationError):
        ToolProgram.model_validate(
            {
                "tool": "x",
                "kind": "read",
                "action": "get",
                "entity": "e",
                "steps": [{"op": "select", "table": "t", "bind": "r", "sql": "1"}],
            }
        )


def test_identifiers_are_checked_before_reaching_sql():
    assert quote("order") == '"order"'
    for bad in ['x"; DROP TABLE t; --', "Upper", "a b", ""]:
        with pytest.raises(ValueError):
            quote(bad)


def test_arguments_are_checked_against_the_schema(airline):
    tool = airline.env.tool_schema("get_reservation_details")
    assert validate_arguments(tool, '{"reservation_id": "RES-1001"}') == {"reservation_id": "RES-1001"}
    for bad, kind in [
        ("{", "invalid_arguments"),
        ("[]", "invalid_arguments"),
        ({}, "missing_argument"),
        ({"reservation_id": 3}, "invalid_type"),
        ({"reservation_id": "x", "y": 1}, "unexpected"),
    ]:
        ep = Episode(airline.env, airline.path)
        res = ep.call("get_reservation_details", bad)
        assert not res.ok and res.output["type"].startswith(kind), (bad, res.output)


def test_reads_writes_and_failed_calls_roll_back(airline):
    ep = Episode(airline.env, airline.path)
    res = ep.rows("reservation")[0]
    got = ep.call("get_reservation_details", {"reservation_id": res["reservation_id"]})
    assert got.ok and got.output["reservation_id"] == res["reservation_id"]
    before = ep.state_hash()
    missing = ep.call("get_reservation_details", {"reservation_id": "RES-9999"})
    assert not missing.ok and missing.output["type"] == "not_found"
    target = next(r for r in ep.rows("reservation") if r["status"] != "cancelled")
    prog = airline.env.program("cancel_reservation")
    args = {
        p: target[p] if p in target else "changed plans"
        for p in airline.env.tool_schema("cancel_reservation")["parameters"]["properties"]
    }
    assert prog.kind == "write"
    assert ep.call("cancel_reservation", args).ok
    assert ep.state_hash() != before
    after = ep.state_hash()
    again = ep.call("cancel_reservation", args)  # already cancelled: precondition fails, nothing changes
    assert not again.ok and again.output["type"] == "precondition_failed"
    assert ep.state_hash() == after
    assert json.loads(again.as_content())["error"]["type"] == "precondition_failed"


def test_episodes_are_isolated_from_each_other_and_the_snapshot(airline):
    a, b = Episode(airline.env, airline.path), Episode(airline.env, airline.path)
    initial = b.state_hash()
    victim = a.rows("payment_method")[0]["payment_method_id"]
    assert a.call("remove_payment_method", {"payment_method_id": victim}).ok
    assert a.state_hash() != initial
    assert b.state_hash() == initial == Episode(airline.env, airline.path).state_hash()


def test_state_hash_ignores_insertion_order(airline):
    ep = Episode(airline.env, airline.path)
    h = ep.state_hash()
    rows = ep.rows("flight")
    ep.conn.execute('DELETE FROM "flight"')
    cols = list(rows[0])
    for r in reversed(rows):
        ep.conn.execute(
            f'INSERT INTO "flight" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',
            [r[c] for c in cols],
        )
    assert ep.state_hash() == h
