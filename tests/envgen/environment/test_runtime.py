"""The operation language and its engine: validation, isolation, rollback, safe SQL."""

import json
import sqlite3

import pytest
from pydantic import ValidationError

from envgen.catalog.spec import ToolSpec
from envgen.environment.build import build_environment
from envgen.environment.programs import ToolProgram
from envgen.environment.runtime import Episode, quote, validate_arguments

S = {"type": "string"}


def _spec(name: str, description: str, props: dict, required: list[str]) -> ToolSpec:
    params = {"type": "object", "properties": props, "required": required}
    return ToolSpec(name, description, params, {}, "openai", "test")


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


HOSTILE_NAMES = ['x"; DROP TABLE t; --', "select", "pageSize", "a.b", "$filter", "名前", "Upper", "a b"]


def test_any_name_is_one_quoted_identifier_that_cannot_inject_sql():
    assert quote("order") == '"order"'
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT)")
    for name in HOSTILE_NAMES:
        conn.execute(f"CREATE TABLE {quote(name)} ({quote(name + '_col')} TEXT)")
        conn.execute(f"INSERT INTO {quote(name)} ({quote(name + '_col')}) VALUES (?)", [name])
        assert conn.execute(f"SELECT {quote(name + '_col')} FROM {quote(name)}").fetchone() == (name,)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"t", *HOSTILE_NAMES}  # every name is exactly one table, and `t` was not dropped
    for unusable in ["", "a\x00b"]:
        with pytest.raises(ValueError, match="unusable SQL identifier"):
            quote(unusable)


def test_real_world_parameter_names_build_working_tools():
    """camelCase, reserved words, dots, unicode and quotes in parameter names: every tool is admitted and
    runs, and a name differing only in case from another is the same column."""
    hostile = {"noteTitle": S, "select": S, "a.b": S, "名前": S, 'x"; DROP TABLE note; --': S}
    specs = [
        _spec("create_note", "Create a note.", hostile, ["noteTitle"]),
        _spec("get_note", "Return a note.", {"note_id": S}, ["note_id"]),
        _spec(
            "update_note_title",
            "Change a note's title.",
            {"note_id": S, "notetitle": S},
            ["note_id", "notetitle"],
        ),
        _spec("list_notes", "List notes.", {}, []),
    ]
    env, snapshot, report = build_environment("notes", "notes", specs)
    assert sorted(t["name"] for t in env.tools) == [
        "create_note",
        "get_note",
        "list_notes",
        "update_note_title",
    ]
    note = next(t for t in env.tables if t.name == "note")
    assert sum(c.name.casefold() == "notetitle" for c in note.columns) == 1
    ep = Episode(env, snapshot)
    try:
        made = ep.call("create_note", {"noteTitle": "Q3 plan", "select": "1; DROP TABLE note", "名前": "x"})
        assert made.ok, made.output
        key = made.output["note_id"]
        assert ep.call("update_note_title", {"note_id": key, "notetitle": "Q4 plan"}).ok
        got = ep.call("get_note", {"note_id": key})
        assert (
            got.ok and got.output["noteTitle"] == "Q4 plan" and got.output["select"] == "1; DROP TABLE note"
        )
    finally:
        ep.close()


def test_integer_ids_are_seeded_and_created_as_integers():
    """An API whose `tweet_id` is an integer gets integer ids (seeded and new), never `TWE-1007`."""
    integer = {"type": "integer"}
    specs = [
        _spec("post_tweet", "Post a tweet.", {"text": S}, ["text"]),
        _spec("get_tweet", "Return a tweet.", {"tweet_id": integer}, ["tweet_id"]),
        _spec("delete_tweet", "Delete a tweet.", {"tweet_id": integer}, ["tweet_id"]),
    ]
    env, snapshot, _ = build_environment("microblog", "microblog", specs)
    assert sorted(t["name"] for t in env.tools) == ["delete_tweet", "get_tweet", "post_tweet"]
    ep = Episode(env, snapshot)
    try:
        seeded = ep.call("get_tweet", {"tweet_id": 1001})
        assert seeded.ok and seeded.output["tweet_id"] == 1001
        made = ep.call("post_tweet", {"text": "hello"})
        assert made.ok and isinstance(made.output["tweet_id"], int) and made.output["tweet_id"] > 1001
        assert ep.call("delete_tweet", {"tweet_id": made.output["tweet_id"]}).ok
        assert not ep.call("get_tweet", {"tweet_id": made.output["tweet_id"]}).ok
    finally:
        ep.close()


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
