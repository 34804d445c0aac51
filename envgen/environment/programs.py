"""The typed operation language tool programs are written in, and the environment document.

Tool programs are data, not code: a list of steps (select / insert / update / delete / check / return)
whose values are small expressions (an argument, a constant, a field of an earlier step, a fresh key, a
computed number). Pydantic validates every program against this grammar and against the environment's
tables before use, so a program an LLM proposes is checked exactly like one our rules derived, and
nothing anyone writes is ever executed as Python or as raw SQL.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arg(_Strict):
    """The value of a tool argument."""

    arg: str


class Const(_Strict):
    const: str | int | float | bool | None


class Ref(_Strict):
    """A field of a row bound by an earlier step: `"order.status"`."""

    ref: str


class NewKey(_Strict):
    """The next key of a table (prefix + next number), deterministic given the state."""

    new_key: str


class Compute(_Strict):
    """Arithmetic over other expressions, for computed fields such as totals."""

    compute: Literal["add", "sub", "mul"]
    args: list[Expr]


Expr = Arg | Const | Ref | NewKey | Compute
Compute.model_rebuild()

Comparison = Literal["eq", "ne", "in", "not_in", "gt", "ge", "lt", "le"]


class Select(_Strict):
    op: Literal["select"] = "select"
    table: str
    where: dict[str, Expr] = Field(default_factory=dict)
    bind: str
    many: bool = False
    require: Literal["exists", "absent"] | None = None
    error: str = "not found"


class Insert(_Strict):
    op: Literal["insert"] = "insert"
    table: str
    values: dict[str, Expr]
    bind: str | None = None


class Update(_Strict):
    op: Literal["update"] = "update"
    table: str
    where: dict[str, Expr]
    set: dict[str, Expr]


class Delete(_Strict):
    op: Literal["delete"] = "delete"
    table: str
    where: dict[str, Expr]


class Check(_Strict):
    """A precondition; when it does not hold the call fails with `error` and changes nothing."""

    op: Literal["check"] = "check"
    left: Expr
    cmp: Comparison
    right: Expr | list[str | int | float | bool]
    error: str


class Return(_Strict):
    """The call's result: fields of a bound row (or of each row of a bound list), plus extra values."""

    op: Literal["return"] = "return"
    bind: str | None = None
    fields: list[str] = Field(default_factory=list)
    extra: dict[str, Expr] = Field(default_factory=dict)


Step = Annotated[Select | Insert | Update | Delete | Check | Return, Field(discriminator="op")]


class ToolProgram(_Strict):
    tool: str
    kind: Literal["read", "write"]
    action: Literal["get", "list", "insert", "update", "delete"]
    entity: str
    steps: list[Step]


# What a column records of a field without its JSON Schema; a field that says more keeps the schema.
PLAIN_KEYWORDS = {"type", "description", "enum", "default"}


class Column(_Strict):
    name: str
    # A list or a record is stored as canonical JSON text (`json_schema.stored`) and read back as JSON.
    type: Literal["string", "integer", "number", "boolean", "array", "object"]
    description: str = ""
    enum: list[str] | None = None
    references: str | None = None
    # The tool's JSON Schema for the field where it says more than the type (what a list holds, a record's
    # fields, a format, a range): seeded values and sampled arguments follow it.
    json_schema: dict[str, Any] | None = None

    @property
    def structured(self) -> bool:
        return self.type in ("array", "object")


class Table(_Strict):
    name: str
    key: str
    key_prefix: str
    columns: list[Column]
    # Keyed by what the user names the record with (a file's `path`, an account's `username`), not by a
    # made-up id: seeded keys look like the field, and a create takes the key it is given.
    natural_key: bool = False

    def column(self, name: str) -> Column | None:
        """The column of that name; SQLite names are case-insensitive, so `pageSize` finds `pagesize`."""
        exact = next((c for c in self.columns if c.name == name), None)
        return exact or next((c for c in self.columns if c.name.casefold() == name.casefold()), None)

    def key_value(self, number: int) -> str | int:
        """The key of the `number`-th record, typed like the key: `1001` for an integer id (an API whose
        `user_id` is an integer must get integers), else the catalog-style `USR-1001`."""
        key = self.column(self.key)
        return number if key is not None and key.type == "integer" else f"{self.key_prefix}{number}"


class EnvironmentDoc(_Strict):
    """A domain environment: tables, tools (as offered to agents, with returns), programs, seed recipe."""

    domain: str
    name: str
    policy: str
    tables: list[Table]
    tools: list[dict[str, Any]]
    programs: list[ToolProgram]
    seed: int
    rows_per_table: int

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"environment {self.domain}: no table {name!r}")

    def program(self, tool: str) -> ToolProgram | None:
        return next((p for p in self.programs if p.tool == tool), None)

    def openai_tools(self) -> list[dict[str, Any]]:
        return [
            {"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters")}}
            for t in self.tools
        ]

    def tool_schema(self, tool: str) -> dict[str, Any] | None:
        return next((t for t in self.tools if t["name"] == tool), None)


def _expr_problem(expr: Any, params: set[str], bound: set[str], tables: set[str]) -> str | None:
    match expr:
        case Arg():
            return None if expr.arg in params else f"argument {expr.arg!r} is not a parameter of the tool"
        case Ref():
            name = expr.ref.split(".", 1)[0]
            return None if name in bound else f"reference {expr.ref!r} to a row no earlier step binds"
        case NewKey():
            return None if expr.new_key in tables else f"new key for unknown table {expr.new_key!r}"
        case Compute():
            return next((p for a in expr.args if (p := _expr_problem(a, params, bound, tables))), None)
    return None


def program_problem(env: EnvironmentDoc, program: ToolProgram) -> str | None:
    """Why a program cannot run against the environment's tables and its tool's parameters, else None.

    Probes only exercise the paths a sampled call takes; this walks every step, so a program (ours or a
    model's) that names a missing table, column, argument or bound row is refused before it is run.
    """
    schema = env.tool_schema(program.tool)
    if schema is None:
        return f"program for unknown tool {program.tool!r}"
    params = set(schema.get("parameters", {}).get("properties", {}))
    tables = {t.name: t for t in env.tables}
    bound: set[str] = set()
    for k, step in enumerate(program.steps):
        where = f"step {k} ({step.op})"
        exprs: list[Any] = []
        if isinstance(step, Select | Insert | Update | Delete):
            table = tables.get(step.table)
            if table is None:
                return f"{where}: unknown table {step.table!r}"
            cols = {
                **getattr(step, "where", {}),
                **getattr(step, "values", {}),
                **getattr(step, "set", {}),
            }
            missing = [c for c in cols if table.column(c) is None]
            if missing:
                return f"{where}: table {table.name!r} has no columns {missing}"
            exprs = list(cols.values())
        elif isinstance(step, Check):
            exprs = [step.left] + ([] if isinstance(step.right, list) else [step.right])
        else:
            exprs = list(step.extra.values())
            if step.bind is not None and step.bind not in bound:
                return f"{where}: returns {step.bind!r}, which no earlier step binds"
        for e in exprs:
            if problem := _expr_problem(e, params, bound, set(tables)):
                return f"{where}: {problem}"
        if getattr(step, "bind", None) and not isinstance(step, Return):
            bound.add(step.bind)
    return None
