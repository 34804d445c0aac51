"""`run_acebench`: one agent on one ACEBench category, scored by ACEBench's rules.

The unit of a score is ACEBench's: an item, except normal multi-turn data, where a conversation (all its
turn items) counts once and its process accuracy is the share of turns right. `rate` pools units across
subcategories with a Wilson interval; `acebench_score` is ACEBench's own summary for the category, the
unweighted mean of subcategory accuracies. `agent="gold"` replays the possible answers (the harness check:
it must score 1.0 on consistent data); `DoNothingAgent` gives the floor.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from envgen.llm.backends import ChatBackend
from evals.acebench.agent import (
    EpisodeSetup,
    final_state_check,
    process_accuracy,
    replay_gold,
    run_multi_step,
    run_multi_turn,
)
from evals.acebench.apps import Scenario, ScenarioUnavailable
from evals.acebench.calls import calls_from_message, render_calls
from evals.acebench.checker import (
    ERROR_PHRASE,
    INCOMPLETE_PHRASE,
    Check,
    alternatives,
    check_normal,
    check_special,
)
from evals.acebench.data import AceBenchData, AceBenchItem
from evals.acebench.prompts import HISTORY, NORMAL, SPECIAL, context_block
from evals.acebench.schema import to_openai_tools
from evals.synthetic import wilson_interval

SCORED = "scored"
NEEDS_USER = "needs_user_simulator"
FAILURE_CATEGORIES = (
    "wrong_function_name",
    "wrong_argument",
    "missing_call",
    "unexpected_call",
    "no_answer",
    "premature_end",
    "error_detection",
    "error_correction",
    "wrong_final_state",
    "scenario_unavailable",
)
Agent = ChatBackend | Literal["gold"]


@dataclass
class ItemRecord:
    """One item's verdict (for normal multi-turn: one turn; `unit` names its conversation)."""

    id: str
    subcategory: str
    unit: str
    solved: bool
    category: str = ""  # failure category, see FAILURE_CATEGORIES
    error_type: str = ""  # ACEBench's own error type
    error: str = ""
    process: float | None = None  # agent: milestone accuracy
    answer: str = ""  # the agent's reply (calls rendered in ACEBench's text form)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class AceBenchResult:
    """A scored (or not scorable) run; `to_dict()` is JSON-able for asset metadata and score files."""

    category: str
    language: str
    agent: str
    user: str
    status: str
    note: str = ""
    n: int = 0
    successes: int = 0
    rate: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 1.0
    acebench_score: float = 0.0  # ACEBench's summary: unweighted mean of subcategory accuracies
    per_subcategory: dict[str, tuple[int, int]] = field(default_factory=dict)  # sub -> (solved, n)
    failures: dict[str, int] = field(default_factory=dict)
    process_accuracy: float | None = None  # agent and normal multi-turn: mean process accuracy
    per_subcategory_process: dict[str, float] = field(default_factory=dict)
    terminations: dict[str, int] = field(default_factory=dict)
    records: list[ItemRecord] = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("records", "per_subcategory")
        }
        out["per_subcategory"] = {k: {"solved": s, "n": n} for k, (s, n) in self.per_subcategory.items()}
        out["records"] = [asdict(r) for r in self.records]
        return out


def _units(items: list[AceBenchItem], max_items: int, seed: int) -> list[AceBenchItem]:
    """All items, or a seeded sample of `max_items` units (a conversation's turns stay together)."""
    order = list(dict.fromkeys(it.unit for it in items))
    if max_items and len(order) > max_items:
        keep = set(random.Random(seed).sample(order, max_items))
        return [it for it in items if it.unit in keep]
    return items


def _gold_message(item: AceBenchItem, name_map: dict[str, str]) -> dict[str, Any]:
    """The possible answer as the reply an ideal agent would give."""
    if item.category == "special":
        if item.subcategory == "irrelevant":
            return {"role": "assistant", "content": str(item.answer)}
        names = list(item.answer) if isinstance(item.answer, dict) else []
        values = [
            str(v) for vs in (item.answer or {}).values() for v in (vs if isinstance(vs, list) else [vs])
        ]
        if item.subcategory == "incomplete":
            text = f'["{INCOMPLETE_PHRASE} ({", ".join(values)}) for the api ({", ".join(names)})"]'
        else:
            text = f'["{ERROR_PHRASE} ({", ".join(values)}) for the parameters ({", ".join(names)}) in the conversation history."]'  # noqa: E501
        return {"role": "assistant", "content": text}
    alts = alternatives(item.answer)
    offered = {v: k for k, v in name_map.items()}
    calls = []
    for i, (name, args) in enumerate((alts[0] if alts else {}).items()):
        base = re.sub(r"_\d+$", "", name)
        calls.append(
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": offered.get(base, base),
                    "arguments": json.dumps(args, ensure_ascii=False),
                },
            }
        )
    return {"role": "assistant", "content": "", "tool_calls": calls}


