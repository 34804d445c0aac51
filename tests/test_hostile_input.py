"""Hostile and malformed input: 50+ API spec files and 50+ model outputs, each reported, none crashing.

Specs: huge, deeply nested, alias bombs, non-UTF-8, duplicate names, names that are SQL or path tricks,
wrong types everywhere, foreign `$ref`s. Every file either loads (and then builds into an environment that
runs with quoted identifiers and bound values) or is refused with a reason naming it; the `api_catalog`
asset materialises over the whole corpus. Model outputs: broken JSON arguments, unknown tools, wrong
types, odd message shapes, endless loops; each goes through a real episode and is rejected by the funnel
with a reason, never raising.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from dagster import materialize

from agentscaler_assets.catalog_assets import api_catalog
from agentscaler_assets.resources import StorageRoot
from envgen.catalog import loaders
from envgen.catalog.loaders import load_paths
from envgen.catalog.spec import NAME_RE
from envgen.environment.build import build_environment
from envgen.environment.runtime import Episode
from envgen.funnel.filters import FunnelConfig, judge
from envgen.llm.backends import message_from_openai
from envgen.simulate.rollout import run_episode
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks


def _fn(name: Any, params: Any = None, returns: Any = None, description: Any = "A tool.") -> dict:
    doc = {
        "name": name,
        "description": description,
        "parameters": params or {"type": "object", "properties": {}},
    }
    if returns is not None:
        doc["returns"] = returns
    return doc


def _obj(**props: Any) -> dict:
    return {"type": "object", "properties": props}


S = {"type": "string"}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

# (file name, content as str or bytes). Names say what each one tries.
HOSTILE_SPECS: list[tuple[str, str | bytes]] = [
    ("deep_array.json", "[" * 50_000 + "]" * 50_000),
    ("deep_object.json", '{"a":' * 5_000 + "1" + "}" * 5_000),
    (
        "deep_but_parseable.json",
        json.dumps(_fn("deep_ok", _obj(a=json.loads('{"x":' * 80 + "1" + "}" * 80)))),
    ),
    ("deep.yaml", "a:\n" + "".join("  " * i + "- \n" for i in range(1, 400))),
    ("billion_laughs.yaml", BOMB),
    ("python_tag.yaml", "name: !!python/object/apply:os.system ['echo pwned']\n"),
    ("latin1.json", b'{"name": "caf\xe9", "description": "\xff", "parameters": {"type": "object"}}'),
    ("latin1.yaml", b"name: caf\xe9\n"),
    ("utf16.json", json.dumps(_fn("utf16_tool")).encode("utf-16")),
    ("nul_bytes.json", '{"name": "nul\x00tool", "description": "x\x00", "parameters": {"type": "object"}}'),
    ("empty.json", ""),
    ("whitespace.json", "   \n\t "),
    ("truncated.json", '{"name": "cut", "parameters": {"type": "obj'),
    ("trailing_comma.json", '{"name": "comma", "parameters": {},}'),
    ("a_number.json", "42"),
    ("a_string.json", '"get_weather"'),
    ("null.json", "null"),
    ("list_of_junk.json", json.dumps([1, "two", None, [3], {"four": 4}])),
    (
        "mixed_lines.jsonl",
        "\n".join([json.dumps(_fn("line_ok")), "{not json", "[]", "7", json.dumps({"x": 1})]),
    ),
    ("sql_name.json", json.dumps(_fn("x; DROP TABLE users; --"))),
    ("sql_quote_name.json", json.dumps(_fn("get_user' OR '1'='1"))),
    ("path_name.json", json.dumps(_fn("../../etc/passwd"))),
    ("abs_path_name.json", json.dumps(_fn("/root/.ssh/id_rsa"))),
    ("dotdot_param.json", json.dumps(_fn("get_file", _obj(**{"../x": S})))),
    ("sql_param.json", json.dumps(_fn("get_item", _obj(**{"id) ; DROP TABLE t; --": S})))),
    (
        "sql_keyword_fields.json",
        json.dumps(_fn("get_order", _obj(order_id=S), _obj(order_id=S, select=S, group=S))),
    ),
    (
        "sql_in_description.json",
        json.dumps(_fn("list_notes", description="'; DROP TABLE notes; -- {{7*7}} {0} %s")),
    ),
    (
        "jinja_in_enum.json",
        json.dumps(_fn("set_mode", _obj(mode={"type": "string", "enum": ["{{ cycler }}", "';--"]}))),
    ),
    ("unicode_name.json", json.dumps(_fn("получить_погоду"))),
    ("emoji_name.json", json.dumps(_fn("get_🍕"))),
    ("empty_name.json", json.dumps(_fn(""))),
    ("null_name.json", json.dumps(_fn(None))),
    ("numeric_name.json", json.dumps(_fn(12345))),
    ("long_name.json", json.dumps(_fn("get_" + "x" * 300))),
    ("name_starts_digit.json", json.dumps(_fn("1_tool"))),
    ("params_list.json", json.dumps(_fn("bad_params", [1, 2, 3]))),
    ("properties_string.json", json.dumps(_fn("bad_props", {"type": "object", "properties": "everything"}))),
    ("param_array.json", json.dumps(_fn("get_tags", _obj(tags={"type": "array", "items": S})))),
    ("param_no_type.json", json.dumps(_fn("get_thing", _obj(thing={})))),
    ("param_schema_string.json", json.dumps(_fn("get_thing2", _obj(thing="string")))),
    (
        "required_undeclared.json",
        json.dumps(_fn("need_x", {"type": "object", "properties": {}, "required": ["x"]})),
    ),
    (
        "required_not_list.json",
        json.dumps(_fn("need_y", {"type": "object", "properties": {"y": S}, "required": "y"})),
    ),
    ("description_object.json", json.dumps(_fn("get_desc", description={"text": "hi"}))),
    ("returns_string.json", json.dumps(_fn("get_ret", returns="a string"))),
    ("returns_bad_field.json", json.dumps(_fn("get_rf", returns=_obj(**{"bad field": S})))),
    (
        "huge_enum.json",
        json.dumps(_fn("pick", _obj(v={"type": "string", "enum": [f"v{i}" for i in range(20_000)]}))),
    ),
    (
        "non_string_enum.json",
        json.dumps(_fn("pick2", _obj(v={"type": "string", "enum": [1, None, {"a": 1}]}))),
    ),
    ("huge_description.json", json.dumps(_fn("get_big", description="lorem " * 400_000))),
    ("many_tools.json", json.dumps([_fn(f"get_thing_{i}", _obj(thing_id=S)) for i in range(3_000)])),
    ("dup_same.json", json.dumps([_fn("dup_tool", _obj(a=S)), _fn("dup_tool", _obj(a=S))])),
    (
        "dup_conflict.json",
        json.dumps([_fn("dup_tool2", _obj(a=S)), _fn("dup_tool2", _obj(b={"type": "integer"}))]),
    ),
    (
        "over_limit.json",
        json.dumps(_fn("over_limit_tool", description="x" * 5 * 2**20)),
    ),  # limit set to 4 MiB
    (
        "openapi_ref_cycle.json",
        json.dumps(
            {
                "openapi": "3.0.0",
                "info": {"title": "t", "version": "1"},
                "paths": {
                    "/a": {
                        "post": {
                            "operationId": "create_a",
                            "requestBody": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "#/components/schemas/A"}}
                                }
                            },
                        }
                    }
                },
                "components": {
                    "schemas": {
                        "A": {"$ref": "#/components/schemas/B"},
                        "B": {"$ref": "#/components/schemas/A"},
                    }
                },
            }
        ),
    ),
    (
        "openapi_foreign_refs.json",
        json.dumps(
            {
                "openapi": "3.0.0",
                "info": {"title": "t", "version": "1"},
                "paths": {
                    "/f": {
                        "post": {
                            "operationId": "read_file",
                            "requestBody": {
                                "content": {"application/json": {"schema": {"$ref": "file:///etc/passwd"}}}
                            },
                        }
                    },
                    "/h": {
                        "post": {
                            "operationId": "fetch_url",
                            "requestBody": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "http://169.254.169.254/latest"}}
                                }
                            },
                        }
                    },
                    "/r": {
                        "post": {
                            "operationId": "rel_ref",
                            "requestBody": {
                                "content": {"application/json": {"schema": {"$ref": "../secrets.json#/x"}}}
                            },
                        }
                    },
                },
            }
        ),
    ),
    ("swagger2.json", json.dumps({"swagger": "2.0", "paths": {"/x": {"get": {"operationId": "get_x"}}}})),
    ("openapi_paths_junk.json", json.dumps({"openapi": "3.1.0", "paths": ["not", "a", "map"]})),
    ("toolbench_junk.json", json.dumps({"tool_name": "T", "api_list": "nope"})),
    ("toolbench_bad_api.json", json.dumps({"tool_name": "T2", "api_list": [None, 3, {"name": None}]})),
    (
        "bfcl_bad_types.json",
        json.dumps(
            {
                "name": "math.f",
                "description": "d",
                "parameters": {"type": "dict", "properties": {"x": {"type": "tuple"}}},
            }
        ),
    ),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, content in HOSTILE_SPECS:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def test_every_hostile_spec_is_loaded_or_refused_by_name(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(HOSTILE_SPECS) >= 50
    monkeypatch.setattr(loaders, "MAX_FILE_BYTES", 4 * 2**20)  # 64 MiB by default; a 65 MiB file is slow
    load = load_paths([corpus])
    accounted = {Path(r.origin.split(":")[0]).name for r in load.refused} | {
        Path(s.source_origin.split(":")[0].split("#")[0]).name for s in load.specs
    }
    missing = [name for name, _ in HOSTILE_SPECS if name not in accounted and name not in ("dup_same.json",)]
    assert not missing, f"neither loaded nor refused: {missing}"
    reasons = {Path(r.origin.split(":")[0]).name: r.reason for r in load.refused}
    assert "nested too deeply" in reasons["deep_array.json"]
    assert "aliases" in reasons["billion_laughs.yaml"]
    assert "not UTF-8" in reasons["latin1.json"] and "not UTF-8" in reasons["latin1.yaml"]
    assert "limit" in reasons["over_limit.json"]
    foreign = [r.reason for r in load.refused if "openapi_foreign_refs" in r.origin]
    assert len(foreign) == 3 and all("only local" in r for r in foreign)  # no file or URL was read
    for r in load.refused:
        assert r.reason and r.origin, r
    loaded = {s.name for s in load.specs}
    assert all(NAME_RE.match(n) for n in loaded)  # nothing that could be an unsafe identifier or path
    assert {"get_order", "list_notes", "set_mode", "line_ok", "dup_tool", "get_thing_0"} <= loaded
    # the same name again in one file, with other parameters: a variant of the first, which is kept
    assert "dup_tool2" in {r.name for r in load.variants} and "dup_tool2" in loaded


def test_loaded_hostile_specs_build_safe_environments(corpus: Path) -> None:
    """What loads runs: SQL keywords as column names are quoted, SQL in values is bound, not executed."""
    specs = {s.name: s for s in load_paths([corpus]).specs}
    chosen = [specs[n] for n in ("get_order", "list_notes", "set_mode")]
    env, snapshot, report = build_environment("hostile", "hostile", chosen)
    episode = Episode(env, snapshot)
    try:
        before = episode.state_hash()
        for tool in env.tools:
            name = tool["name"]
            props = tool["parameters"].get("properties", {})
            args = {p: "'; DROP TABLE notes; --" for p in props}
            result = episode.call(name, args)  # an error result at worst, never an exception
            assert isinstance(result.ok, bool)
        assert episode.state_hash() == before  # reads changed nothing; nothing was dropped
    finally:
        episode.close()
    assert report is not None


def test_api_catalog_asset_materialises_over_the_corpus(corpus: Path, tmp_path: Path) -> None:
    result = materialize(
        [api_catalog],
        resources={"storage": StorageRoot(root=str(tmp_path))},
        run_config={"ops": {"api_catalog": {"config": {"sources": [str(corpus)]}}}},
        raise_on_error=False,
    )
    assert result.success
    meta = result.asset_materializations_for_node("api_catalog")[0].metadata
    assert meta["refused"].value >= 40


def _call(name: Any, arguments: Any, call_id: Any = "c1") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _text(body: str) -> dict:
    """A raw completion as a local model would produce it, through the same parser as the hf backend."""
    return {"content": body}


def malformed_outputs(tool: str, arg: str) -> list[tuple[str, dict]]:
    """(label, OpenAI-format message as an endpoint might send it) for 50+ kinds of bad model output."""
    good = json.dumps({arg: "X-1"})
    tag = lambda s: f"<tool_call>\n{s}\n</tool_call>"  # noqa: E731
    return [
        ("broken json args", {"tool_calls": [_call(tool, '{"' + arg + '": ')]}),
        ("args json list", {"tool_calls": [_call(tool, "[1, 2]")]}),
        ("args json string", {"tool_calls": [_call(tool, '"just a string"')]}),
        ("args json number", {"tool_calls": [_call(tool, "3")]}),
        ("args json null", {"tool_calls": [_call(tool, "null")]}),
        ("args python repr", {"tool_calls": [_call(tool, "{'" + arg + "': 'X-1'}")]}),
        ("args as object", {"tool_calls": [_call(tool, {arg: "X-1"})]}),
        ("args as list object", {"tool_calls": [_call(tool, [arg])]}),
        ("args wrong type int", {"tool_calls": [_call(tool, json.dumps({arg: 123}))]}),
        ("args wrong type list", {"tool_calls": [_call(tool, json.dumps({arg: ["X-1"]}))]}),
        ("args wrong type object", {"tool_calls": [_call(tool, json.dumps({arg: {"$gt": ""}}))]}),
        (
            "args sql injection",
            {"tool_calls": [_call(tool, json.dumps({arg: "' OR 1=1; DROP TABLE x; --"}))]},
        ),
        ("args missing required", {"tool_calls": [_call(tool, "{}")]}),
        ("args extra unknown", {"tool_calls": [_call(tool, json.dumps({arg: "X-1", "zzz": 1}))]}),
        ("args huge value", {"tool_calls": [_call(tool, json.dumps({arg: "A" * 1_000_000}))]}),
        ("args deeply nested", {"tool_calls": [_call(tool, '{"a":' * 3000 + "1" + "}" * 3000)]}),
        ("args nul byte", {"tool_calls": [_call(tool, json.dumps({arg: "X\x001"}))]}),
        ("unknown tool", {"tool_calls": [_call("teleport_user", good)]}),
        ("sql tool name", {"tool_calls": [_call("x; DROP TABLE y", good)]}),
        ("path tool name", {"tool_calls": [_call("../../etc/passwd", good)]}),
        ("empty tool name", {"tool_calls": [_call("", good)]}),
        ("null tool name", {"tool_calls": [_call(None, good)]}),
        ("numeric tool name", {"tool_calls": [_call(7, good)]}),
        ("function missing", {"tool_calls": [{"id": "c1", "type": "function"}]}),
        ("function not object", {"tool_calls": [{"id": "c1", "function": "get"}]}),
        ("call not object", {"tool_calls": ["get_it"]}),
        ("tool_calls not list", {"tool_calls": {"name": tool}}),
        ("tool_calls number", {"tool_calls": 5}),
        ("duplicate call ids", {"tool_calls": [_call(tool, good, "same"), _call(tool, good, "same")]}),
        ("null call id", {"tool_calls": [_call(tool, good, None)]}),
        ("hundred calls", {"tool_calls": [_call(tool, good, f"c{i}") for i in range(100)]}),
        ("content list", {"content": [{"type": "text", "text": "hi"}]}),
        ("content number", {"content": 42}),
        ("content none no calls", {"content": None}),
        ("empty string", _text("")),
        ("only whitespace", _text("  \n ")),
        ("text broken json", _text(tag('{"name": "' + tool + '", "arguments": {'))),
        ("text unclosed tag", _text("<tool_call>\n" + json.dumps({"name": tool, "arguments": {}}))),
        ("text stray close", _text("done</tool_call>")),
        ("text nested tags", _text(tag("<tool_call>" + json.dumps({"name": tool}) + "</tool_call>"))),
        ("text no name", _text(tag(json.dumps({"arguments": {arg: "X-1"}})))),
        ("text name not string", _text(tag(json.dumps({"name": ["x"], "arguments": {}})))),
        ("text args string", _text(tag(json.dumps({"name": tool, "arguments": "X-1"})))),
        ("text args list", _text(tag(json.dumps({"name": tool, "arguments": [1]})))),
        ("text payload list", _text(tag("[1, 2, 3]"))),
        ("text unknown tool", _text(tag(json.dumps({"name": "fly_to_moon", "arguments": {}})))),
        (
            "text markdown fence",
            _text("```json\n" + json.dumps({"name": tool, "arguments": {arg: "X"}}) + "\n```"),
        ),
        ("text huge", _text("blah " * 200_000)),
        ("text nul bytes", _text("\x00\x00" + tag(json.dumps({"name": tool, "arguments": {}})) + "\x00")),
        ("text single quotes", _text(tag("{'name': '" + tool + "', 'arguments': {}}"))),
        ("text trailing garbage", _text(tag(json.dumps({"name": tool, "arguments": {arg: "X"}}) + " }}}"))),
        ("text many tags", _text("<tool_call>" * 500)),
    ]


class Canned:
    """An agent that sends one given (malformed) message, then ends politely; or loops on it forever."""

    name = "test:canned"

    def __init__(self, message: dict, loop: bool = False):
        self.message, self.loop, self.turns = message, loop, 0

    async def complete(self, messages: list[dict], tools: list[dict], **kw: Any) -> dict:
        self.turns += 1
        if self.turns == 1 or self.loop:
            return message_from_openai(self.message)
        return {"role": "assistant", "content": "All done."}


def test_malformed_model_outputs_are_rejected_by_name_never_raised(airline) -> None:
    task = next(
        t
        for t in sample_tasks(airline.env, airline.path, airline.edges, TaskConfig(n_chains=12)).tasks
        if t.writes and t.gold_calls[0]["arguments"]
    )
    tool = task.gold_calls[0]["name"]
    arg = next(iter(task.gold_calls[0]["arguments"]))
    outputs = malformed_outputs(tool, arg)
    assert len(outputs) >= 50
    outputs.append(
        ("endless loop", {"tool_calls": [_call(tool, json.dumps(task.gold_calls[0]["arguments"]))]})
    )
    snapshot_before = airline.path.read_bytes()

    async def run_all() -> list:
        return [
            await run_episode(
                task,
                airline.env,
                airline.path,
                Canned(msg, loop=label == "endless loop"),
                ScriptedUser(task),
                max_agent_turns=6,
            )
            for label, msg in outputs
        ]

    trajectories = asyncio.run(run_all())
    reasons = {}
    for (label, _), traj in zip(outputs, trajectories, strict=True):
        verdict = judge(traj, task, airline.env, FunnelConfig())
        assert not verdict.kept, label
        reasons[label] = verdict.reason
    assert airline.path.read_bytes() == snapshot_before  # episodes ran on copies
    assert "arguments are not a JSON object" in reasons["args json list"]
    assert "not offered" in reasons["unknown tool"] and "not offered" in reasons["sql tool name"]
    assert "unparseable" in reasons["tool_calls not list"] and "unparseable" in reasons["text broken json"]
    assert "repeated" in reasons["endless loop"] or "did not end" in reasons["endless loop"]
