"""`synthetic_heldout`: score an agent on held-out synthetic tasks, with the funnel's own verdicts.

A task is solved when the agent's trajectory is valid, reaches the gold final state and makes the gold
write calls (the same three stages that decide what is kept for training). Every score carries its sample
size, a Wilson 95% interval, pass^1..k over k seeded rollouts, the final-state and call match rates apart,
termination reasons, failure categories, and the floor a do-nothing agent gets on the same tasks.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from math import comb
from pathlib import Path

import polars as pl

from envgen.environment.build import load_environment
from envgen.environment.programs import EnvironmentDoc
from envgen.funnel.filters import FunnelConfig, Verdict, judge, successful_calls
from envgen.llm.backends import ChatBackend, DoNothingAgent
from envgen.simulate.rollout import AgentFactory, Trajectory, run_rollouts
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import Task, frame_to_tasks


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: honest at small n and at rates near 0 or 1."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pass_hat_k(results: dict[str, list[bool]], k: int) -> float:
    """tau2's pass^k: per task comb(c, k) / comb(n, k), averaged over tasks with at least k trials."""
    vals = [comb(sum(r), k) / comb(len(r), k) for r in results.values() if len(r) >= k]
    return round(sum(vals) / len(vals), 4) if vals else 0.0


@dataclass
class DomainTasks:
    env: EnvironmentDoc
    snapshot: Path
    tasks: list[Task]


@dataclass
class SyntheticSuite:
    """The held-out synthetic suite: tasks scored by whole-task success (`tasks`, capped per domain), every
    held-out task for the graded next-turn metric (`graded`), each domain's group (`vertical` or
    `general`) and each domain's training chains (tool names in order; the frequency baseline's prior)."""

    tasks: dict[str, DomainTasks]
    graded: dict[str, DomainTasks]
    groups: dict[str, str]
    train_calls: dict[str, list[list[str]]]


@dataclass
class Score:
    """One agent on one suite. `n` counts tasks; each task had `k` seeded rollouts. `rate` (with the Wilson
    interval) is the share of rollouts solved, pass^1 in expectation; `pass_hat` holds tau2's pass^1..k."""

    agent: str
    n: int
    successes: int
    rate: float
    ci_low: float
    ci_high: float
    k: int = 1
    rollouts: int = 0
    pass_hat: dict[int, float] = field(default_factory=dict)
    state_match: float = 0.0  # share of rollouts that reached the gold final state
    call_match: float = 0.0  # share whose write calls equal the gold ones
    per_domain: dict[str, tuple[int, int]] = field(default_factory=dict)  # domain -> (solved, rollouts)
    terminations: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # funnel stage that failed
    categories: dict[str, int] = field(default_factory=dict)  # what went wrong, see `failure_category`


FAILURE_CATEGORIES = (
    "malformed call",
    "wrong tool",
    "wrong argument",
    "missing call",
    "premature end",
    "other",
)


def failure_category(traj: Trajectory, task: Task, verdict: Verdict) -> str | None:
    """What went wrong with an unsolved rollout, judged against the gold calls, first match wins:

    - malformed call: a tool call that does not parse, or whose arguments are not a JSON object;
    - wrong tool: the agent called a tool the gold plan never uses (offered or not);
    - wrong argument: it called a gold tool with arguments no gold call of that tool has;
    - premature end: every call it made is a gold call, some gold call is missing, and the episode did not
      end with the user (turn limit, backend error);
    - missing call: the same, but the user ended the conversation;
    - other: the gold calls were all made yet the task failed (extra writes, a broken message, a loop).
    """
    if verdict.kept:
        return None
    gold_names = {c["name"] for c in task.gold_calls}
    attempted = [
        c.get("function", {}).get("name")
        for m in traj.messages
        if m.get("role") == "assistant"
        for c in m.get("tool_calls") or []
    ]
    if "unparseable tool call" in verdict.reason or "not a JSON object" in verdict.reason:
        return "malformed call"
    if any(name not in gold_names for name in attempted):
        return "wrong tool"
    made = successful_calls(traj)
    if any(c not in task.gold_calls for c in made):
        return "wrong argument"
    if any(g not in made for g in task.gold_calls):
        return "missing call" if traj.termination == "user_stop" else "premature end"
    return "other"


def scripted_user_rollouts(
    suite: dict[str, DomainTasks],
    agent_for: AgentFactory,
    journal_for: Callable[[str], Path],
    k: int = 1,
    concurrency: int = 32,
    max_agent_turns: int = 24,
) -> dict[str, list[Trajectory]]:
    """k rollouts of every task of every domain with the scripted user, journalled per domain (resumable).

    All domains run in one event loop, so a batching agent (`HFChatBackend`) decodes the turns of up to
    `concurrency` episodes of every domain together instead of a few of one domain at a time."""

    async def every_domain() -> list[list[Trajectory]]:
        return await asyncio.gather(
            *(
                run_rollouts(
                    dt.tasks,
                    dt.env,
                    dt.snapshot,
                    agent_for,
                    lambda t, r: ScriptedUser(t),
                    k=k,
                    journal=journal_for(slug),
                    concurrency=concurrency,
                    max_agent_turns=max_agent_turns,
                )
                for slug, dt in suite.items()
            )
        )

    return dict(zip(suite, asyncio.run(every_domain()), strict=True))


