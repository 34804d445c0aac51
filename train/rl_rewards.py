"""Rewards for reinforcement learning on the synthesized environments, from verified outcomes.

An episode's outcome is read from what the environment and the funnel verified, never from the text: the
funnel's verdict (`envgen.funnel.filters.judge`: a valid trajectory that reaches the gold final database
state and makes the gold write calls, the same test as whole-task success in evaluation), plus counts taken
from the tool results the environment returned. Each reward term is a plain function of those outcomes, in
the shape TRL's ``GRPOTrainer`` calls reward functions (``prompts``, ``completions`` and the rollout's extra
fields as keyword arguments), so the trainer weighs them (``reward_weights``) and logs each one apart:

- ``solved``: 1 when the funnel keeps the episode, else 0 — the objective;
- ``gold_calls``: the share of the task's gold calls made, with their exact arguments, without error;
- ``right_tool``: the share of the gold calls whose tool was called at all (any arguments);
- ``well_formed``: the share of assistant turns that parse, call only offered tools with JSON-object
  arguments the tool accepts;
- ``invalid_calls``: minus the share of call attempts that were invalid (unparseable, a tool not offered,
  arguments the schema refuses) — weighted by the configured penalty; a share, not a count, so that an
  episode with one bad call in ten scores better than one with ten in ten;
- ``policy_violations``: minus the number of policy violations, capped at one: a successful write the task
  never asked for (the policy says: never make a change the user did not request) and a call the
  environment's own rules refused (``precondition_failed``).

The shaped terms exist because a small model rarely solves a whole task early on: with only ``solved`` every
group of rollouts scores 0 and GRPO has no signal. They are configurable (weight 0 turns one off) and
reported separately from ``solved``, which is what evaluation measures.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from envgen.environment.programs import EnvironmentDoc
from envgen.funnel.filters import Verdict, calls_with_results, successful_calls
from envgen.llm.backends import arguments_dict
from envgen.simulate.rollout import Trajectory
from envgen.tasks.chains import Task

# Error types (`envgen.environment.runtime.ToolError.kind`) that mean the call itself was malformed.
INVALID_CALL_ERRORS = frozenset(
    {"unknown_tool", "invalid_arguments", "missing_argument", "unexpected_argument", "invalid_type"}
)
# The environment's own rules refused the call (a check step of the tool's program).
RULE_ERRORS = frozenset({"precondition_failed"})


@dataclass(frozen=True)
class EpisodeOutcome:
    """What an episode achieved, as verified by the environment and the funnel."""

    solved: bool
    state_match: bool
    calls_match: bool
    gold_calls_made: float  # share of gold calls made exactly and without error
    right_tool: float  # share of gold calls whose tool was called
    well_formed: float  # share of assistant turns that are well-formed
    invalid_calls: int
    policy_violations: int
    tool_calls: int
    call_attempts: int  # tool calls plus tool-call blocks that did not parse
    termination: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _error_type(content: str) -> str | None:
    """The error type of a tool result (`{"error": {"type": ...}}`), or None for a successful call."""
    try:
        value = json.loads(content)
    except (TypeError, ValueError):
        return None
    error = value.get("error") if isinstance(value, dict) else None
    return str(error.get("type")) if isinstance(error, dict) else None


def _key(call: dict[str, Any]) -> str:
    return json.dumps([call["name"], call["arguments"]], sort_keys=True, default=str)


def _overlap(wanted: list[str], made: list[str]) -> int:
    """How many of `wanted` were made, each made item counting once (a multiset intersection)."""
    return sum((Counter(wanted) & Counter(made)).values())


def episode_outcome(t: Trajectory, task: Task, env: EnvironmentDoc, verdict: Verdict) -> EpisodeOutcome:
    """Count what the trajectory did against the task's gold calls and the environment's verdicts."""
    calls = calls_with_results(t)
    turns = [m for m in t.messages if m.get("role") == "assistant"]
    invalid = sum(len(m.get("parse_errors") or []) for m in turns)
    rule_refusals = 0
    bad_turns: set[int] = {i for i, m in enumerate(turns) if m.get("parse_errors")}
    call_turn = [i for i, m in enumerate(turns) for _ in m.get("tool_calls") or []]
    for (c, result), turn in zip(calls, call_turn, strict=True):
        error = _error_type(result or "")
        if arguments_dict(c.get("function", {}).get("arguments")) is None or error in INVALID_CALL_ERRORS:
            invalid += 1
            bad_turns.add(turn)
        rule_refusals += error in RULE_ERRORS
    well_formed = sum(
        i not in bad_turns and bool(m.get("content") or m.get("tool_calls")) for i, m in enumerate(turns)
    )
    called = [c.get("function", {}).get("name", "") for c, _ in calls]
    made = successful_calls(t)
    gold = task.gold_calls
    exact = _overlap([_key(g) for g in gold], [_key(c) for c in made])
    right = _overlap([g["name"] for g in gold], called)

    def is_write(call: dict[str, Any]) -> bool:
        program = env.program(call["name"])
        return program is not None and program.kind == "write"

    unrequested = [c for c in made if is_write(c) and c not in gold]
    return EpisodeOutcome(
        solved=verdict.kept,
        state_match=verdict.state_aligned,
        calls_match=verdict.calls_match,
        gold_calls_made=exact / len(gold) if gold else 1.0,
        right_tool=right / len(gold) if gold else 1.0,
        well_formed=well_formed / len(turns) if turns else 0.0,
        invalid_calls=invalid,
        policy_violations=len(unrequested) + rule_refusals,
        tool_calls=len(called),
        call_attempts=len(called) + sum(len(m.get("parse_errors") or []) for m in turns),
        termination=t.termination,
    )


@dataclass(frozen=True)
class RewardWeights:
    """Weight of each reward term (`solved` is the objective; 0 turns a term off)."""

    solved: float = 1.0
    gold_calls: float = 0.5
    right_tool: float = 0.25
    well_formed: float = 0.1
    invalid_calls: float = 0.2
    policy_violations: float = 0.5


def _outcomes(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    if "outcome" not in kwargs:
        raise KeyError("reward functions need the rollout's `outcome` field (train.rl_rollout)")
    return kwargs["outcome"]


def solved(prompts: list, completions: list, **kwargs: Any) -> list[float]:
    """1 when the funnel keeps the episode (gold final state, gold writes, valid), else 0."""
    return [float(o["solved"]) for o in _outcomes(kwargs)]


def gold_calls(prompts: list, completions: list, **kwargs: Any) -> list[float]:
    """The share of the task's gold calls made exactly and without error."""
    return [float(o["gold_calls_made"]) for o in _outcomes(kwargs)]


