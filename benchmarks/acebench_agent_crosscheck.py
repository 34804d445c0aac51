"""Does our ACEBench agent harness agree with ACEBench's own code? Call by call, state by state, verdict by
verdict, on the whole agent category of a checkout.

For every agent item, several call sequences ("outputs") run through both implementations from the same
starting state: our `evals.acebench.apps.Scenario`, and ACEBench's own scenario classes executed by its own
`execute_agent_func_call` (imported from the checkout for this comparison only; the harness never imports
it). The sequences are the possible answer's milestone lists (each alternative), deliberately wrong ones
(the milestones without their last step; with their last step done twice; with every argument of their last
step changed) and a probe of every offered function called without arguments. Compared: every reply
(through ACEBench's own JSON round trip), the saved final state, and the end-to-end verdict (ours:
`final_state_check`; ACEBench's: its `agent_checker` over the ground-truth classes, as its `agent_eval`
loop applies it).

    .venv/bin/python benchmarks/acebench_agent_crosscheck.py --acebench /path/to/ACEBench [--language en]
"""

from __future__ import annotations

import argparse
import ast
import importlib
import itertools
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from evals.acebench.agent import final_state_check, milestone_lists, parse_step
from evals.acebench.apps import Scenario
from evals.acebench.data import AceBenchItem, load_acebench

Calls = list[tuple[str, dict[str, Any]]]
_run_ids = itertools.count()


class AceBenchCode:
    """ACEBench's own execution, saved attributes and checker, loaded from a checkout."""

    def __init__(self, root: Path, language: str) -> None:
        sys.path.insert(0, str(root))
        self.language = language
        self.utils = {
            kind: importlib.import_module(f"model_inference.{kind}.{kind}_utils")
            for kind in ("multi_step", "multi_turn")
        }
        self.checker = importlib.import_module("model_eval.checker").agent_checker
        self.saved = _literal_assignment(root / "model_inference" / "common_inference.py", "SAVED_CLASS")

    def run(self, item: AceBenchItem, steps: list[Calls]) -> tuple[list[list[Any]], list[dict[str, Any]]]:
        """(replies per step, saved state) of ACEBench's classes on `steps`, fresh instances per run."""
        execute = self.utils[item.subcategory].execute_agent_func_call
        model = f"crosscheck{next(_run_ids)}"  # ACEBench caches instances in globals by model and item
        replies, kept = [], []
        for step in steps:
            text = [f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})" for name, args in step]
            results, instances = execute(
                text, item.initial_config, item.involved_classes, model, item.id, self.language
            )
            replies.append([_acebench_parse(r) for r in results] if isinstance(results, list) else [results])
            if isinstance(instances, dict) and instances not in kept:
                kept.append(instances)
        state = [
            {name: {k: v for k, v in vars(obj).items() if k in self.saved[name]}}
            for instances in kept
            for name, obj in instances.items()
        ]
        return replies, json.loads(json.dumps(state, default=str))

    def verdict(self, state: list[dict[str, Any]], truth: Any) -> bool:
        """ACEBench's end-to-end verdict: class count, then its checker on each ground-truth class that has
        a same-named saved class (a result carried over when none has, as in its loop)."""
        expected = truth if isinstance(truth, list) else [truth]
        if len(expected) != len(state):
            return False
        valid, last = True, {"valid": True}
        for want in expected:
            got = next((s for s in state if set(s) == set(want)), None)
            if got is not None:
                last = self.checker(got, want)
            valid &= last["valid"]
        return valid


def _literal_assignment(path: Path, name: str) -> Any:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} not found in {path}")


def _acebench_parse(reply: Any) -> Any:
    """What ACEBench's execution role hands the agent: each reply string JSON-decoded where it parses."""
    try:
        return json.loads(reply)
    except (TypeError, json.JSONDecodeError):
        return reply


def _ours_as_acebench(result: Any) -> Any:
    """Our reply through ACEBench's stringification (dicts as JSON, other non-strings as str) and parse."""
    if isinstance(result, str):
        text = result
    elif isinstance(result, dict):
        try:
            text = json.dumps(result)
        except TypeError:
            text = str(result)
    else:
        text = str(result)
    return _acebench_parse(text)


def ours(
    item: AceBenchItem, root: Path, language: str, steps: list[Calls]
) -> tuple[list[list[Any]], list, int]:
    scenario = Scenario.build(root, language, item.subcategory, item.involved_classes, item.initial_config)
    replies, executed = [], 0
    for step in steps:
        results, counted = scenario.execute(step)
        replies.append([_ours_as_acebench(r) for r in results])
        executed += counted
    return replies, scenario.state(), executed


