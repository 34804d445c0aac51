"""A user's API as it is written: lists and records as arguments, camelCase keys, verbs that create or
switch something, all stored, seeded and checked by the one engine."""

import random
from contextlib import contextmanager

from envgen.catalog.json_schema import violation
from envgen.catalog.spec import ToolSpec, is_key, key_entity
from envgen.environment.arguments import ChainContext, sample_call
from envgen.environment.build import build_environment
from envgen.environment.runtime import Episode
from envgen.environment.seed import seeded_faker

S = {"type": "string"}
ACTIONS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "deviceId": S,
            "command": {"type": "string", "enum": ["on", "off"]},
            "level": {"type": "integer", "minimum": 0, "maximum": 5},
        },
        "required": ["deviceId", "command"],
    },
}
TRIGGER = {
    "type": "object",
    "properties": {"at": {"type": "string", "format": "date-time"}},
    "required": ["at"],
}


def _spec(
    name: str, description: str, props: dict, required: list[str], returns: dict | None = None
) -> ToolSpec:
    params = {"type": "object", "properties": props, "required": required}
    return ToolSpec(name, description, params, returns or {}, "openai-tools", "test")


def _obj(**props) -> dict:
    return {"type": "object", "properties": props}


SCENES = [
    _spec(
        "createScene",
        "Create a scene.",
        {"name": S, "actions": ACTIONS, "trigger": TRIGGER},
        ["name", "actions"],
        _obj(sceneId=S, name=S),
    ),
    _spec(
        "getScene",
        "Show a scene.",
        {"sceneId": S},
        ["sceneId"],
        _obj(sceneId=S, name=S, actions=ACTIONS, trigger=TRIGGER),
    ),
    _spec("listScenes", "List scenes.", {}, [], {"type": "array", "items": _obj(sceneId=S, name=S)}),
    _spec("deleteScene", "Delete a scene.", {"sceneId": S}, ["sceneId"], _obj(deleted={"type": "boolean"})),
    _spec(
        "lockScene",
        "Lock a scene against edits.",
        {"sceneId": S},
        ["sceneId"],
        _obj(sceneId=S, locked={"type": "boolean"}),
    ),
    _spec(
        "unlockScene",
        "Unlock a scene.",
        {"sceneId": S},
        ["sceneId"],
        _obj(sceneId=S, locked={"type": "boolean"}),
    ),
]


@contextmanager
def _episode(domain: str, name: str, specs: list[ToolSpec]):
    """A built environment and an episode on it, closed afterwards."""
    env, snapshot, report = build_environment(domain, name, specs)
    ep = Episode(env, snapshot)
    try:
        yield env, ep, report
    finally:
        ep.close()


