"""Our own reading of a tau2 trajectory: the reward re-computed independently, and why a run failed.

`harness_reward` re-implements tau2's reward from its published rules, using only tau2's environments
(their tools and databases), not its evaluator classes: a run that did not end with a clean stop scores
0; otherwise the final databases (agent and user side; of the environment the run left behind, or of
the trajectory replayed in a fresh one) are compared with those the gold actions produce, the task's
environment assertions are run on that state, every gold action must be matched by some call, and every
piece of information to communicate must appear in an assistant text; the reward is the product over
the task's reward basis. NL assertions need an LLM judge and are skipped (a task whose basis includes
them is flagged). The runner compares this with tau2's `evaluate_simulation` on every trajectory, so a
change in tau2's scoring, a replay that does not reproduce the run, or a misuse of tau2's API here shows
up as a disagreement instead of a silently different number.

`failure_category` names why a failed run failed, from its calls against the gold actions.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field

from evals.tau2.compat import load_tau2

load_tau2()

from tau2.data_model.message import AssistantMessage, Message, ToolCall, UserMessage  # noqa: E402
from tau2.data_model.simulation import TerminationReason  # noqa: E402
from tau2.data_model.tasks import Action, RewardType, Task  # noqa: E402
from tau2.environment.environment import Environment  # noqa: E402
from tau2.registry import registry  # noqa: E402

CLEAN_STOPS = frozenset({TerminationReason.AGENT_STOP.value, TerminationReason.USER_STOP.value})

# Failure categories of a run with reward < 1, checked in this order:
PREMATURE_END = "premature_end"  # the run ended without a clean stop (max steps, too many errors, an
#                                  agent/user error): tau2 scores it 0 without looking further
MISSING_INFO = "missing_info"  # final state, assertions and actions all fine; an item of communicate_info
#                                was never said (checked before the gold actions: reads skipped by an agent
#                                that still reached the gold state do not matter then)
WRONG_ARGUMENT = "wrong_argument"  # the first gold action (in gold order) that no call matches: its tool
#                                    was called, with other values in the arguments the task compares
WRONG_TOOL = "wrong_tool"  # ... its tool was never called, and the agent made calls that match no gold
#                            action (it did something else instead)
MISSING_CALL = "missing_call"  # ... its tool was never called, and every call the agent made matches a
#                                gold action (it stopped short)
STATE_MISMATCH = "state_mismatch"  # every gold action was matched, yet the final state or an environment
#                                    assertion differs (extra writes, writes in another order)
FAILURE_CATEGORIES = (PREMATURE_END, MISSING_INFO, WRONG_ARGUMENT, WRONG_TOOL, MISSING_CALL, STATE_MISMATCH)


@dataclass
class HarnessReward:
    """A reward with its parts (keys are tau2's `RewardType` values) and what could not be evaluated."""

    reward: float
    breakdown: dict[str, float] = field(default_factory=dict)
    nl_skipped: bool = False  # the task's reward basis includes NL assertions, left out of `reward`
    note: str = ""


def trajectory_calls(messages: list[Message]) -> list[ToolCall]:
    """Every tool call in the trajectory, agent's and user's, in order."""
    return [
        call
        for m in messages
        if isinstance(m, (AssistantMessage, UserMessage))
        for call in m.tool_calls or []
    ]


def action_matches(action: Action, call: ToolCall) -> bool:
    """tau2's matching rule: same tool, equal values on `compare_args`.

    With `compare_args` unset tau2 compares the arguments the *call* has, so a call that omits an
    argument can still match; that rule is kept so that this reading agrees with tau2's.
    """
    if action.name != call.name:
        return False
    keys = call.arguments.keys() if action.compare_args is None else action.compare_args
    return {k: v for k, v in call.arguments.items() if k in keys} == {
        k: v for k, v in action.arguments.items() if k in keys
    }


def _communicated(info: str, messages: list[Message]) -> bool:
    """tau2's rule: case-insensitive substring of an assistant text, commas removed from the text."""
    needle = info.lower()
    return any(
        isinstance(m, AssistantMessage)
        and m.has_text_content()
        and needle in m.content.lower().replace(",", "")
        for m in messages
    )


def state_digest(env: Environment) -> tuple[str | None, str | None]:
    """Digests of the agent-side and user-side databases (None where a side has none).

    A digest is the SHA-256 of the database dump as sorted-key JSON: digests rather than dumps are kept
    and cached because an airline database dump holds tens of megabytes.
    """
    return tuple(  # type: ignore[return-value]
        None
        if kit is None
        else hashlib.sha256(json.dumps(kit.db.model_dump(), sort_keys=True, default=str).encode()).hexdigest()
        for kit in (env.tools, env.user_tools)
    )


def _initial_environment(domain: str, task: Task, solo: bool) -> Environment:
    """A fresh environment in the task's initial state (initialisation data and actions; no history)."""
    make_env = registry.get_env_constructor(domain)
    env = make_env(solo_mode=True) if solo else make_env()
    state = task.initial_state
    env.set_state(
        initialization_data=state.initialization_data if state else None,
        initialization_actions=state.initialization_actions if state else None,
        message_history=[],
    )
    return env


def replayed_environment(domain: str, task: Task, messages: list[Message], solo: bool) -> Environment:
    """The environment a trajectory leaves behind: the task's initial state, then every call replayed
    (a failing call leaves an error result, as it did during the run)."""
    env = _initial_environment(domain, task, solo)
    for call in trajectory_calls(messages):
        env.get_response(call)
    return env


def gold_digest(domain: str, task: Task) -> tuple[str | None, str | None]:
    """`state_digest` after the task's gold actions; cached, since it depends on the task only."""
    return _gold_digest(domain, task.model_dump_json())


@functools.lru_cache(maxsize=1024)
def _gold_digest(domain: str, task_json: str) -> tuple[str | None, str | None]:
    """The gold actions run in a non-solo environment with their own requestor, through
    `make_tool_call` (no tool sync after each), failures ignored: how tau2 builds its reference state."""
    task = Task.model_validate_json(task_json)
    env = _initial_environment(domain, task, solo=False)
    history = (task.initial_state.message_history if task.initial_state else None) or []
    for call in trajectory_calls(history):
        env.get_response(call)
    for action in gold_actions(task):
        try:
            env.make_tool_call(action.name, requestor=action.requestor, **action.arguments)
        except Exception:  # noqa: BLE001 - tau2 ignores failing gold actions too
            pass
    return state_digest(env)


def harness_reward(
    domain: str,
    task: Task,
    messages: list[Message],
    termination: str,
    solo: bool,
    final_env: Environment | None = None,
) -> HarnessReward:
    """The reward of one trajectory by our reading of tau2's rules (see the module docstring).

    The state is `final_env` when given (the runner passes the environment the run itself left, which
    also checks that tau2's replay reproduces it), else the trajectory replayed in a fresh environment.
    """
    if termination not in CLEAN_STOPS:
        return HarnessReward(0.0, note=f"ended without a clean stop: {termination}")
    criteria = task.evaluation_criteria
    if criteria is None:
        return HarnessReward(1.0, note="no evaluation criteria")
    basis = {RewardType(b).value for b in criteria.reward_basis}
    calls = trajectory_calls(messages)
    parts: dict[str, float] = {}
    state_bases = basis & {RewardType.DB.value, RewardType.ENV_ASSERTION.value}
    if state_bases and criteria.actions is None and criteria.env_assertions is None:
        parts.update(dict.fromkeys(state_bases, 1.0))  # nothing to compare the state with
    elif state_bases:
        env = final_env if final_env is not None else replayed_environment(domain, task, messages, solo)
        if RewardType.DB.value in basis:
            parts[RewardType.DB.value] = float(state_digest(env) == gold_digest(domain, task))
        if RewardType.ENV_ASSERTION.value in basis:
            met = [
                env.run_env_function_call(assertion) == assertion.assert_value
                for assertion in criteria.env_assertions or []
            ]
            parts[RewardType.ENV_ASSERTION.value] = float(all(met))
    if RewardType.ACTION.value in basis:
        actions = criteria.actions or []
        parts[RewardType.ACTION.value] = float(all(any(action_matches(a, c) for c in calls) for a in actions))
    if RewardType.COMMUNICATE.value in basis:
        info = criteria.communicate_info or []
        parts[RewardType.COMMUNICATE.value] = float(all(_communicated(i, messages) for i in info))
    reward = 1.0
    for value in parts.values():
        reward *= value
    return HarnessReward(reward, parts, nl_skipped=RewardType.NL_ASSERTION.value in basis)


def failure_category(
    task: Task, messages: list[Message], termination: str, breakdown: dict[str, float]
) -> str:
    """Why a run with reward < 1 failed: one of `FAILURE_CATEGORIES` (definitions above).

    The gold actions are walked in gold order and the first one no call matches decides the category.
    """
    if termination not in CLEAN_STOPS:
        return PREMATURE_END
    state_parts = (RewardType.DB.value, RewardType.ENV_ASSERTION.value, RewardType.ACTION.value)
    if breakdown.get(RewardType.COMMUNICATE.value, 1.0) < 1.0 and all(
        breakdown.get(b, 1.0) >= 1.0 for b in state_parts
    ):
        return MISSING_INFO
    calls = trajectory_calls(messages)
    gold = gold_actions(task)
    for action in gold:
        if any(action_matches(action, c) for c in calls):
            continue
        if any(c.name == action.name for c in calls):
            return WRONG_ARGUMENT
        stray = [c for c in calls if not any(action_matches(a, c) for a in gold)]
        return WRONG_TOOL if stray else MISSING_CALL
    return STATE_MISMATCH


def gold_actions(task: Task) -> list[Action]:
    """The task's gold actions, in order (empty when it has none)."""
    return list((task.evaluation_criteria.actions if task.evaluation_criteria else None) or [])
