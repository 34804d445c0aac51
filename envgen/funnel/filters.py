"""The three-stage funnel: validity, final-state alignment, exact match of calls.

The same verdicts score held-out tasks in evaluation, so "kept for training" and "task solved" mean the
same thing. Trajectories that hit tool errors but still reach the gold state are kept and tagged
`recovered` (the paper keeps them to teach recovery).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from envgen.environment.programs import EnvironmentDoc
from envgen.environment.runtime import content_is_error
from envgen.llm.backends import arguments_dict
from envgen.simulate.rollout import Trajectory
from envgen.tasks.chains import Task

STAGES = ("validity", "state_alignment", "call_match")


@dataclass(frozen=True)
class FunnelConfig:
    max_messages: int = 80
    max_repeats: int = 3
    match_reads: bool = False


@dataclass
class Verdict:
    valid: bool
    state_aligned: bool
    calls_match: bool
    reason: str
    recovered: bool

    @property
    def kept(self) -> bool:
        return self.valid and self.state_aligned and self.calls_match

    @property
    def stage_failed(self) -> str | None:
        for stage, ok in zip(STAGES, (self.valid, self.state_aligned, self.calls_match), strict=True):
            if not ok:
                return stage
        return None


def validity_problem(t: Trajectory, cfg: FunnelConfig) -> str | None:
    """Why a trajectory is not well-formed, or None: roles, call ids, parseable calls to offered tools,
    no repetition loops, length bounds."""
    offered = {tool["function"]["name"] for tool in t.tools}
    if len(t.messages) > cfg.max_messages:
        return f"too long: {len(t.messages)} messages"
    if not t.messages or t.messages[0].get("role") != "system":
        return "does not start with the system prompt"
    pending: set[str] = set()
    last_calls: list[str] = []
    for i, m in enumerate(t.messages):
        role = m.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            return f"message {i}: unknown role {role!r}"
        if role == "assistant":
            if m.get("parse_errors"):
                return f"message {i}: unparseable tool call ({m['parse_errors'][0]})"
            if not m.get("content") and not m.get("tool_calls"):
                return f"message {i}: empty assistant turn"
            for c in m.get("tool_calls") or []:
                fn = c.get("function", {})
                if fn.get("name") not in offered:
                    return f"message {i}: call to a tool not offered: {fn.get('name')!r}"
                args = arguments_dict(fn.get("arguments"))
                if args is None:
                    return f"message {i}: arguments are not a JSON object"
                pending.add(c.get("id", ""))
                sig = json.dumps([fn.get("name"), args], sort_keys=True)
                last_calls.append(sig)
                if len(last_calls) >= cfg.max_repeats and len(set(last_calls[-cfg.max_repeats :])) == 1:
                    return f"message {i}: the same call repeated {cfg.max_repeats} times"
        elif role == "tool":
            if m.get("tool_call_id") not in pending:
                return f"message {i}: tool result without a matching call"
            pending.discard(m["tool_call_id"])
    if pending:
        return "tool calls without results"
    if t.termination != "user_stop":
        return f"did not end with the user: {t.termination}"
    return None


def calls_with_results(t: Trajectory) -> list[tuple[dict[str, Any], str | None]]:
    """Every call the agent made, in order, with the content of its result (None when it got none).

    A result answers a call of the assistant turn just before it: ids are matched within that turn only,
    because a model's parsed calls are numbered per turn (every turn has a `call_1`)."""
    pairs: list[tuple[dict[str, Any], str | None]] = []
    turn: dict[str, int] = {}
    for m in t.messages:
        if m.get("role") == "assistant":
            turn = {}
            for c in m.get("tool_calls") or []:
                turn.setdefault(c.get("id", ""), len(pairs))
                pairs.append((c, None))
        elif m.get("role") == "tool" and m.get("tool_call_id") in turn:
            index = turn.pop(m["tool_call_id"])
            pairs[index] = (pairs[index][0], m.get("content", ""))
    return pairs


def successful_calls(t: Trajectory) -> list[dict[str, Any]]:
    """The agent's calls whose tool result was not an error, in order, with parsed arguments."""
    return [
        {"name": c["function"]["name"], "arguments": arguments_dict(c["function"]["arguments"])}
        for c, result in calls_with_results(t)
        if result is not None and not content_is_error(result)
    ]


def calls_match(t: Trajectory, task: Task, env: EnvironmentDoc, match_reads: bool) -> bool:
    """Write calls equal the gold writes in order; reads must match too when asked, or when the task has
    no writes (otherwise doing nothing would solve a read-only task)."""

    def kind(c: dict[str, Any]) -> str:
        p = env.program(c["name"])
        return p.kind if p else "unknown"

    made = successful_calls(t)
    gold = task.gold_calls
    writes_ok = [c for c in made if kind(c) == "write"] == [c for c in gold if kind(c) == "write"]
    if not match_reads and task.writes:
        return writes_ok
    gold_reads = [c for c in gold if kind(c) == "read"]
    made_reads = [c for c in made if kind(c) == "read"]
    return writes_ok and all(g in made_reads for g in gold_reads)


def judge(t: Trajectory, task: Task, env: EnvironmentDoc, cfg: FunnelConfig) -> Verdict:
    problem = validity_problem(t, cfg)
    aligned = t.final_hash == task.gold_hash
    match = calls_match(t, task, env, cfg.match_reads)
    reason = problem or (
        "final state differs from gold" if not aligned else "calls differ from gold" if not match else "kept"
    )
    return Verdict(
        valid=problem is None,
        state_aligned=aligned,
        calls_match=match,
        reason=reason,
        recovered=t.n_tool_errors > 0,
    )


def funnel_counts(verdicts: list[Verdict]) -> dict[str, int]:
    """How many trajectories survive each stage in order (the funnel table)."""
    counts = {"trajectories": len(verdicts)}
    alive = list(verdicts)
    for stage, attr in zip(STAGES, ("valid", "state_aligned", "calls_match"), strict=True):
        alive = [v for v in alive if getattr(v, attr)]
        counts[stage] = len(alive)
    counts["kept_with_recovery"] = sum(v.kept and v.recovered for v in verdicts)
    return counts


_POSITION = re.compile(r"^message \d+: ")


def rejection_reasons(verdicts: list[Verdict]) -> Counter:
    """Rejected trajectories by the first stage they failed and why (message positions dropped)."""
    return Counter(f"{v.stage_failed}: {_POSITION.sub('', v.reason)}" for v in verdicts if not v.kept)