def test_camel_case_keys_name_their_entity():
    assert [is_key(n) for n in ("tweetId", "deviceID", "order_id", "paid", "GUID", "android", "id")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert [key_entity(n) for n in ("tweetId", "sourceUserId", "order_id")] == [
        "tweet",
        "source_user",
        "order",
    ]


def test_lists_and_records_round_trip_and_bad_ones_are_refused_by_part():
    with _episode("home", "home", SCENES) as (env, ep, report):
        assert sorted(t["name"] for t in env.tools) == sorted(s.name for s in SCENES), report
        scene = env.table("scene")
        assert scene.key == "sceneId" and scene.column("actions").type == "array"
        seeded = ep.rows("scene")[0]  # seeded lists and records satisfy the tool's own schema
        assert violation("actions", seeded["actions"], ACTIONS) is None
        assert violation("trigger", seeded["trigger"], TRIGGER) is None
        actions = [
            {"deviceId": "DEV-1", "command": "on", "level": 3},
            {"deviceId": "DEV-2", "command": "off"},
        ]
        made = ep.call(
            "createScene", {"name": "Evening", "actions": actions, "trigger": {"at": "2026-01-02T19:00:00"}}
        )
        assert made.ok, made.output
        got = ep.call("getScene", {"sceneId": made.output["sceneId"]})
        assert (
            got.ok
            and got.output["actions"] == actions
            and got.output["trigger"] == {"at": "2026-01-02T19:00:00"}
        )
        bad = ep.call("createScene", {"name": "x", "actions": [{"deviceId": "D", "command": "dim"}]})
        assert not bad.ok and bad.output["type"] == "invalid_value"
        assert "'actions[0].command' must be one of ['on', 'off']" in bad.output["message"]
        assert ep.call("createScene", {"name": "x", "actions": []}).output["type"] == "invalid_value"
        assert ep.call("createScene", {"name": "x", "actions": "on"}).output["type"] == "invalid_type"


def test_verbs_that_switch_a_flag_set_it_and_a_camel_case_delete_deletes():
    with _episode("home", "home", SCENES) as (env, ep, _):
        key = ep.rows("scene")[0]["sceneId"]
        assert ep.call("lockScene", {"sceneId": key}).output["locked"] is True
        assert ep.call("unlockScene", {"sceneId": key}).output["locked"] is False
        assert ep.call("deleteScene", {"sceneId": key}).ok
        assert ep.call("getScene", {"sceneId": key}).output["type"] == "not_found"


def test_an_update_verb_that_returns_a_new_key_creates_that_record():
    """`return_item(order_id, ...) -> {return_id}` starts a return: an insert, not an update of orders."""
    integer = {"type": "integer"}
    specs = [
        _spec(
            "get_order",
            "Get an order.",
            {"order_id": integer},
            ["order_id"],
            _obj(order_id=integer, total={"type": "number"}),
        ),
        _spec(
            "return_item",
            "Start a return.",
            {"order_id": integer, "reason": S},
            ["order_id", "reason"],
            _obj(return_id=integer, order_id=integer, status={"type": "string", "enum": ["requested"]}),
        ),
    ]
    with _episode("shop", "shop", specs) as (env, ep, _):
        assert env.program("return_item").action == "insert"
        made = ep.call("return_item", {"order_id": 1001, "reason": "damaged"})
        assert made.ok and made.output["status"] == "requested" and isinstance(made.output["return_id"], int)
        assert ep.call("return_item", {"order_id": 999999, "reason": "x"}).output["type"] == "not_found"


def test_sampled_arguments_follow_the_tools_own_schema():
    """Task chains sample lists and records that the tool accepts (enum items, ranges, formats)."""
    with _episode("home", "home", SCENES) as (env, ep, _):
        rng, fake = random.Random(3), seeded_faker(3)
        for _ in range(20):
            call = sample_call(ep, "createScene", ChainContext(), rng, fake)
            assert call is not None and ep.call("createScene", call.arguments).ok, call.arguments


def test_tools_that_name_records_by_path_share_one_table_of_files():
    """A file system has no ids: its tools act on files by `path`, so they share a `file` table keyed by
    it, a write creates the path it is given, and a read or delete finds it."""
    path = {"type": "string", "description": "Path of the file."}
    file_row = _obj(path=path, size={"type": "integer"})
    specs = [
        _spec(
            "write_file",
            "Create a file with content.",
            {"path": path, "content": S},
            ["path", "content"],
            file_row,
        ),
        _spec("get_file_info", "Metadata of a file.", {"path": path}, ["path"], file_row),
        _spec("delete_file", "Delete a file.", {"path": path}, ["path"], _obj(deleted={"type": "boolean"})),
        _spec(
            "list_allowed_directories",
            "Directories this server may access.",
            {},
            [],
            {"type": "array", "items": _obj(path=path)},
        ),
    ]
    with _episode("files", "files", specs) as (env, ep, report):
        assert not report.refused
        files = env.table("file")
        assert files.key == "path" and files.natural_key
        assert {env.program(t).entity for t in ("write_file", "get_file_info", "delete_file")} == {"file"}
        seeded = [r["path"] for r in ep.rows("file")]
        assert len(set(seeded)) == len(seeded) and all(p.startswith("/") for p in seeded)  # look like paths
        assert ep.call("write_file", {"path": "/notes/todo.txt", "content": "milk"}).ok
        assert (
            ep.call("write_file", {"path": "/notes/todo.txt", "content": "eggs"}).output["type"] == "conflict"
        )
        assert ep.call("get_file_info", {"path": "/notes/todo.txt"}).output["path"] == "/notes/todo.txt"
        assert ep.call("delete_file", {"path": "/notes/todo.txt"}).ok
        assert ep.call("get_file_info", {"path": "/notes/todo.txt"}).output["type"] == "not_found"