def sequences(item: AceBenchItem) -> dict[str, list[Calls]]:
    """Named call sequences for one item (each a list of steps, each step a list of calls)."""
    out: dict[str, list[Calls]] = {}
    for i, stones in enumerate(milestone_lists(item.mile_stone)):
        steps = [[(n, a) for call in (parse_step(s) or []) for n, a in call.items()] for s in stones]
        steps = [s for s in steps if s]
        if not steps:
            continue
        out[f"gold{i}"] = steps
        if len(steps) > 1:
            out[f"truncated{i}"] = steps[:-1]
        out[f"repeated{i}"] = [*steps, steps[-1]]
        out[f"mutated{i}"] = [*steps[:-1], [(n, {k: _mutate(v) for k, v in a.items()}) for n, a in steps[-1]]]
    out["probe"] = [[(f["name"], {})] for f in item.functions]
    return out


def _mutate(value: Any) -> Any:
    """A wrong argument of the same kind: another number, another string, a list or dict mutated inside."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + " (x)"
    if isinstance(value, list):
        return [_mutate(v) for v in value]
    if isinstance(value, dict):
        return {k: _mutate(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--acebench", type=Path, required=True, help="an ACEBench checkout")
    parser.add_argument("--language", default="en", choices=["en", "zh"])
    parser.add_argument("--show", type=int, default=8, help="differences to print")
    args = parser.parse_args()
    data = load_acebench(args.acebench, args.language)
    code = AceBenchCode(args.acebench.resolve(), args.language)
    counts: Counter[str] = Counter()
    differences: list[str] = []
    gold_rows = []
    for item in data.category("agent"):
        for label, steps in sequences(item).items():
            kind = label.rstrip("0123456789")
            our_replies, our_state, executed = ours(item, data.root, args.language, steps)
            their_replies, their_state = code.run(item, steps)
            calls = sum(len(r) for r in their_replies)  # replies (a multi_turn step that raises has one)
            same_calls = sum(
                sum(a == b for a, b in zip(mine, theirs, strict=True)) if len(mine) == len(theirs) else 0
                for mine, theirs in zip(our_replies, their_replies, strict=True)
            )
            counts[f"{kind}:calls"] += calls
            counts[f"{kind}:calls_same"] += same_calls
            counts[f"{kind}:runs"] += 1
            counts[f"{kind}:states_same"] += our_state == their_state
            our_verdict = final_state_check(our_state, item.answer, executed)[0]
            their_verdict = code.verdict(their_state, item.answer)
            counts[f"{kind}:verdicts_same"] += our_verdict == their_verdict
            if our_replies != their_replies or our_state != their_state or our_verdict != their_verdict:
                differences.append(
                    f"{item.id} {label}: replies {our_replies == their_replies}, "
                    f"state {our_state == their_state}, verdicts {our_verdict}/{their_verdict}"
                )
                for mine, theirs in zip(our_replies, their_replies, strict=True):
                    if mine != theirs:
                        differences.append(f"    ours   {json.dumps(mine, default=str)[:160]}")
                        differences.append(f"    theirs {json.dumps(theirs, default=str)[:160]}")
                        break
            if label == "gold0":
                gold_rows.append((item.id, our_verdict, their_verdict))
    items = len(data.category("agent"))
    print(f"ACEBench agent category ({args.language}), {items} items, checkout {args.acebench}")
    header = ("sequence", "runs", "replies", "same", "same state", "same verdict")
    print(f"{header[0]:<10} {header[1]:>5} {header[2]:>6} {header[3]:>11} {header[4]:>11} {header[5]:>13}")
    for kind in ("gold", "truncated", "repeated", "mutated", "probe"):
        runs = counts[f"{kind}:runs"]
        print(
            f"{kind:<10} {runs:>5} {counts[f'{kind}:calls']:>6} {counts[f'{kind}:calls_same']:>11} "
            f"{counts[f'{kind}:states_same']:>11} {counts[f'{kind}:verdicts_same']:>13}"
        )
    solved_ours = sum(o for _, o, _ in gold_rows)
    solved_theirs = sum(t for _, _, t in gold_rows)
    n = len(gold_rows)
    print(
        f"gold replay (first milestone list): ours {solved_ours}/{n}, ACEBench's {solved_theirs}/{n}; "
        "items where the replay misses the ground truth in both:"
    )
    print("  " + ", ".join(i for i, o, t in gold_rows if not o and not t))
    print(f"differences ({len(differences)} lines, first {args.show}):")
    for line in differences[: args.show]:
        print(line)


if __name__ == "__main__":
    main()
