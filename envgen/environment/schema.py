"""Programmatise a domain: derive its tables from the tools' inputs and outputs, and a program per tool.

Rules (documented in README's catalog conventions):
- an entity is named by its key `<entity>_id`; the first `*_id` field of a returned object is that
  object's key, other `*_id` fields are references (foreign keys);
- an entity's columns are the union of the fields its tools return and take;
- the tool's leading verb says what the program does: read one row, list rows, insert, update, delete;
- a write's single-value `status` enum in its returns is the status it sets (or, for inserts, the
  initial status), and an update refuses a row already in that status.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

from envgen.catalog.spec import ToolSpec, is_key, key_entity, key_prefix, snake_name
from envgen.environment.programs import (
    PLAIN_KEYWORDS,
    Arg,
    Check,
    Column,
    Const,
    Delete,
    Insert,
    NewKey,
    Ref,
    Return,
    Select,
    Table,
    ToolProgram,
    Update,
)

READ_VERBS = {"get", "list", "search", "find", "check", "lookup", "track", "view", "show", "calculate"}
INSERT_VERBS = {
    "create",
    "add",
    "book",
    "place",
    "register",
    "open",
    "schedule",
    "submit",
    "enroll",
    "subscribe",
    "issue",
    "request",
    "file",
    "make",
    "send",
    # what real catalogs call creating something (a post, a file, a follow, a copy)
    "post",
    "upload",
    "insert",
    "publish",
    "invite",
    "follow",
    "mkdir",
    "touch",
    "write",
    "save",
    "reserve",
    "order",
    "share",
    "like",
    "star",
    "comment",
    "reply",
    "join",
    "attach",
    "copy",
    "cp",
    "clone",
    "fork",
    "import",
    "append",
    "record",
}
UPDATE_VERBS = {
    "update",
    "change",
    "modify",
    "set",
    "cancel",
    "close",
    "suspend",
    "resume",
    "activate",
    "deactivate",
    "confirm",
    "approve",
    "reject",
    "pay",
    "assign",
    "upgrade",
    "downgrade",
    "refund",
    "reschedule",
    "block",
    "unblock",
    "complete",
    "mark",
    "transfer",
    "return",
    # what real catalogs call changing something in place
    "move",
    "mv",
    "rename",
    "edit",
    "patch",
    "put",
    "enable",
    "disable",
    "toggle",
    "archive",
    "unarchive",
    "restore",
    "pin",
    "unpin",
    "reset",
    "rate",
    "vote",
    "lock",
    "unlock",
    "mute",
    "unmute",
    "pause",
    "accept",
    "decline",
    "verify",
    "renew",
    "extend",
    "redeem",
}
DELETE_VERBS = {
    "delete",
    "remove",
    "rm",
    "rmdir",
    "unlink",
    "unfollow",
    "unsubscribe",
    "revoke",
    "clear",
    "erase",
    "purge",
    "destroy",
    "drop",
    "unstar",
    "unlike",
    "dismiss",
    "discard",
}
ALL_VERBS = READ_VERBS | INSERT_VERBS | UPDATE_VERBS | DELETE_VERBS
# Update verbs that switch something off: the flags they set are false.
UNDO_VERBS = {
    "unlock",
    "disable",
    "deactivate",
    "unpin",
    "unmute",
    "unblock",
    "unarchive",
    "pause",
    "suspend",
}


class ProgramError(ValueError):
    """A tool the rules cannot turn into a program; the message names the tool and why."""


@dataclass(frozen=True)
class ToolShape:
    """What the rules read off one tool: its action, entity key and the fields it touches.

    A `lookup` tool names no entity id (weather by city, a currency conversion, most public APIs): it
    gets a table of its own, keyed by a made-up `<tool noun>_id`, whose columns are its parameters and
    returned fields, so a read is a lookup of the seeded records matching its arguments and a create
    appends one. Lookup tools cannot update or delete (nothing says which record).
    """

    spec: ToolSpec
    action: str
    key: str
    lookup: bool = False
    natural: str = ""  # the entity a natural key (`path`, `username`) names; "" for `*_id` keys

    @property
    def entity(self) -> str:
        return self.natural or key_entity(self.key)


HTTP_ACTIONS = {"post": "insert", "put": "update", "patch": "update", "delete": "delete"}


# Write verbs a description may open with ("Creates a folder", "Delete a tweet"), kept to words that
# rarely open a read's description as nouns ("Returns the...", "Orders of a user", "Books by an author").
DESCRIPTION_VERBS = {
    "create", "add", "update", "change", "modify", "set", "delete", "remove", "cancel", "move", "rename",
    "edit", "upload", "post", "send", "publish", "insert", "follow", "unfollow", "erase", "purge", "destroy",
    "enable", "disable", "reset", "register", "subscribe", "unsubscribe", "submit", "assign", "approve",
    "reject", "activate", "deactivate", "write", "save", "append", "revoke",
}  # fmt: skip
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def leading_verb(spec: ToolSpec) -> str:
    """The verb a tool's name starts with, in any naming style (`create_user`, `createUser`,
    `CreateUser`, `create-user`, `mkdir`); when that word is no verb we know, a write verb opening its
    description ("Moves a file ..." -> `move`, see DESCRIPTION_VERBS), so a write is not taken for a read."""
    # A namespaced name (`open_weather__current_weather`, ToolBench's `<tool>__<api>`) is read from its
    # API part: the tool's name is no verb (`open_weather` does not open anything).
    words = _NAME_WORD.findall(spec.name.rsplit("__", 1)[-1])
    verb = words[0].lower() if words else ""
    if verb in ALL_VERBS:
        return verb
    first = (spec.description.split() or [""])[0].lower().strip(".,:;")
    for base in (first, first[:-1], first[:-2]):  # creates -> create, pushes -> push
        if base in DESCRIPTION_VERBS:
            return base
    return verb


def classify(spec: ToolSpec) -> str:
    """get | list | insert | update | delete, from the tool's leading verb (`leading_verb`), else from the
    HTTP method its source declared (POST inserts, PUT/PATCH update, DELETE deletes), else a read."""
    verb = leading_verb(spec)
    if verb in INSERT_VERBS:
        return "insert"
    if verb in UPDATE_VERBS:
        return "update"
    if verb in DELETE_VERBS:
        return "delete"
    if verb not in READ_VERBS and spec.http_method in HTTP_ACTIONS:
        return HTTP_ACTIONS[spec.http_method]
    return "list" if spec.returns_many else "get"


def object_key(spec: ToolSpec) -> str | None:
    """The key of the entity a tool is about: the returned object's first `*_id`, else a required one."""
    for name in spec.returned_object.get("properties", {}):
        if is_key(name):
            return name
    for name in spec.required:
        if is_key(name):
            return name
    return next((n for n in spec.properties if is_key(n)), None)


