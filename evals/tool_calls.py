"""`tool_call_accuracy`: a graded, per-turn score of the next assistant turn on held-out dialogues.

Whole-task success needs every call of a chain right, so a model that is learning shows 0 there long
after it has started to pick the right tools. This metric replays a held-out dialogue (the gold one: the
scripted user and an error-free teacher on a held-out task) turn by turn: at each assistant turn the agent
gets the gold prefix and answers greedily, and the answer is scored against the gold turn:

- a turn whose gold answer calls a tool: *well-formed* (the answer parses into a call), *name* (its first
  call names the gold tool) and *name + arguments* (and its arguments equal the gold ones as values, after
  type normalisation and order-free, like BFCL's AST check: `2` equals `2.0` and `"2"` for a number,
  strings compare trimmed and case-folded, an extra or missing argument is wrong);
- a turn whose gold answer is text: *stopped* (the answer makes no call).

Every rate carries its sample size and Wilson 95% interval, per group (vertical, general). Two baselines
answer the same turns, so a trained model can be held against something better than zero:

- `frequency`: the domain's most frequent tool at that call position (from its training tasks; for a
  domain never trained on, from the evaluated tasks themselves, an oracle prior that only makes the
  baseline harder to beat), no arguments;
- `lexical`: the tool whose name and description share most words with the last user message, its
  required arguments filled from values in that message that fit their type (an id-like token for a
  key, a quoted text for a string, a number for a number).

Both call a tool exactly when the last message is the user's, the pattern of these dialogues.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envgen.simulate.rollout import Trajectory
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher
from envgen.tasks.chains import Task
from evals.synthetic import DomainTasks, scripted_user_rollouts, wilson_interval

TEXT = "text"  # the gold turn answers in words


@dataclass(frozen=True)
class Turn:
    """One assistant turn of a held-out dialogue: what came before, the tools offered, the gold answer."""

    domain: str
    group: str  # "vertical" | "general"
    task_id: str
    prefix: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    gold_name: str | None  # None: the gold turn is text
    gold_arguments: dict[str, Any]
    position: int  # index of this call among the dialogue's calls (calls so far, for a text turn)


@dataclass(frozen=True)
class TurnVerdict:
    expects_call: bool
    well_formed: bool = False
    name: bool = False
    name_arguments: bool = False
    stopped: bool = False


def _arguments(call: dict[str, Any]) -> dict[str, Any] | None:
    raw = call.get("function", call).get("arguments")
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return {} if raw is None else None


def dialogue_turns(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], domain: str, group: str, task_id: str
) -> list[Turn]:
    """Every assistant turn of a gold dialogue, with its prefix."""
    turns, calls = [], 0
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        made = message.get("tool_calls") or []
        if made:
            fn = made[0].get("function", made[0])
            name, arguments = fn.get("name"), _arguments(made[0]) or {}
        else:
            name, arguments = None, {}
        turns.append(Turn(domain, group, task_id, messages[:i], tools, name, arguments, calls))
        calls += bool(made)
    return turns


def _schema(tools: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for t in tools:
        fn = t.get("function", t)
        if fn.get("name") == name:
            return (fn.get("parameters") or {}).get("properties") or {}
    return {}


def normalise(value: Any, kind: str | None) -> Any:
    """A value as the parameter's JSON type reads it: numbers as floats (numeric text included), booleans
    from `true`/`false` text, strings trimmed and case-folded."""
    if kind in ("number", "integer"):
        if isinstance(value, bool):
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if kind == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def arguments_match(predicted: dict[str, Any], gold: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Same argument names, and every value equal after normalising by the parameter's type."""
    if set(predicted) != set(gold):
        return False
    for name, value in gold.items():
        kind = (schema.get(name) or {}).get("type")
        if normalise(predicted[name], kind) != normalise(value, kind):
            return False
    return True


def judge_turn(turn: Turn, reply: dict[str, Any]) -> TurnVerdict:
    """Score one answer (an OpenAI-format assistant message, `parse_errors` when its text did not parse)."""
    calls = reply.get("tool_calls") or []
    if turn.gold_name is None:
        return TurnVerdict(expects_call=False, stopped=not calls and not reply.get("parse_errors"))
    if not calls:
        return TurnVerdict(expects_call=True)
    first = calls[0].get("function", calls[0])
    arguments = _arguments(calls[0])
    well_formed = arguments is not None and bool(first.get("name"))
    name = well_formed and first.get("name") == turn.gold_name
    exact = name and arguments_match(
        arguments or {}, turn.gold_arguments, _schema(turn.tools, turn.gold_name)
    )
    return TurnVerdict(expects_call=True, well_formed=well_formed, name=name, name_arguments=exact)


