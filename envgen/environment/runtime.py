"""The one engine that executes tool programs on an episode's database.

Each episode works on its own in-memory SQLite copy of the domain snapshot (SQLite backup API), so no
episode can touch another's state or the snapshot. Each call runs inside a savepoint: a failing call is
rolled back and returns a structured error. All SQL is built from identifiers checked against the
environment's tables (and quoted) with values bound as parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envgen.catalog.json_schema import fits, stored, violation
from envgen.environment.programs import (
    Arg,
    Check,
    Column,
    Compute,
    Const,
    Delete,
    EnvironmentDoc,
    Expr,
    Insert,
    NewKey,
    Ref,
    Return,
    Select,
    Table,
    ToolProgram,
    Update,
)

SQL_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "INTEGER",
    "array": "TEXT",  # canonical JSON text
    "object": "TEXT",
}


class ToolError(Exception):
    """A call that cannot be carried out; becomes `{"error": {"type", "message"}}` for the agent."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class CallResult:
    ok: bool
    output: Any

    def as_content(self) -> str:
        """The tool message content the agent sees (JSON text)."""
        return json.dumps(self.output if self.ok else {"error": self.output}, sort_keys=True, default=str)


def content_is_error(content: str) -> bool:
    """Whether a tool message's content reports a failed call (as `CallResult.as_content` writes it);
    content that is not JSON counts as failed."""
    try:
        parsed = json.loads(content)
    except (TypeError, json.JSONDecodeError):
        return True
    return isinstance(parsed, dict) and "error" in parsed


def quote(ident: str) -> str:
    """Any name as one SQL identifier: double-quoted, inner quotes doubled, so camelCase, digits, dots,
    reserved words and unicode all work and no name can end the identifier and inject SQL. Only what SQLite
    cannot store in a name (empty, NUL) is refused, naming it."""
    if not ident or "\x00" in ident:
        raise ValueError(f"unusable SQL identifier {ident!r}")
    return '"' + ident.replace('"', '""') + '"'


def create_schema(conn: sqlite3.Connection, env: EnvironmentDoc) -> None:
    for t in env.tables:
        cols = ", ".join(
            f"{quote(c.name)} {SQL_TYPES[c.type]}{' PRIMARY KEY' if c.name == t.key else ''}"
            for c in t.columns
        )
        conn.execute(f"CREATE TABLE {quote(t.name)} ({cols})")


def state_hash(conn: sqlite3.Connection, env: EnvironmentDoc, tables: set[str] | None = None) -> str:
    """A canonical hash of every table's contents (or only of `tables`): same rows, same hash, whatever
    the insertion order."""
    h = hashlib.sha256()
    for t in sorted(env.tables, key=lambda t: t.name):
        if tables is not None and t.name not in tables:
            continue
        names = [c.name for c in t.columns]
        rows = conn.execute(f"SELECT {', '.join(map(quote, names))} FROM {quote(t.name)}").fetchall()
        canon = sorted(json.dumps(list(r), default=str) for r in rows)
        h.update(json.dumps([t.name, names, canon]).encode())
    return h.hexdigest()


def copy_database(source: sqlite3.Connection | Path) -> sqlite3.Connection:
    """A private in-memory copy (backup API) of a snapshot file or connection."""
    dst = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    if isinstance(source, Path | str):
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            src.backup(dst)
        finally:
            src.close()
    else:
        source.backup(dst)
    return dst


def db_value(column: Column | None, value: Any) -> Any:
    """A value as its column stores it: lists and records as canonical JSON text, the rest as they are."""
    return stored(value) if column is not None and column.structured and value is not None else value