def lookup_entity(spec: ToolSpec) -> str:
    """The table a lookup tool reads: its name without a leading verb (`get_daily_forecast`,
    `getDailyForecast` -> `daily_forecast`), in one identifier."""
    words = [w for w in snake_name(spec.name).split("_") if w]
    if len(words) > 1 and words[0] in ALL_VERBS and words[1][:1].isalpha():  # `get_2fa_code` keeps its verb
        words = words[1:]
    entity = "_".join(words)
    if len(entity) > 48:  # long names that share a prefix must not share a table
        entity = f"{entity[:39].rstrip('_')}_{hashlib.sha1(entity.encode()).hexdigest()[:8]}"
    return entity


# Parameters that name a record without being an `*_id` (snake form), and the entity they name: tools that
# take the same one share its table (a file system's tools all act on files by `path`).
NATURAL_KEYS = {
    "path": "file", "file_path": "file", "filepath": "file", "filename": "file", "file_name": "file",
    "username": "account", "user_name": "account", "handle": "account", "screen_name": "account",
    "email": "contact", "url": "page", "slug": "page", "symbol": "security", "ticker": "security",
    "sku": "product", "isbn": "book",
}  # fmt: skip


def natural_key(spec: ToolSpec) -> str | None:
    """The first required text parameter that names a record by what users call it (NATURAL_KEYS)."""
    return next(
        (
            n
            for n in spec.required
            if snake_name(n) in NATURAL_KEYS and spec.properties.get(n, {}).get("type") == "string"
        ),
        None,
    )


def natural_apart(shapes: list[ToolShape]) -> list[ToolShape]:
    """Keep tables of different keys apart: a natural-key entity is renamed after its key (`file` ->
    `path`) where an `*_id` entity of that name exists (`file_id`), and a lookup tool whose made-up table
    would take a natural entity's name (`copy_file` -> `file`) gets a table named after the whole tool."""
    by_id = {s.entity for s in shapes if not s.natural and not s.lookup}
    shapes = [replace(s, natural=snake_name(s.key)) if s.natural in by_id else s for s in shapes]
    natural = {s.entity for s in shapes if s.natural}
    return [
        replace(s, key=f"{snake_name(s.spec.name)}_id") if s.lookup and s.entity in natural else s
        for s in shapes
    ]