def _single_turn_messages(item: AceBenchItem) -> list[dict[str, Any]]:
    profile = item.profile if item.subcategory == "preference" else ""
    template = SPECIAL if item.category == "special" else NORMAL
    return [
        {"role": "system", "content": template.format(context=context_block(item.time, profile))},
        {"role": "user", "content": HISTORY.format(question=item.question)},
    ]


async def _judge_single(item: AceBenchItem, agent: Agent) -> ItemRecord:
    tools, name_map = to_openai_tools(item.functions)
    if agent == "gold":
        msg = _gold_message(item, name_map)
    else:
        try:
            msg = await agent.complete(_single_turn_messages(item), tools)
        except Exception as exc:  # a failed request is the agent's failure on this item, not a crash
            return ItemRecord(
                item.id,
                item.subcategory,
                item.unit,
                False,
                "premature_end",
                "backend_error",
                f"{type(exc).__name__}: {exc}",
            )
    calls, parse_error = calls_from_message(msg, name_map)
    text = msg.get("content") or ""
    answer = render_calls(calls) if calls else text
    if item.category == "special":
        verdict = check_special(item.subcategory, text, item.answer)
        if calls:
            verdict = Check(
                False, "function_called", "made a call instead of pointing out the problem", "unexpected_call"
            )
    elif not calls:
        verdict = Check(False, "wrong_output_format", parse_error or "no function call", "no_answer")
    else:
        verdict = check_normal(item.functions, calls, item.answer)
    return ItemRecord(
        item.id,
        item.subcategory,
        item.unit,
        verdict.valid,
        verdict.category,
        verdict.error_type,
        verdict.error,
        answer=answer,
    )


async def _judge_agent(
    data: AceBenchData, item: AceBenchItem, agent: Agent, user: ChatBackend | None, max_steps: int
) -> ItemRecord:
    """One agent item; a scenario class that cannot be run is a failure naming the item, never a skip."""
    try:
        scenario = Scenario.build(
            data.root, data.language, item.subcategory, item.involved_classes, item.initial_config
        )
    except ScenarioUnavailable as exc:
        return ItemRecord(
            item.id, item.subcategory, item.unit, False, "scenario_unavailable", error=f"{item.source}: {exc}"
        )
    if agent == "gold":
        ep = replay_gold(item, scenario)
    else:
        tools, name_map = to_openai_tools(item.functions)
        setup = EpisodeSetup(scenario, agent, tools, name_map, max_steps)
        if item.subcategory == "multi_turn":
            assert user is not None
            ep = await run_multi_turn(item, setup, user)
        else:
            ep = await run_multi_step(item, setup)
    valid, errors, unchecked = final_state_check(scenario.state(), item.answer, ep.executed)
    proc = 1.0 if valid else process_accuracy(ep.process, item.mile_stone)
    category = ""
    if not valid:
        category = "wrong_final_state"
        if ep.executed == 0:
            category = "no_answer"
        elif ep.termination in ("max_steps", "error"):
            category = "premature_end"
    detail = {
        "termination": ep.termination,
        "steps": ep.process,
        "unchecked_classes": unchecked,
        "notes": ep.notes,
    }
    return ItemRecord(
        item.id,
        item.subcategory,
        item.unit,
        valid,
        category,
        "" if valid else "class attributes wrong",
        "; ".join(errors[:5]),
        process=proc,
        answer="\n".join(ep.process),
        detail=detail,
    )


