"""`synthetic_heldout`: score an agent on held-out synthetic tasks, with the funnel's own verdicts.

A task is solved when the agent's trajectory is valid, reaches the gold final state and makes the gold
write calls (the same three stages that decide what is kept for training). Every score carries its sample
size, a Wilson 95% interval, and the floor a do-nothing agent gets on the same tasks.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from math import comb
from pathlib import Path

from envgen.filters import FunnelConfig, judge
from envgen.programs import EnvironmentDoc
from envgen.simulate.backends import ChatBackend, DoNothingAgent
from envgen.simulate.rollout import AgentFactory, run_rollouts
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks import Task


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
class Score:
    agent: str
    n: int
    successes: int
    rate: float
    ci_low: float
    ci_high: float
    per_domain: dict[str, tuple[int, int]] = field(default_factory=dict)  # domain -> (solved, n)
    terminations: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


def score_agent(
    suite: dict[str, DomainTasks],
    agent_for: AgentFactory,
    journal_dir: Path,
    label: str,
    concurrency: int = 4,
    max_agent_turns: int = 24,
) -> Score:
    """Roll the agent out once per held-out task with the scripted user and judge each trajectory."""
    per_domain: dict[str, list[bool]] = defaultdict(list)
    terms, failures = Counter(), Counter()
    for domain, dt in sorted(suite.items()):
        trajs = asyncio.run(
            run_rollouts(
                dt.tasks,
                dt.env,
                dt.snapshot,
                agent_for,
                lambda t, r: ScriptedUser(t),
                k=1,
                journal=journal_dir / f"{label}-{domain}.jsonl",
                concurrency=concurrency,
                max_agent_turns=max_agent_turns,
            )
        )
        by_id = {t.task_id: t for t in dt.tasks}
        for tr in trajs:
            v = judge(tr, by_id[tr.task_id], dt.env, FunnelConfig())
            per_domain[domain].append(v.kept)
            terms[tr.termination.split(":")[0]] += 1
            if not v.kept:
                failures[v.stage_failed] += 1
    results = [ok for oks in per_domain.values() for ok in oks]
    s, n = sum(results), len(results)
    lo, hi = wilson_interval(s, n)
    return Score(
        agent=label,
        n=n,
        successes=s,
        rate=s / n if n else 0.0,
        ci_low=lo,
        ci_high=hi,
        per_domain={d: (sum(v), len(v)) for d, v in per_domain.items()},
        terminations=dict(terms),
        failures=dict(failures),
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
    concurrency: int = 4,
    max_agent_turns: int = 24,
) -> list[Score]:
    """Each named agent plus the do-nothing floor, on the same tasks."""
    floor = score_agent(
        suite, lambda t, r: DoNothingAgent(), journal_dir, "floor", concurrency, max_agent_turns
    )
    scores = [floor]
    for label, agent in agents.items():
        scores.append(
            score_agent(suite, lambda t, r, a=agent: a, journal_dir, label, concurrency, max_agent_turns)
        )
    return scores
