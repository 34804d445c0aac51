"""Verifiable tasks: dependency-respecting tool chains with gold calls, gold final state and a user intent.

A chain is a random walk on the domain's directed graph (`feeds` edges first, `similar` as fallback, any
tool last); arguments come from the state and from earlier outputs; the chain is executed on a fresh copy
of the snapshot, so its gold calls replay to the gold final-state hash. Rejected chains are counted by
reason. The intent is templated from the tools' descriptions and the arguments the agent cannot look up.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from envgen.catalog.spec import is_key, snake_name
from envgen.environment.arguments import ChainContext, SampledCall, sample_call
from envgen.environment.programs import EnvironmentDoc
from envgen.environment.runtime import Episode
from envgen.environment.seed import seeded_faker
from envgen.tasks.phrasing import described_request, user_request


@dataclass(frozen=True)
class TaskConfig:
    n_chains: int = 40
    min_length: int = 1
    max_length: int = 8
    heldout_fraction: float = 0.25
    # Share of requests the scripted user puts in its own words (`envgen.tasks.phrasing.user_request`)
    # rather than restating the tool's description.
    own_words: float = 0.0
    seed: int = 0


@dataclass
class Task:
    task_id: str
    domain: str
    seed: int
    intent: str
    intent_parts: list[str]
    gold_calls: list[dict[str, Any]]
    gold_outputs: list[Any]
    initial_hash: str
    gold_hash: str
    length: int
    writes: int
    split: str = "train"

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        for k in ("intent_parts", "gold_calls", "gold_outputs"):
            row[k] = json.dumps(row[k], sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        row = dict(row)
        for k in ("intent_parts", "gold_calls", "gold_outputs"):
            row[k] = json.loads(row[k])
        return cls(**row)


@dataclass
class TaskBatch:
    tasks: list[Task] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    attempted: int = 0


# The edges a chain follows, in order of preference (a `family` edge says only that two tools came together).
CHAIN_EDGES = ("feeds", "similar")


class DomainGraph:
    """The domain's directed tool graph: where a chain may go next from a tool."""

    def __init__(self, tools: list[str], edges: list[tuple[str, str, str]]):
        self.tools = sorted(tools)
        known = set(self.tools)
        self.out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for src, dst, kind in edges:
            if kind in CHAIN_EDGES and src in known and dst in known and src != dst:
                self.out[src][kind].add(dst)
                if kind == "similar":
                    self.out[dst][kind].add(src)

    def candidates(self, here: str | None, rng: random.Random) -> list[str]:
        """Next tools in order of preference: `feeds` successors, then `similar` ones, then any other
        tool (each group shuffled), so a step whose first choice cannot run falls back along the graph."""
        if here is None:
            return rng.sample(self.tools, len(self.tools))
        order: list[str] = []
        for kind in CHAIN_EDGES:
            group = sorted(self.out[here][kind] - set(order))
            order += rng.sample(group, len(group))
        rest = [t for t in self.tools if t != here and t not in order]
        return order + rng.sample(rest, len(rest))


_OPENERS = ["Hi!", "Hello, I need some help.", "Hi there.", "Good morning!", "Hey, could you help me out?"]
_LEADS = ["I'd like to {d}", "Could you {d}", "Please {d}", "I need to {d}", "Can you {d}"]
_THENS = ["After that, ", "Then ", "Once that's done, ", "Also, ", "Next, "]


def _value_text(name: str, value: Any) -> str:
    """`order id ORD-1003`, `reason 'moving abroad'`, `quantity 2`: ids bare, other text quoted."""
    label = snake_name(name).replace("_", " ")
    if is_key(name):
        return f"{label} {value}"
    return f"{label} '{value}'" if isinstance(value, str) else f"{label} {json.dumps(value)}"


def write_intent(
    env: EnvironmentDoc, calls: list[SampledCall], rng: random.Random, own_words: float = 0.0
) -> list[str]:
    """One sentence per call: what to do (in the description's words, or with probability `own_words` in
    the user's) and the values the agent can't look up."""
    parts = []
    for i, call in enumerate(calls):
        description = env.tool_schema(call.name)["description"]
        if own_words > 0 and rng.random() < own_words:
            desc = user_request(call.name, description, rng)
        else:
            desc = described_request(description)
        stated = [_value_text(k, v) for k, v in call.arguments.items() if k not in call.derived]
        lead = rng.choice(_LEADS).format(d=desc)
        text = lead + (" (" + ", ".join(stated) + ")" if stated else "") + "."
        if i == 0:
            text = rng.choice(_OPENERS) + " " + text
        else:
            keep_case = text.startswith(("I ", "I'"))
            text = rng.choice(_THENS) + (text if keep_case else text[0].lower() + text[1:])
        parts.append(text)
    return parts


def task_id(domain: str, calls: list[dict[str, Any]]) -> str:
    return hashlib.sha1(json.dumps([domain, calls], sort_keys=True, default=str).encode()).hexdigest()[:16]