def _summarise(result: AceBenchResult, records: list[ItemRecord]) -> None:
    by_unit: dict[str, list[ItemRecord]] = defaultdict(list)
    for r in records:
        by_unit[r.unit].append(r)
    per_sub: dict[str, list[bool]] = defaultdict(list)
    proc_sub: dict[str, list[float]] = defaultdict(list)
    failures: Counter[str] = Counter()
    for recs in by_unit.values():
        sub = recs[0].subcategory
        solved = all(r.solved for r in recs)
        per_sub[sub].append(solved)
        if recs[0].process is not None:
            proc_sub[sub].append(recs[0].process)
        elif sub.startswith("multi_turn"):
            proc_sub[sub].append(round(sum(r.solved for r in recs) / len(recs), 3))
        if not solved:
            failures[next(r.category for r in recs if not r.solved) or "other"] += 1
    result.n = sum(len(v) for v in per_sub.values())
    result.successes = sum(sum(v) for v in per_sub.values())
    result.rate = round(result.successes / result.n, 4) if result.n else 0.0
    result.ci_low, result.ci_high = (round(x, 4) for x in wilson_interval(result.successes, result.n))
    result.per_subcategory = {s: (sum(v), len(v)) for s, v in sorted(per_sub.items())}
    accs = [sum(v) / len(v) for v in per_sub.values() if v]
    result.acebench_score = round(sum(accs) / len(accs), 4) if accs else 0.0
    result.failures = dict(failures.most_common())
    result.per_subcategory_process = {s: round(sum(v) / len(v), 4) for s, v in sorted(proc_sub.items()) if v}
    all_proc = [p for v in proc_sub.values() for p in v]
    result.process_accuracy = round(sum(all_proc) / len(all_proc), 4) if all_proc else None
    result.terminations = dict(Counter(r.detail["termination"] for r in records if "termination" in r.detail))
    result.records = records


@dataclass
class RunOptions:
    """The keyword options of `run_acebench` (see there)."""

    max_items: int = 0
    seed: int = 0
    concurrency: int = 8
    max_steps: int = 20


async def arun_acebench(
    data: AceBenchData,
    category: Literal["normal", "special", "agent"],
    agent: Agent,
    user: ChatBackend | None = None,
    **options: Any,
) -> AceBenchResult:
    """The async form of `run_acebench` (same arguments), for callers that already run an event loop."""
    opts = RunOptions(**options)
    max_items, seed, concurrency, max_steps = opts.max_items, opts.seed, opts.concurrency, opts.max_steps
    if category not in ("normal", "special", "agent"):
        raise ValueError(f"category must be normal, special or agent, not {category!r}")
    start = time.monotonic()
    label = "gold" if agent == "gold" else getattr(agent, "name", type(agent).__name__)
    result = AceBenchResult(category, data.language, label, getattr(user, "name", "") if user else "", SCORED)
    items = _units(data.category(category), max_items, seed)
    if category == "agent" and agent != "gold" and user is None:
        waiting = [it for it in items if it.subcategory == "multi_turn"]
        if waiting:
            result.status = NEEDS_USER
            result.note = (
                f"needs a user-simulator endpoint: {len(waiting)} agent multi_turn items not run; "
                "the score covers multi_step only"
            )
            items = [it for it in items if it.subcategory != "multi_turn"]
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(item: AceBenchItem) -> ItemRecord:
        async with sem:
            if category == "agent":
                return await _judge_agent(data, item, agent, user, max_steps)
            return await _judge_single(item, agent)

    _summarise(result, list(await asyncio.gather(*(one(it) for it in items))))
    result.wall_s = round(time.monotonic() - start, 3)
    return result


def run_acebench(
    data: AceBenchData,
    category: Literal["normal", "special", "agent"],
    agent: Agent,
    user: ChatBackend | None = None,
    *,
    max_items: int = 0,
    seed: int = 0,
    concurrency: int = 8,
    max_steps: int = 20,
) -> AceBenchResult:
    """Score `agent` (a ChatBackend, or "gold" to replay the possible answers) on one ACEBench category.

    `max_items` > 0 scores a seeded sample of that many units; agent multi_turn items need `user` (a
    ChatBackend playing the user) unless the agent is "gold", else they are not run and `status` is
    `needs_user_simulator`. An agent item whose scenario class cannot be run is a failure
    (`scenario_unavailable`, its error naming the data file, line and class), counted in `n`.
    """
    return asyncio.run(
        arun_acebench(
            data,
            category,
            agent,
            user,
            max_items=max_items,
            seed=seed,
            concurrency=concurrency,
            max_steps=max_steps,
        )
    )
