"""Fill a tool's arguments from the episode's current state and from earlier calls' outputs.

Used to prove each tool runs when an environment is built, and to sample task chains: arguments that name
existing rows come from the database (or from what an earlier call returned), new values come from the
same faker rules that seeded the database, so every sampled call is meant to succeed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from envgen.catalog.spec import is_key, key_entity
from envgen.environment.programs import PLAIN_KEYWORDS, Check, Column, Const, EnvironmentDoc, ToolProgram
from envgen.environment.runtime import Episode
from envgen.environment.seed import fake_value


@dataclass
class ChainContext:
    """Values earlier calls returned, by field name: a single row's values are known, a list's are choices."""

    known: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, list[Any]] = field(default_factory=dict)

    def absorb(self, output: Any) -> None:
        if isinstance(output, dict):
            self.known.update({k: v for k, v in output.items() if v is not None})
        elif isinstance(output, list) and output:
            for row in output:
                if isinstance(row, dict):
                    for k, v in row.items():
                        if v is not None:
                            self.choices.setdefault(k, []).append(v)


@dataclass
class SampledCall:
    name: str
    arguments: dict[str, Any]
    derived: set[str]  # argument names whose values the agent can read off earlier outputs


def _blocked_status(program: ToolProgram) -> Any:
    for step in program.steps:
        if isinstance(step, Check) and step.cmp == "ne" and isinstance(step.right, Const):
            return step.right.const
    return None


def _anchor(episode: Episode, program: ToolProgram, ctx: ChainContext, rng: random.Random) -> dict | None:
    """The existing row a read, update or delete is about: one an earlier call named, else a random one."""
    table = episode.env.table(program.entity)
    rows = episode.rows(table.name)
    blocked = _blocked_status(program)
    if blocked is not None:
        rows = [r for r in rows if r.get("status") != blocked]
    if not rows:
        return None
    known = ctx.known.get(table.key)
    if known is not None:
        match = [r for r in rows if r[table.key] == known]
        if match:
            return match[0]
    listed = [r for r in rows if r[table.key] in ctx.choices.get(table.key, [])]
    return rng.choice(listed or rows)


def sample_call(
    episode: Episode, tool: str, ctx: ChainContext, rng: random.Random, fake: Faker
) -> SampledCall | None:
    """Arguments for one call of `tool` in the current state, or None when the state offers none."""
    env: EnvironmentDoc = episode.env
    program = env.program(tool)
    schema = env.tool_schema(tool)
    if program is None or schema is None:
        return None
    table = env.table(program.entity)
    props: dict[str, dict[str, Any]] = schema["parameters"].get("properties", {})
    required = set(schema["parameters"].get("required", []))
    anchor = None if program.action == "insert" else _anchor(episode, program, ctx, rng)
    if program.action in ("get", "update", "delete") and anchor is None:
        return None
    args: dict[str, Any] = {}
    derived: set[str] = set()
    for name, pschema in props.items():
        optional_read = program.kind == "read" and name not in required
        if optional_read and rng.random() < 0.5:
            continue
        col = table.column(name)
        if name in ctx.known and (is_key(name) or program.kind == "read"):
            args[name] = ctx.known[name]
            derived.add(name)
        elif anchor is not None and name in anchor and (program.kind == "read" or name == table.key):
            args[name] = anchor[name]
        elif is_key(name) and key_entity(name) in {t.name for t in env.tables}:
            ref_rows = episode.rows(key_entity(name))
            picks = [v for v in ctx.choices.get(name, []) if v in {r[name] for r in ref_rows}]
            if not (picks or ref_rows):
                return None
            args[name] = rng.choice(picks or [r[name] for r in ref_rows])
        else:
            # The tool's own enum wins over the column's (a column's enum is the union over its tools);
            # a changed row gets a value other than its current one.
            enum = pschema.get("enum") or (col.enum if col is not None else None)
            if enum:
                fresh = [v for v in enum if anchor is None or v != anchor.get(name)]
                args[name] = rng.choice(fresh or enum)
            else:
                # The tool's own schema wins over the column's too (a returned list of channels may not say
                # which channels this tool takes).
                own = pschema if set(pschema) - PLAIN_KEYWORDS else None
                column = Column(
                    name=name,
                    type=pschema.get("type", "string"),
                    description=pschema.get("description") or (col.description if col is not None else ""),
                    json_schema=own or (col.json_schema if col is not None else None),
                )
                args[name] = fake_value(column, fake, rng)
        if pschema.get("type") == "integer" and isinstance(args[name], float):
            args[name] = int(args[name])
    return SampledCall(tool, args, derived)