def sample_task(
    env: EnvironmentDoc,
    snapshot: sqlite3.Connection | Path,
    edges: list[tuple[str, str, str]] | DomainGraph,
    length: int,
    seed: int,
    step_attempts: int = 3,
    own_words: float = 0.0,
) -> tuple[Task | None, str | None]:
    """One chain executed end to end: the task, or None and the reason it was rejected.

    Each step tries up to `step_attempts` next tools along the graph (`edges`, or the `DomainGraph` built
    from them once for many chains) before the chain is given up.
    """
    rng, fake = random.Random(seed), seeded_faker(seed)
    graph = edges if isinstance(edges, DomainGraph) else DomainGraph([t["name"] for t in env.tools], edges)
    ep = Episode(env, snapshot)
    try:
        initial = ep.state_hash()
        ctx, calls, outputs = ChainContext(), [], []
        here: str | None = None
        while len(calls) < length:
            failures: list[str] = []
            for name in graph.candidates(here, rng)[:step_attempts]:
                call = sample_call(ep, name, ctx, rng, fake)
                if call is None:
                    failures.append(f"no arguments in state: {name}")
                    continue
                res = ep.call(name, call.arguments)  # a failed call is rolled back: the state is unchanged
                if res.ok:
                    break
                failures.append(f"call failed: {res.output.get('type')}")
            else:
                return None, failures[-1] if failures else "no tool to continue the chain"
            ctx.absorb(res.output)
            calls.append(call)
            outputs.append(res.output)
            here = name
        writes = sum(env.program(c.name).kind == "write" for c in calls)
        final = ep.state_hash()
        if writes and final == initial:
            return None, "writes left the state unchanged"
        gold = [{"name": c.name, "arguments": c.arguments} for c in calls]
        parts = write_intent(env, calls, rng, own_words)
        return Task(
            task_id=task_id(env.domain, gold),
            domain=env.domain,
            seed=seed,
            intent=" ".join(parts),
            intent_parts=parts,
            gold_calls=gold,
            gold_outputs=outputs,
            initial_hash=initial,
            gold_hash=final,
            length=len(calls),
            writes=writes,
        ), None
    finally:
        ep.close()


def sample_tasks(
    env: EnvironmentDoc,
    snapshot: sqlite3.Connection | Path,
    edges: list[tuple[str, str, str]],
    cfg: TaskConfig,
) -> TaskBatch:
    """`n_chains` attempts, de-duplicated, with a seeded held-out share per domain."""
    batch = TaskBatch()
    graph = DomainGraph([t["name"] for t in env.tools], edges)  # once: `edges` may be the whole catalog's
    rng = random.Random(f"{cfg.seed}:{env.domain}")
    seen: set[str] = set()
    for i in range(cfg.n_chains):
        batch.attempted += 1
        length = rng.randint(cfg.min_length, cfg.max_length)
        task, reason = sample_task(
            env, snapshot, graph, length, seed=cfg.seed * 100_003 + i, own_words=cfg.own_words
        )
        if task is None:
            batch.rejected[reason] += 1
        elif task.task_id in seen:
            batch.rejected["duplicate"] += 1
        else:
            seen.add(task.task_id)
            batch.tasks.append(task)
    assign_heldout(batch.tasks, cfg.heldout_fraction, rng)
    return batch


def stratum(task: Task) -> tuple[int, bool]:
    """(chain length, whether it writes): the strata held-out tasks are drawn from evenly."""
    return task.length, task.writes > 0


def assign_heldout(tasks: list[Task], fraction: float, rng: random.Random) -> None:
    """Systematic sampling over tasks ordered by stratum (shuffled within): every 1/fraction-th task is
    held out, so each length and read/write mix is represented in the held-out share."""
    if fraction <= 0:
        for t in tasks:
            t.split = "train"
        return
    keyed = {t.task_id: rng.random() for t in sorted(tasks, key=lambda t: t.task_id)}
    order = sorted(tasks, key=lambda t: (stratum(t), keyed[t.task_id]))
    step = max(1, round(1 / fraction))
    offset = rng.randrange(step)
    for i, t in enumerate(order):
        t.split = "heldout" if i % step == offset else "train"


def replay(env: EnvironmentDoc, snapshot: sqlite3.Connection | Path, calls: list[dict[str, Any]]) -> str:
    """The final-state hash after replaying calls on a fresh copy (how gold hashes are verified)."""
    ep = Episode(env, snapshot)
    try:
        for c in calls:
            ep.call(c["name"], c["arguments"])
        return ep.state_hash()
    finally:
        ep.close()


def tasks_to_frame(tasks: list[Task]) -> pl.DataFrame:
    return pl.DataFrame(
        [t.to_row() for t in tasks],
        schema={
            "task_id": pl.String,
            "domain": pl.String,
            "seed": pl.Int64,
            "intent": pl.String,
            "intent_parts": pl.String,
            "gold_calls": pl.String,
            "gold_outputs": pl.String,
            "initial_hash": pl.String,
            "gold_hash": pl.String,
            "length": pl.Int64,
            "writes": pl.Int64,
            "split": pl.String,
        },
    )


def frame_to_tasks(frame: pl.DataFrame) -> list[Task]:
    return [Task.from_row(r) for r in frame.iter_rows(named=True)]


def mark_heldout_domains(domains: pl.DataFrame, k: int, seed: int = 0) -> pl.DataFrame:
    """The domains table with a `heldout` column: `k` general (non-vertical) domains, chosen by a seeded
    hash of their slugs, are held out whole, so general held-out scores measure transfer to tools training
    never saw. The choice depends only on the slugs and the seed: a re-synthesis keeps it. A catalog with
    `k` general domains or fewer keeps one of them for training (the caller reports how many were held)."""
    general = sorted(
        (s for s, v in domains.select("slug", "vertical").iter_rows() if not v),
        key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest(),
    )
    held = general[: min(k, max(0, len(general) - 1))]
    return domains.with_columns(heldout=pl.col("slug").is_in(held))
