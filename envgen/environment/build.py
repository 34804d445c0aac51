"""Materialise one domain: tables + programs + seeded snapshot, and prove every kept tool runs.

A tool is kept only if, on the seeded database, its program executes with sampled arguments (reads
return, writes change the state) and refuses bad arguments with a structured error. Refused tools are
reported with the reason, never silently dropped.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envgen.catalog.spec import ToolSpec
from envgen.environment.arguments import ChainContext, sample_call
from envgen.environment.programs import EnvironmentDoc, Table, ToolProgram, program_problem
from envgen.environment.runtime import Episode, create_schema
from envgen.environment.schema import ProgramError, derive_program, derive_tables, natural_apart, shape
from envgen.environment.seed import seed_database, seeded_faker


@dataclass
class BuildReport:
    kept: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # tool -> reason
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool -> the call that proved it
    source: str = "rules"  # who wrote the tables and programs: `rules` or `model`
    choice: str = ""  # when a model proposed a draft: which draft was used, and why


def policy_text(name: str) -> str:
    return (
        f"You are the customer-service agent of the {name.replace('_', ' ')} service. Use the tools to look "
        "up and change records on the user's behalf. Act only on what the user asks for, use exactly the ids "
        "and values the user gives or that the tools return, and never make a change the user did not "
        "request. When a request is done, tell the user briefly and ask whether there is anything else."
    )


def tool_entry(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
        "returns": spec.returns,
    }


def environment_doc(
    domain: str,
    name: str,
    specs: list[ToolSpec],
    tables: list[Table],
    programs: list[ToolProgram],
    seed: int,
    rows: int,
) -> EnvironmentDoc:
    """A draft environment offering `specs` as tools, whoever wrote its tables and programs."""
    return EnvironmentDoc(
        domain=domain,
        name=name,
        policy=policy_text(name),
        tables=tables,
        tools=[tool_entry(s) for s in specs],
        programs=programs,
        seed=seed,
        rows_per_table=rows,
    )


def rule_draft(
    domain: str, name: str, specs: list[ToolSpec], seed: int, rows: int, report: BuildReport
) -> EnvironmentDoc:
    """The environment our rules derive (envgen.environment.schema); tools they cannot program go to
    `report`."""
    shapes = []
    for spec in specs:
        try:
            shapes.append(shape(spec))
        except ProgramError as exc:
            report.refused[spec.name] = str(exc)
    shapes = natural_apart(shapes)
    tables = derive_tables(shapes)
    by_name = {t.name: t for t in tables}
    programs, kept = [], []
    for s in shapes:
        try:
            programs.append(derive_program(s, by_name))
            kept.append(s.spec)
        except ProgramError as exc:
            report.refused[s.spec.name] = str(exc)
    return environment_doc(domain, name, kept, tables, programs, seed, rows)


def seeded_snapshot(env: EnvironmentDoc) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    create_schema(conn, env)
    seed_database(conn, env)
    return conn


def probe_tool(
    env: EnvironmentDoc, snapshot: sqlite3.Connection | Path, tool: str, seed: int
) -> tuple[str | None, dict]:
    """Run a tool once on a private copy: the reason it fails (None when it works) and the call made."""
    rng, fake = random.Random(seed), seeded_faker(seed)
    program = env.program(tool)
    ep = Episode(env, snapshot)
    try:
        call = sample_call(ep, tool, ChainContext(), rng, fake)
        if call is None:
            return "no arguments can be sampled from the seeded state", {}
        # Only the tables the program writes can change; hashing just those keeps probing cheap.
        written = {step.table for step in program.steps if step.op in ("insert", "update", "delete")}
        before = ep.state_hash(written)
        res = ep.call(tool, call.arguments)
        if not res.ok:
            return f"call failed: {res.output}", call.arguments
        if program.kind == "write" and ep.state_hash(written) == before:
            return "write did not change the state", call.arguments
        required = env.tool_schema(tool)["parameters"].get("required", [])
        if required:
            bad = ep.call(tool, {})
            if bad.ok or bad.output.get("type") != "missing_argument":
                return "missing arguments were not refused", call.arguments
        return None, call.arguments
    finally:
        ep.close()


def prove_tool(
    env: EnvironmentDoc, snapshot: sqlite3.Connection | Path, tool: str, index: int, probe_attempts: int = 5
) -> tuple[str | None, dict]:
    """Whether one tool of `env` works on `snapshot`: (None, the call that proved it) or (the reason, {}).

    The program must pass the static check, then run in one of several differently seeded probes: a probe
    can be unlucky (say, a sampled new value equal to the old one), so a tool is refused only when all of
    them fail, with the last reason. Used when an environment is built, and again by the asset check that
    re-proves a stored environment on its stored snapshot.
    """
    program = env.program(tool)
    if program is None:
        return "no program", {}
    reason = program_problem(env, program)
    if reason is not None:
        return reason, {}
    for attempt in range(probe_attempts):
        reason, call = probe_tool(env, snapshot, tool, env.seed + 1000 * attempt + index)
        if reason is None:
            return None, call
    return reason, {}


def prove(
    draft: EnvironmentDoc, report: BuildReport, probe_attempts: int = 5
) -> tuple[EnvironmentDoc, sqlite3.Connection, BuildReport]:
    """Keep the draft's tools whose program passes the static check and runs on the seeded snapshot.

    Whoever wrote the draft (our rules or a language model), its tools are accepted by the same test.
    """
    snapshot = seeded_snapshot(draft)
    working = []
    for i, tool in enumerate(t["name"] for t in draft.tools):
        reason, call = prove_tool(draft, snapshot, tool, i, probe_attempts)
        if reason is None:
            working.append(tool)
            report.probes[tool] = call
        elif draft.program(tool) is None:
            report.refused.setdefault(tool, reason)  # keep the reason the draft's author gave
        else:
            report.refused[tool] = reason
    report.kept = working
    env = draft.model_copy(
        update={
            "tools": [t for t in draft.tools if t["name"] in working],
            "programs": [p for p in draft.programs if p.tool in working],
        }
    )
    return env, snapshot, report


def build_environment(
    domain: str,
    name: str,
    specs: list[ToolSpec],
    seed: int = 0,
    rows_per_table: int = 12,
    probe_attempts: int = 5,
) -> tuple[EnvironmentDoc, sqlite3.Connection, BuildReport]:
    """The environment document, its seeded snapshot, and what was kept or refused and why."""
    report = BuildReport()
    draft = rule_draft(domain, name, sorted(specs, key=lambda s: s.name), seed, rows_per_table, report)
    return prove(draft, report, probe_attempts)


# What save_environment writes into a domain folder (the environment's data version hashes them).
ENVIRONMENT_FILES = ("environment.json", "snapshot.sqlite")


def save_environment(env: EnvironmentDoc, snapshot: sqlite3.Connection, folder: Path) -> tuple[Path, Path]:
    """Write `environment.json` and `snapshot.sqlite` (ENVIRONMENT_FILES; replacing older ones atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc, db = (folder / name for name in ENVIRONMENT_FILES)
    tmp_doc, tmp_db = doc.with_suffix(".json.tmp"), db.with_suffix(".sqlite.tmp")
    tmp_doc.write_text(json.dumps(env.model_dump(mode="json"), indent=1))
    tmp_db.unlink(missing_ok=True)
    dst = sqlite3.connect(tmp_db)
    try:
        snapshot.backup(dst)
    finally:
        dst.close()
    tmp_doc.replace(doc)
    tmp_db.replace(db)
    return doc, db


def load_environment(folder: Path) -> tuple[EnvironmentDoc, Path]:
    doc = folder / "environment.json"
    if not doc.exists():
        raise FileNotFoundError(f"no environment at {folder}: materialise domain_environment for it first")
    return EnvironmentDoc.model_validate_json(doc.read_text()), folder / "snapshot.sqlite"