def shape(spec: ToolSpec) -> ToolShape:
    action = classify(spec)
    key = object_key(spec)
    if key is not None:
        if action == "update" and key not in spec.properties:
            # An "update" that returns the key of a record it was not told about made that record:
            # `return_item(order_id, ...) -> {return_id, ...}` starts a return.
            action = "insert"
        return ToolShape(spec, action, key)
    natural = natural_key(spec)
    if natural is not None:
        return ToolShape(spec, action, natural, natural=NATURAL_KEYS[snake_name(natural)])
    if action in ("update", "delete"):
        raise ProgramError(
            f"tool {spec.name!r}: an {action} with no `*_id` or natural-key parameter cannot say which "
            "record it changes"
        )
    return ToolShape(spec, action, f"{lookup_entity(spec)}_id", lookup=True)


def _single_status(spec: ToolSpec) -> str | None:
    status = spec.returned_object.get("properties", {}).get("status", {})
    enum = status.get("enum") or []
    return enum[0] if len(enum) == 1 else None


def _merge_column(cols: dict[str, dict[str, Any]], name: str, schema: dict[str, Any]) -> None:
    """Add or widen a column: the first type wins, enums are unioned keeping the first order seen. Names
    that differ only in case are one column (SQLite's names are case-insensitive), spelt as first seen."""
    name = next((c for c in cols if c.casefold() == name.casefold()), name)
    col = cols.setdefault(
        name, {"type": schema.get("type", "string"), "description": "", "enum": None, "json_schema": None}
    )
    if not col["description"]:
        col["description"] = schema.get("description", "")
    if col["json_schema"] is None and set(schema) - PLAIN_KEYWORDS and schema.get("type") == col["type"]:
        col["json_schema"] = schema
    if schema.get("enum") and col["type"] == "string":
        merged = list(col["enum"] or [])
        merged += [v for v in schema["enum"] if v not in merged]
        col["enum"] = merged


def _key_types(shapes: list[ToolShape]) -> dict[str, str]:
    """`*_id` names that some tool declares as integers (parameter or returned field)."""
    out: dict[str, str] = {}
    for s in shapes:
        fields = {**s.spec.returned_object.get("properties", {}), **s.spec.properties}
        for name, schema in fields.items():
            if is_key(name) and isinstance(schema, dict) and schema.get("type") == "integer":
                out[name] = "integer"
    return out


def derive_tables(shapes: list[ToolShape]) -> list[Table]:
    """Tables for every entity the tools mention, keys first, references marked. A key is a string
    (`USR-1001`) unless a tool declares it an integer, which then holds for every table that has it."""
    key_types = _key_types(shapes)
    natural = {s.entity: s.key for s in shapes if s.natural}
    columns: dict[str, dict[str, dict[str, Any]]] = {}
    for s in shapes:
        cols = columns.setdefault(s.entity, {})
        _merge_column(
            cols, s.key, {"type": key_types.get(s.key, "string"), "description": f"Key of the {s.entity}."}
        )
        returned = s.spec.returned_object.get("properties", {})
        if s.action != "delete":
            for name, schema in returned.items():
                _merge_column(cols, name, schema)
        for name, schema in s.spec.properties.items():
            if s.action in ("get", "list") and not (is_key(name) or name in returned or s.lookup):
                continue  # a read's option (say `include_history`) is not a column
            _merge_column(cols, name, schema)
        for name in [*returned, *s.spec.properties]:
            if is_key(name) and name != s.key:
                ref = columns.setdefault(key_entity(name), {})
                key_schema = {
                    "type": key_types.get(name, "string"),
                    "description": f"Key of the {key_entity(name)}.",
                }
                _merge_column(ref, name, key_schema)
    tables = []
    for entity, cols in sorted(columns.items()):
        # a natural key, else the entity's `*_id` column (merged first, whatever its style)
        key = natural.get(entity) or next(c for c in cols if is_key(c) and key_entity(c) == entity)
        ordered = [key, *[c for c in cols if c != key]]
        tables.append(
            Table(
                name=entity,
                key=key,
                key_prefix=key_prefix(entity),
                natural_key=entity in natural,
                columns=[
                    Column(
                        name=c,
                        type=cols[c]["type"],
                        description=cols[c]["description"],
                        enum=cols[c]["enum"],
                        references=key_entity(c)
                        if is_key(c) and c != key and key_entity(c) in columns
                        else None,
                        json_schema=cols[c]["json_schema"],
                    )
                    for c in ordered
                ],
            )
        )
    return tables


