"""Optional: a language model proposes a domain's tables and tool programs; they must earn their place.

Our rules (envgen.environment.schema) only read names and verbs; a model can read descriptions ("fails if the
order has shipped") and write the checks and computed fields they imply. Its proposal is parsed against the
operation language (pydantic, so nothing it writes is ever executed as code), checked statically, and probed
on a seeded database exactly like the rule draft (`envgen.environment.build.prove`). The proposal is used when
it makes at least as many tools run as the rules do; otherwise the rule draft stays, and the choice and its
reason are recorded in the report either way.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from pydantic import ValidationError

from envgen.catalog.spec import ToolSpec, key_prefix
from envgen.environment.build import BuildReport, build_environment, environment_doc, prove, tool_entry
from envgen.environment.programs import EnvironmentDoc, Table, ToolProgram
from envgen.llm.backends import ChatBackend

_PROMPT = """You design the database behind a set of API tools, and one program per tool that implements it.

Tools (OpenAI function format, plus what each returns):
{tools}

Answer with one JSON object {{"tables": [...], "programs": [...]}} and nothing else.
- Each table follows this JSON Schema: {table_schema}
  One table per entity, keyed by `<entity>_id`; a column that holds another entity's key names it in
  `references`; column types are string, integer, number or boolean; categorical strings list an `enum`.
- Each program follows this JSON Schema: {program_schema}
  Exactly one program per tool, `tool` = the tool name. Reads select rows and return them; writes insert,
  update or delete and return the changed row. Use `check` steps for the preconditions the descriptions
  state, and fail with a clear `error` on unknown ids. Expressions: {{"arg": name}} is an argument,
  {{"const": value}} a constant, {{"ref": "bind.column"}} a column of a row bound earlier,
  {{"new_key": table}} a fresh key, {{"compute": "add"|"sub"|"mul", "args": [...]}} arithmetic.

Example program (for one of these tools):
{example}
"""


def proposal_prompt(specs: list[ToolSpec], example: ToolProgram | None) -> str:
    tools = [tool_entry(s) for s in specs]
    return _PROMPT.format(
        tools=json.dumps(tools, indent=1),
        table_schema=json.dumps(Table.model_json_schema()),
        program_schema=json.dumps(ToolProgram.model_json_schema()),
        example=example.model_dump_json(exclude_defaults=True) if example else "(none)",
    )


def _json_object(text: str) -> Any:
    """The outermost JSON object in a reply (code fences and chatter around it are ignored)."""
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        raise ValueError("the reply holds no JSON object")
    try:
        return json.loads(match.group())
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply's JSON does not parse: {exc.msg} at char {exc.pos}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"


def parse_proposal(
    text: str, domain: str, name: str, specs: list[ToolSpec], seed: int, rows: int, report: BuildReport
) -> EnvironmentDoc:
    """The proposed environment; tools whose program is missing or malformed are refused in `report`.

    Raises ValueError (with the reason) when the reply is not a usable proposal at all.
    """
    doc = _json_object(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), list):
        raise ValueError("the reply is not an object with a `tables` list")
    tables = []
    for k, raw in enumerate(doc["tables"]):
        if isinstance(raw, dict) and "name" in raw:
            raw = {"key_prefix": key_prefix(str(raw["name"])), **raw}
        try:
            tables.append(Table.model_validate(raw))
        except ValidationError as exc:
            raise ValueError(f"table #{k}: {_first_error(exc)}") from None
    tool_names = {s.name for s in specs}
    programs: dict[str, ToolProgram] = {}
    raw_programs = doc.get("programs") or []
    if not isinstance(raw_programs, list):
        raise ValueError("`programs` is not a list")
    for raw in raw_programs:
        tool = raw.get("tool") if isinstance(raw, dict) and isinstance(raw.get("tool"), str) else None
        try:
            program = ToolProgram.model_validate(raw)
        except ValidationError as exc:
            if tool in tool_names:
                report.refused[tool] = f"model program does not parse: {_first_error(exc)}"
            continue
        if program.tool in tool_names and program.tool not in programs:
            programs[program.tool] = program
    for tool in sorted(tool_names - set(programs) - set(report.refused)):
        report.refused[tool] = "the model wrote no program for it"
    return environment_doc(domain, name, specs, tables, list(programs.values()), seed, rows)


async def build_environment_with_model(
    domain: str,
    name: str,
    specs: list[ToolSpec],
    backend: ChatBackend,
    seed: int = 0,
    rows_per_table: int = 12,
    probe_attempts: int = 5,
) -> tuple[EnvironmentDoc, sqlite3.Connection, BuildReport]:
    """The model's environment if at least as many tools run as under the rules, else the rules'."""
    specs = sorted(specs, key=lambda s: s.name)
    rules = build_environment(domain, name, specs, seed, rows_per_table, probe_attempts)
    example = next((p for p in rules[0].programs if p.kind == "write"), None)
    reply = await backend.complete([{"role": "user", "content": proposal_prompt(specs, example)}], [])
    report = BuildReport(source="model")
    try:
        draft = parse_proposal(reply.get("content") or "", domain, name, specs, seed, rows_per_table, report)
        # A model can write a schema SQLite refuses (a table twice, a key that is not a column): whatever
        # the draft breaks, the rules' draft stands and the reason is recorded.
        model = prove(draft, report, probe_attempts)
    except Exception as exc:
        rules[2].choice = f"rules: the model's proposal is unusable ({type(exc).__name__}: {exc})"
        return rules
    n = len(specs)
    tally = f"model {len(model[2].kept)}/{n} tools run, rules {len(rules[2].kept)}/{n}"
    if len(model[2].kept) >= len(rules[2].kept):
        rules[1].close()
        model[2].choice = f"model: {tally}"
        return model
    model[1].close()
    rules[2].choice = f"rules: {tally}"
    return rules