def score_agent(
    suite: dict[str, DomainTasks],
    agent_for: AgentFactory,
    journal_dir: Path,
    label: str,
    concurrency: int = 32,
    max_agent_turns: int = 24,
    k: int = 1,
) -> Score:
    """Roll the agent out k times per held-out task with the scripted user and judge every trajectory with
    the funnel's verdicts; rollout r of every task gets the same seed for every agent."""
    per_task: dict[str, list[bool]] = {}
    per_domain: dict[str, list[bool]] = defaultdict(list)
    terms, failures, categories = Counter(), Counter(), Counter()
    aligned = matched = 0
    rolled = scripted_user_rollouts(
        suite, agent_for, lambda slug: journal_dir / f"{label}-{slug}.jsonl", k, concurrency, max_agent_turns
    )
    for domain, dt in sorted(suite.items()):
        by_id = {t.task_id: t for t in dt.tasks}
        for tr in rolled[domain]:
            task = by_id[tr.task_id]
            v = judge(tr, task, dt.env, FunnelConfig())
            per_task.setdefault(f"{domain}/{tr.task_id}", []).append(v.kept)
            per_domain[domain].append(v.kept)
            aligned += v.state_aligned
            matched += v.calls_match
            terms[tr.termination.split(":")[0]] += 1
            if not v.kept:
                failures[v.stage_failed] += 1
                categories[failure_category(tr, task, v)] += 1
    results = [ok for oks in per_domain.values() for ok in oks]
    s, n = sum(results), len(results)
    lo, hi = wilson_interval(s, n)
    return Score(
        agent=label,
        n=len(per_task),
        successes=s,
        rate=s / n if n else 0.0,
        ci_low=lo,
        ci_high=hi,
        k=k,
        rollouts=n,
        pass_hat={j: pass_hat_k(per_task, j) for j in range(1, k + 1)},
        state_match=aligned / n if n else 0.0,
        call_match=matched / n if n else 0.0,
        per_domain={d: (sum(v), len(v)) for d, v in per_domain.items()},
        terminations=dict(terms),
        failures=dict(failures),
        categories=dict(categories),
    )


def group_rates(score: Score, groups: dict[str, str]) -> list[dict[str, object]]:
    """The score re-cut by domain group (e.g. domain -> "vertical" | "general"), with Wilson intervals."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for domain, (solved, n) in score.per_domain.items():
        tally[groups[domain]][0] += solved
        tally[groups[domain]][1] += n
    rows = []
    for group, (solved, n) in sorted(tally.items()):
        lo, hi = wilson_interval(solved, n)
        rows.append(
            {
                "model": score.agent,
                "group": group,
                "solved": solved,
                "n": n,
                "success": round(solved / n, 3) if n else 0.0,
                "ci95_low": round(lo, 3),
                "ci95_high": round(hi, 3),
            }
        )
    return rows


def score_models(
    suite: dict[str, DomainTasks],
    agents: dict[str, ChatBackend],
    journal_dir: Path,
    concurrency: int = 32,
    max_agent_turns: int = 24,
    k: int = 1,
) -> list[Score]:
    """Each named agent plus the do-nothing floor, on the same tasks and rollout seeds."""
    everyone = {"floor": DoNothingAgent(), **agents}
    return [
        score_agent(suite, lambda t, r, a=agent: a, journal_dir, label, concurrency, max_agent_turns, k)
        for label, agent in everyone.items()
    ]


def load_synthetic_suite(
    domains: list[tuple[str, str, Path, Path]],
    general_tasks_per_domain: int,
    max_tasks_per_domain: int,
    seed: int = 0,
) -> SyntheticSuite:
    """The held-out synthetic suite from (slug, group, environment folder, tasks file) rows, reading each
    domain once: every held-out task for the graded metric; for whole-task success the held-out tasks of a
    `vertical` domain (up to `max_tasks_per_domain`) and a seeded sample of any other's
    (`general_tasks_per_domain`); each domain's training chains. Domains with no held-out task are left
    out of both suites."""
    tasks, graded, train_calls = {}, {}, {}
    for slug, group, folder, tasks_path in domains:
        every = frame_to_tasks(pl.read_parquet(tasks_path))
        train_calls[slug] = [[c["name"] for c in t.gold_calls] for t in every if t.split == "train"]
        held = [t for t in every if t.split == "heldout"]
        if not held:
            continue
        env, snapshot = load_environment(folder)
        graded[slug] = DomainTasks(env, snapshot, sorted(held, key=lambda t: t.task_id))
        random.Random(f"{seed}:{slug}").shuffle(held)
        sample = held[: max_tasks_per_domain if group == "vertical" else general_tasks_per_domain]
        if sample:
            tasks[slug] = DomainTasks(env, snapshot, sorted(sample, key=lambda t: t.task_id))
    return SyntheticSuite(tasks, graded, {slug: group for slug, group, _, _ in domains}, train_calls)