def validate_arguments(tool: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """Parse (JSON text or dict) and check arguments against the tool's JSON Schema."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolError("invalid_arguments", f"arguments are not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise ToolError("invalid_arguments", "arguments are nested too deeply to parse") from None
    if not isinstance(arguments, dict):
        raise ToolError("invalid_arguments", "arguments must be a JSON object")
    props = tool["parameters"].get("properties", {})
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise ToolError("unexpected_argument", f"unknown arguments {unknown} for {tool['name']}")
    missing = [r for r in tool["parameters"].get("required", []) if r not in arguments]
    if missing:
        raise ToolError("missing_argument", f"missing required arguments {missing} for {tool['name']}")
    for k, v in arguments.items():
        if problem := violation(k, v, props[k]):
            kind = "invalid_value" if fits(v, props[k].get("type", "")) else "invalid_type"
            raise ToolError(kind, problem)
    return arguments


class Interpreter:
    """Runs one program's steps against a connection; bindings live only for the call."""

    def __init__(self, env: EnvironmentDoc, conn: sqlite3.Connection, args: dict[str, Any]):
        self.env, self.conn, self.args = env, conn, args
        self.bound: dict[str, Any] = {}

    def value(self, expr: Expr) -> Any:
        match expr:
            case Arg(arg=name):
                return self.args.get(name)
            case Const(const=v):
                return v
            case Ref(ref=path):
                bind, _, fieldname = path.partition(".")
                row = self.bound.get(bind)
                if not isinstance(row, dict):
                    raise ToolError("internal", f"reference {path!r} to an unbound row")
                return row.get(fieldname)
            case NewKey(new_key=table):
                return self.next_key(self.env.table(table))
            case Compute(compute=op, args=args):
                vals = [self.value(a) or 0 for a in args]
                result = vals[0]
                for v in vals[1:]:
                    result = {"add": result + v, "sub": result - v, "mul": result * v}[op]
                return round(result, 2) if isinstance(result, float) else result
        raise ToolError("internal", f"unknown expression {expr!r}")

    def next_key(self, table: Table) -> str | int:
        keys = self.conn.execute(f"SELECT {quote(table.key)} FROM {quote(table.name)}").fetchall()
        nums = [int(m.group()) for (k,) in keys if (m := re.search(r"\d+$", str(k)))]
        return table.key_value(max(nums, default=1000) + 1)

    def _where(self, table: Table, where: dict[str, Expr]) -> tuple[str, list[Any]]:
        if not where:
            return "", []
        parts, params = [], []
        for col, expr in where.items():
            v = self.value(expr)
            if v is None:  # an optional filter the caller did not give matches everything
                continue
            column = self._column(table, col)
            parts.append(f"{quote(column.name)} = ?")
            params.append(db_value(column, v))
        return (" WHERE " + " AND ".join(parts)) if parts else "", params

    @staticmethod
    def _column(table: Table, col: str) -> Column:
        found = table.column(col)
        if found is None:
            raise ToolError("internal", f"table {table.name} has no column {col!r}")
        return found

    def _rows(self, table: Table, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            row = dict(zip(names, r, strict=True))
            for c in table.columns:
                if c.type == "boolean" and row.get(c.name) is not None:
                    row[c.name] = bool(row[c.name])
                elif c.structured and isinstance(row.get(c.name), str):
                    row[c.name] = json.loads(row[c.name])
            out.append(row)
        return out

    def run(self, program: ToolProgram) -> Any:
        result: Any = None
        for step in program.steps:
            match step:
                case Select():
                    t = self.env.table(step.table)
                    clause, params = self._where(t, step.where)
                    sql = f"SELECT * FROM {quote(t.name)}{clause} ORDER BY {quote(t.key)}"
                    rows = self._rows(t, sql, params)
                    if step.require == "exists" and not rows:
                        raise ToolError("not_found", step.error)
                    if step.require == "absent" and rows:
                        raise ToolError("conflict", step.error)
                    self.bound[step.bind] = rows if step.many else (rows[0] if rows else None)
                case Insert():
                    t = self.env.table(step.table)
                    columns = [self._column(t, c) for c in step.values]
                    vals = {c.name: self.value(e) for c, e in zip(columns, step.values.values(), strict=True)}
                    cols = ", ".join(quote(c) for c in vals)
                    marks = ", ".join("?" for _ in vals)
                    stored_vals = [db_value(c, v) for c, v in zip(columns, vals.values(), strict=True)]
                    try:
                        self.conn.execute(
                            f"INSERT INTO {quote(t.name)} ({cols}) VALUES ({marks})", stored_vals
                        )
                    except sqlite3.IntegrityError as exc:
                        raise ToolError("conflict", str(exc)) from None
                    if step.bind:
                        self.bound[step.bind] = vals
                case Update():
                    t = self.env.table(step.table)
                    sets = {}
                    for c, e in step.set.items():
                        column = self._column(t, c)
                        if (v := self.value(e)) is not None:
                            sets[column.name] = db_value(column, v)
                    clause, params = self._where(t, step.where)
                    if sets:
                        assign = ", ".join(f"{quote(c)} = ?" for c in sets)
                        self.conn.execute(
                            f"UPDATE {quote(t.name)} SET {assign}{clause}", [*sets.values(), *params]
                        )
                case Delete():
                    t = self.env.table(step.table)
                    clause, params = self._where(t, step.where)
                    self.conn.execute(f"DELETE FROM {quote(t.name)}{clause}", params)
                case Check():
                    self._check(step)
                case Return():
                    result = self._return(step)
        return result

    def _check(self, step: Check) -> None:
        left = self.value(step.left)
        right = step.right if isinstance(step.right, list) else self.value(step.right)
        holds = {
            "eq": lambda: left == right,
            "ne": lambda: left != right,
            "in": lambda: left in right,
            "not_in": lambda: left not in right,
            "gt": lambda: left is not None and right is not None and left > right,
            "ge": lambda: left is not None and right is not None and left >= right,
            "lt": lambda: left is not None and right is not None and left < right,
            "le": lambda: left is not None and right is not None and left <= right,
        }[step.cmp]()
        if not holds:
            raise ToolError("precondition_failed", step.error)

    def _return(self, step: Return) -> Any:
        extra = {k: self.value(e) for k, e in step.extra.items()}
        if step.bind is None:
            return extra
        bound = self.bound.get(step.bind)

        def project(row: dict[str, Any]) -> dict[str, Any]:
            picked = {f: row.get(f) for f in step.fields} if step.fields else dict(row)
            return {**picked, **extra}

        if isinstance(bound, list):
            return [project(r) for r in bound]
        return project(bound) if bound is not None else extra


class Episode:
    """One agent episode's private database and the tools it can call."""

    def __init__(self, env: EnvironmentDoc, snapshot: sqlite3.Connection | Path):
        self.env = env
        self.conn = copy_database(snapshot)

    def call(self, name: str, arguments: dict[str, Any] | str) -> CallResult:
        tool = self.env.tool_schema(name)
        program = self.env.program(name)
        if tool is None or program is None:
            return CallResult(False, {"type": "unknown_tool", "message": f"no tool named {name!r}"})
        self.conn.execute("SAVEPOINT call")
        try:
            args = validate_arguments(tool, arguments)
            output = Interpreter(self.env, self.conn, args).run(program)
        except (ToolError, sqlite3.Error, TypeError) as exc:
            # TypeError: a program comparing or adding values of different types (a model-written check
            # such as "a" > 1) fails that call, never the episode.
            self.conn.execute("ROLLBACK TO call")
            self.conn.execute("RELEASE call")
            if isinstance(exc, ToolError):
                return CallResult(False, {"type": exc.kind, "message": exc.message})
            kind = "database_error" if isinstance(exc, sqlite3.Error) else "internal"
            return CallResult(False, {"type": kind, "message": str(exc)})
        self.conn.execute("RELEASE call")
        return CallResult(True, output)

    def state_hash(self, tables: set[str] | None = None) -> str:
        return state_hash(self.conn, self.env, tables)

    def rows(self, table: str) -> list[dict[str, Any]]:
        t = self.env.table(table)
        return Interpreter(self.env, self.conn, {})._rows(
            t, f"SELECT * FROM {quote(t.name)} ORDER BY {quote(t.key)}", []
        )

    def close(self) -> None:
        self.conn.close()
