"""ACEBench's agent category: episodes against the phone apps, the final-state check and process accuracy.

- multi_step: the agent alone works through the task; every reply that is not "finish conversation" goes
  to execution, as in ACEBench (a reply with no call gets "use the known conditions" back), and counts as a
  process step.
- multi_turn: a user simulator (a ChatBackend) talks with the agent; replies with calls go to execution and
  are the process steps, plain replies go to the user.
- end-to-end: the saved attributes of each involved class equal the ground truth's, compared as ACEBench's
  agent_checker does (every saved attribute must be in the answer; a dict answer is checked key by key over
  the answer's keys, anything else by equality). No executed call means no state, a failure, as in ACEBench.
  A ground-truth class with no instance of exactly that name is not compared (ACEBench's loop silently passes
  it); we list it under `unchecked_classes`.
- process accuracy: the share of milestone steps found in order among the process steps (best over
  alternative milestone lists), 1.0 for a solved item. Steps are compared as parsed calls, falling back to
  the stripped text (ACEBench compares raw text only, which a tool-calling agent can never reproduce).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from envgen.llm.backends import ChatBackend
from evals.acebench.apps import Scenario
from evals.acebench.calls import Call, CallParseError, calls_from_message, parse_text_calls, render_calls
from evals.acebench.data import AceBenchItem
from evals.acebench.prompts import AGENT, USER, context_block

FINISH = "finish conversation"
NUDGE = "Please do not ask me any questions, use the known conditions to solve the problem"


@dataclass
class Episode:
    """What an agent did in one task."""

    process: list[str] = field(default_factory=list)  # one entry per step sent to execution
    executed: int = 0  # steps whose calls ran
    termination: str = "finished"  # finished | user_stop | max_steps | error
    messages: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _result_text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)


def _execute(scenario: Scenario, calls: list[Call]) -> tuple[list[Any], bool]:
    return scenario.execute([(name, args) for call in calls for name, args in call.items()])


def _feed_results(msg: dict[str, Any], results: list[Any], history: list[dict[str, Any]]) -> None:
    """Results back to the agent: `tool` messages for tool calls, one text turn for text calls."""
    history.append({k: v for k, v in msg.items() if k in ("role", "content", "tool_calls")})
    tool_calls = msg.get("tool_calls") or []
    if tool_calls and len(tool_calls) == len(results):
        for tc, res in zip(tool_calls, results, strict=True):
            history.append({"role": "tool", "tool_call_id": tc.get("id", ""), "content": _result_text(res)})
    else:
        history.append({"role": "user", "content": "execution result: " + _result_text(results)})


def agent_messages(item: AceBenchItem) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": AGENT.format(context=context_block(item.time))},
        {"role": "user", "content": item.question},
    ]


@dataclass
class EpisodeSetup:
    """What an episode runs against: the apps, the agent, the tools offered and their name map."""

    scenario: Scenario
    agent: ChatBackend
    tools: list[dict[str, Any]]
    name_map: dict[str, str]
    max_steps: int = 20


async def _agent_step(setup: EpisodeSetup, ep: Episode) -> tuple[bool, str, str]:
    """One agent reply; calls in it are executed and fed back. Returns (called, text, parse error)."""
    msg = await setup.agent.complete(ep.messages, setup.tools)
    calls, err = calls_from_message(msg, setup.name_map)
    text = msg.get("content") or ""
    if calls:
        ep.process.append(render_calls(calls))
        results, counted = _execute(setup.scenario, calls)
        _feed_results(msg, results, ep.messages)
        ep.executed += counted
    return bool(calls), text, err


async def run_multi_step(item: AceBenchItem, setup: EpisodeSetup) -> Episode:
    ep = Episode(messages=agent_messages(item))
    try:
        for _ in range(setup.max_steps):
            called, text, err = await _agent_step(setup, ep)
            if called:
                continue
            if FINISH in text:
                return ep
            ep.process.append(text)
            ep.messages.append({"role": "assistant", "content": text})
            ep.messages.append({"role": "user", "content": f"execution result: {err or NUDGE}"})
    except Exception as exc:  # a backend failure ends the episode; it is recorded, not raised
        ep.termination, ep.notes = "error", [*ep.notes, f"agent error: {type(exc).__name__}: {exc}"]
        return ep
    ep.termination = "max_steps"
    return ep


async def run_multi_turn(item: AceBenchItem, setup: EpisodeSetup, user: ChatBackend) -> Episode:
    ep = Episode(messages=agent_messages(item)[:1])
    user_view: list[dict[str, Any]] = [
        {"role": "system", "content": USER.format(question=item.question)},
        {"role": "user", "content": "(The assistant is waiting for your first message.)"},
    ]
    try:
        opening = (await user.complete(user_view, []))["content"] or ""
        user_view.append({"role": "assistant", "content": opening})
        ep.messages.append({"role": "user", "content": opening})
        for _ in range(setup.max_steps):
            called, text, _err = await _agent_step(setup, ep)
            if called:
                continue
            ep.messages.append({"role": "assistant", "content": text})
            if FINISH in text:
                return ep
            user_view.append({"role": "user", "content": text})
            reply = (await user.complete(user_view, []))["content"] or ""
            user_view.append({"role": "assistant", "content": reply})
            if FINISH in reply:
                ep.termination = "user_stop"
                return ep
            ep.messages.append({"role": "user", "content": reply})
    except Exception as exc:  # a backend failure ends the episode; it is recorded, not raised
        ep.termination, ep.notes = "error", [*ep.notes, f"backend error: {type(exc).__name__}: {exc}"]
        return ep
    ep.termination = "max_steps"
    return ep


_DELIM_QUOTE = re.compile(r"(?<=[=\[{:,(])\s*'|'(?=\s*[,)\]}:])")


def parse_step(step: str) -> list[Call] | None:
    """A milestone step as calls, or None. ACEBench writes some with unescaped apostrophes inside single
    quotes (`'Domino's'`); a second try turns only the delimiting quotes into double quotes."""
    for text in (step, _DELIM_QUOTE.sub(lambda m: m.group(0).replace("'", '"'), step)):
        try:
            return parse_text_calls(text)
        except CallParseError:
            continue
    return None


def milestone_lists(mile_stone: list[Any]) -> list[list[str]]:
    if mile_stone and all(isinstance(m, list) for m in mile_stone):
        return [[str(s) for s in m] for m in mile_stone]
    return [[str(s) for s in mile_stone]] if mile_stone else []


def replay_gold(item: AceBenchItem, scenario: Scenario) -> Episode:
    """Execute the first milestone list step by step: the reference agent for the harness check."""
    ep = Episode()
    lists = milestone_lists(item.mile_stone)
    for step in lists[0] if lists else []:
        ep.process.append(step)
        calls = parse_step(step)
        if calls is None:
            ep.notes.append(f"milestone step not parseable: {step[:80]}")
            continue
        ep.executed += _execute(scenario, calls)[1]
    return ep


def _same_step(done: str, stone: str) -> bool:
    if done.strip() == stone.strip():
        return True
    a, b = parse_step(done), parse_step(stone)
    return a is not None and a == b


def process_accuracy(process: list[str], mile_stone: list[Any]) -> float:
    """Best share of a milestone list matched in order (greedy, as ACEBench's agent_eval_process)."""
    best = 0.0
    lists = milestone_lists(mile_stone)
    if not lists:
        return 1.0
    for stones in lists:
        if not stones:
            return 1.0
        pos = hits = 0
        for stone in stones:
            while pos < len(process):
                pos += 1
                if _same_step(process[pos - 1], stone):
                    hits += 1
                    break
        best = max(best, hits / len(stones))
    return round(best, 3)


def final_state_check(
    state: list[dict[str, Any]], truth: Any, executed: int
) -> tuple[bool, list[str], list[str]]:
    """(valid, errors, unchecked ground-truth classes) by ACEBench's agent rules."""
    expected = truth if isinstance(truth, list) else [truth]
    if executed == 0:
        return False, ["no call was executed, so there is no final state"], []
    if len(expected) != len(state):
        return False, [f"wrong number of classes: {len(state)} saved, {len(expected)} expected"], []
    errors: list[str] = []
    unchecked: list[str] = []
    for want in expected:
        if not isinstance(want, dict) or not want:
            continue
        got = next((s for s in state if set(s) == set(want)), None)
        cls = next(iter(want))
        if got is None:
            unchecked.append(cls)
            continue
        want_attrs, got_attrs = want[cls], got[cls]
        for attr, value in got_attrs.items():
            if attr not in want_attrs:
                errors.append(f"{cls}.{attr} missing in the ground truth")
            elif isinstance(want_attrs[attr], dict):
                for key, sub in want_attrs[attr].items():
                    if not isinstance(value, dict) or key not in value or value[key] != sub:
                        errors.append(f"{cls}.{attr}[{key!r}] differs")
            elif want_attrs[attr] != value:
                errors.append(f"{cls}.{attr} differs")
    return not errors, errors, unchecked