def _reference_checks(s: ToolShape, tables: dict[str, Table]) -> list[Select]:
    """Writes must not point at rows that do not exist."""
    return [
        Select(
            table=key_entity(name),
            where={name: Arg(arg=name)},
            bind=f"ref_{key_entity(name)}",
            require="exists",
            error=f"{key_entity(name).replace('_', ' ')} not found",
        )
        for name in s.spec.properties
        if is_key(name) and name != s.key and key_entity(name) in tables
    ]


def derive_program(s: ToolShape, tables: dict[str, Table]) -> ToolProgram:
    """One tool's program in the operation language, following the rules in the module docstring."""
    table = tables[s.entity]
    returned = [f for f in s.spec.returned_object.get("properties", {}) if table.column(f)]
    params = list(s.spec.properties)
    not_found = f"{s.entity.replace('_', ' ')} not found"
    filters = {p: Arg(arg=p) for p in params if table.column(p) and (is_key(p) or p in returned or s.lookup)}
    if s.action in ("get", "list"):
        steps: list[Any] = [
            Select(
                table=s.entity,
                where=filters,
                bind="rows" if s.action == "list" else "row",
                many=s.action == "list",
                require="exists" if s.action == "get" else None,
                error=not_found,
            ),
            Return(bind="rows" if s.action == "list" else "row", fields=returned),
        ]
        return ToolProgram(tool=s.spec.name, kind="read", action=s.action, entity=s.entity, steps=steps)
    if s.key not in params and s.action != "insert":
        article = "an" if s.action[0] in "aeiou" else "a"
        raise ProgramError(
            f"tool {s.spec.name!r}: {article} {s.action} needs the key {s.key!r} as a parameter"
        )
    status = _single_status(s.spec)
    by_key = {s.key: Arg(arg=s.key)}
    steps = list(_reference_checks(s, tables))
    if s.action != "insert" and s.key not in s.spec.required:
        # An omitted filter matches every row (that is what optional read filters are for), so a write
        # whose spec leaves its key optional must refuse to run without one.
        steps.insert(
            0, Check(left=Arg(arg=s.key), cmp="ne", right=Const(const=None), error=f"{s.key} is required")
        )
    if s.action == "insert":
        values = {p: Arg(arg=p) for p in params if table.column(p) and p != s.key}
        values[s.key] = Arg(arg=s.key) if s.natural else NewKey(new_key=s.entity)
        if status and "status" not in values and table.column("status"):
            values["status"] = Const(const=status)
        steps += [Insert(table=s.entity, values=values, bind="row"), Return(bind="row", fields=returned)]
    elif s.action == "update":
        sets = {p: Arg(arg=p) for p in params if table.column(p) and p != s.key}
        if status and table.column("status"):
            sets["status"] = Const(const=status)
        if not sets:
            # `lockDoor(deviceId) -> {locked}`, `disableAutomation(id) -> {enabled}`: the verb sets the
            # returned flags, true unless it undoes something.
            flag = leading_verb(s.spec) not in UNDO_VERBS
            sets = {
                f: Const(const=flag) for f in returned if f != s.key and table.column(f).type == "boolean"
            }
        if not sets:
            raise ProgramError(f"tool {s.spec.name!r}: an update that sets no column")
        steps.append(Select(table=s.entity, where=by_key, bind="row", require="exists", error=not_found))
        if status and table.column("status"):
            steps.append(
                Check(
                    left=Ref(ref="row.status"),
                    cmp="ne",
                    right=Const(const=status),
                    error=f"{s.entity.replace('_', ' ')} is already {status}",
                )
            )
        steps += [
            Update(table=s.entity, where=by_key, set=sets),
            Select(table=s.entity, where=by_key, bind="row"),
            Return(bind="row", fields=returned),
        ]
    else:
        steps += [
            Select(table=s.entity, where=by_key, bind="row", require="exists", error=not_found),
            Delete(table=s.entity, where=by_key),
            Return(extra={s.key: Arg(arg=s.key), "deleted": Const(const=True)}),
        ]
    return ToolProgram(tool=s.spec.name, kind="write", action=s.action, entity=s.entity, steps=steps)