def _rate(hits: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(hits, n)
    return {
        "rate": round(hits / n, 4) if n else 0.0,
        "hits": hits,
        "n": n,
        "ci95": [round(low, 4), round(high, 4)],
    }


def grade(turns: list[Turn], verdicts: list[TurnVerdict]) -> dict[str, dict[str, Any]]:
    """Rates by group (and `all`): well_formed, name, name_arguments over call turns, stopped over text
    turns, each with hits, n and the Wilson 95% interval."""
    by_group: dict[str, list[TurnVerdict]] = defaultdict(list)
    for turn, verdict in zip(turns, verdicts, strict=True):
        by_group[turn.group].append(verdict)
        by_group["all"].append(verdict)
    out = {}
    for group, vs in sorted(by_group.items()):
        calls = [v for v in vs if v.expects_call]
        texts = [v for v in vs if not v.expects_call]
        out[group] = {
            "well_formed": _rate(sum(v.well_formed for v in calls), len(calls)),
            "name": _rate(sum(v.name for v in calls), len(calls)),
            "name_arguments": _rate(sum(v.name_arguments for v in calls), len(calls)),
            "stopped": _rate(sum(v.stopped for v in texts), len(texts)),
        }
    return out


def table_rows(agent: str, graded: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group for a score table: each rate with its interval as text."""
    rows = []
    for group, rates in graded.items():
        row: dict[str, Any] = {"model": agent, "group": group, "call_turns": rates["name"]["n"]}
        for metric in ("well_formed", "name", "name_arguments", "stopped"):
            r = rates[metric]
            row[metric] = r["rate"]
            row[f"{metric}_ci95"] = f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        row["text_turns"] = rates["stopped"]["n"]
        rows.append(row)
    return rows


# --- baselines ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the of to for and or by on in at with from my me i you your please can could would like need "
    "it is be this that then also next after once done id its their our we us".split()
)
_ID = re.compile(r"\b[A-Z]{2,5}-\d+\b")
_QUOTED = re.compile(r"'([^']*)'")
_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?(?![\w-])")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower().replace("_", " ")) if w not in _STOP}


def _answer(name: str | None, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    if name is None:
        return {"role": "assistant", "content": "Done."}
    call = {"id": "call_0", "type": "function", "function": {"name": name, "arguments": arguments or {}}}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def _user_spoke_last(turn: Turn) -> bool:
    return bool(turn.prefix) and turn.prefix[-1].get("role") == "user"


class FrequencyBaseline:
    """The domain's most frequent tool at the turn's call position (then at any position)."""

    name = "baseline:frequency"

    def __init__(self, train_calls: dict[str, list[list[str]]]):
        """`train_calls`: domain -> the tool-name sequence of each of its training tasks."""
        self.by_position: dict[tuple[str, int], Counter] = defaultdict(Counter)
        self.by_domain: dict[str, Counter] = defaultdict(Counter)
        for domain, chains in train_calls.items():
            self._count(domain, chains)

    def _count(self, domain: str, chains: Iterable[list[str]]) -> None:
        for chain in chains:
            for position, name in enumerate(chain):
                self.by_position[domain, position][name] += 1
                self.by_domain[domain][name] += 1

    def answer(self, turns: list[Turn]) -> list[dict[str, Any]]:
        # A domain never trained on gets its prior from the evaluated dialogues themselves.
        unseen: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for t in turns:
            if t.domain not in self.by_domain and t.gold_name is not None:
                unseen[t.domain].setdefault(t.task_id, []).append(t.gold_name)
        for domain, chains in unseen.items():
            self._count(domain, chains.values())
        out = []
        for t in turns:
            if not _user_spoke_last(t):
                out.append(_answer(None))
                continue
            counts = self.by_position.get((t.domain, t.position)) or self.by_domain.get(t.domain) or Counter()
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            out.append(_answer(ranked[0][0] if ranked else None))
        return out


class LexicalBaseline:
    """The tool sharing most words with the last user message; required arguments from its values."""

    name = "baseline:lexical"

    def answer(self, turns: list[Turn]) -> list[dict[str, Any]]:
        return [self._one(t) for t in turns]

    def _one(self, turn: Turn) -> dict[str, Any]:
        if not _user_spoke_last(turn):
            return _answer(None)
        message = str(turn.prefix[-1].get("content") or "")
        said = _words(message)
        best, best_score = None, 0
        for t in turn.tools:
            fn = t.get("function", t)
            score = len(said & (_words(fn.get("name", "")) | _words(fn.get("description", ""))))
            if score > best_score:
                best, best_score = fn, score
        if best is None:
            return _answer(None)
        return _answer(best["name"], fill_arguments(best.get("parameters") or {}, message))


def fill_arguments(parameters: dict[str, Any], message: str) -> dict[str, Any]:
    """Required arguments from the message's values, in order, each of a fitting type."""
    ids = _ID.findall(message)
    quoted = _QUOTED.findall(message)
    unquoted = _QUOTED.sub(" ", _ID.sub(" ", message))
    numbers = [float(n) if "." in n else int(n) for n in _NUMBER.findall(unquoted)]
    props = parameters.get("properties") or {}
    out: dict[str, Any] = {}
    for name in parameters.get("required") or []:
        kind = (props.get(name) or {}).get("type")
        if kind in ("integer", "number") and numbers:
            out[name] = numbers.pop(0)
        elif kind == "string" and name.endswith("_id") and ids:
            out[name] = ids.pop(0)
        elif kind == "string" and quoted:
            out[name] = quoted.pop(0)
    return out


# --- running it ---------------------------------------------------------------------------------------


def gold_dialogues(suite: dict[str, DomainTasks], journal_dir: Path) -> list[tuple[str, Trajectory]]:
    """(domain, dialogue) for every task of `suite`: the scripted user and an error-free scripted teacher,
    so each dialogue is the gold one (every call the task's gold call, in order)."""
    perfect = ErrorModel(wrong_argument=0, skipped_step=0, unknown_tool=0, early_stop=0, recover=1.0)

    def teacher(task: Task, _rollout: int) -> ScriptedTeacher:
        return ScriptedTeacher(task, perfect, seed=0)

    rolled = scripted_user_rollouts(suite, teacher, lambda slug: journal_dir / f"{slug}.jsonl")
    return [(slug, d) for slug in sorted(rolled) for d in sorted(rolled[slug], key=lambda d: d.task_id)]


def heldout_turns(
    dialogues: list[tuple[str, Trajectory]], groups: dict[str, str], per_group: int, seed: int = 0
) -> list[Turn]:
    """Every assistant turn of the dialogues, a seeded sample of at most `per_group` per group (0 = all)."""
    by_group: dict[str, list[Turn]] = defaultdict(list)
    for slug, d in dialogues:
        by_group[groups[slug]] += dialogue_turns(d.messages, d.tools, slug, groups[slug], d.task_id)
    turns = []
    for group, found in sorted(by_group.items()):
        if per_group and len(found) > per_group:
            found = random.Random(f"{seed}:{group}").sample(found, per_group)
        turns += found
    return turns


def answers(agent: Any, turns: list[Turn]) -> list[dict[str, Any]]:
    """The agent's greedy answer to every turn: batched for an in-process model (`greedy_batch`), the
    baselines' own rule, else one `complete` per turn at temperature 0, concurrently."""
    if hasattr(agent, "greedy_batch"):
        return agent.greedy_batch([(t.prefix, t.tools) for t in turns])
    if hasattr(agent, "answer"):
        return agent.answer(turns)

    async def all_turns() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(*(agent.complete(t.prefix, t.tools, temperature=0.0) for t in turns))
        )

    return asyncio.run(all_turns())


def score_tool_calls(
    turns: list[Turn], agents: dict[str, Any], train_calls: dict[str, list[list[str]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """agent -> group -> rates, for every agent and both baselines, on the same turns."""
    everyone = {
        **agents,
        FrequencyBaseline.name: FrequencyBaseline(train_calls),
        LexicalBaseline.name: LexicalBaseline(),
    }
    return {
        label: grade(turns, [judge_turn(t, a) for t, a in zip(turns, answers(agent, turns), strict=True)])
        for label, agent in everyone.items()
    }