def right_tool(prompts: list, completions: list, **kwargs: Any) -> list[float]:
    """The share of the task's gold calls whose tool was called."""
    return [float(o["right_tool"]) for o in _outcomes(kwargs)]


def well_formed(prompts: list, completions: list, **kwargs: Any) -> list[float]:
    """The share of assistant turns that are well-formed."""
    return [float(o["well_formed"]) for o in _outcomes(kwargs)]


def invalid_calls(prompts: list, completions: list, **kwargs: Any) -> list[float]:
    """Minus the share of the episode's call attempts that were invalid (weighted by the penalty)."""
    return [-o["invalid_calls"] / max(1, o["call_attempts"]) for o in _outcomes(kwargs)]


def policy_violations(prompts: list, completions: list, **kwargs: Any) -> list[float]:
    """Minus the policy violations of the episode, capped at one (weighted by the penalty)."""
    return [-min(1.0, float(o["policy_violations"])) for o in _outcomes(kwargs)]


REWARD_FUNCTIONS = (solved, gold_calls, right_tool, well_formed, invalid_calls, policy_violations)


def reward_functions(weights: RewardWeights) -> tuple[list, list[float]]:
    """The reward functions with a non-zero weight, and their weights, in TRL's order."""
    chosen = [(f, getattr(weights, f.__name__)) for f in REWARD_FUNCTIONS if getattr(weights, f.__name__)]
    return [f for f, _ in chosen], [w for _, w in chosen]


def total_reward(outcome: EpisodeOutcome, weights: RewardWeights) -> float:
    """The weighted sum the trainer optimises, for one outcome (tests and reports)."""
    funcs, ws = reward_functions(weights)
    return sum(w * f([], [], outcome=[outcome.to_dict()])[0] for f, w in zip(funcs, ws, strict=True))
