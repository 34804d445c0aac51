"""Run one benchmark suite for a set of agents and return its score rows: the loop every benchmark shares.

Every suite is scored the same way: the do-nothing floor and every agent on the same items (and, where the
suite has gold answers, their replay first, which checks the harness and must solve everything it can
run); `scores.json` is written beside; the result is a `SuiteReport` of plain values that the Dagster
layer only turns into metadata. What differs per suite (which runner, which fields a row shows) is a small
`_Suite` adapter below, so a fix to the loop or to the "needs a user endpoint" rule lands everywhere once.

Suites by name (the `benchmark_scores` partitions): `synthetic_heldout`, `tau2_<domain>`, `tau_<domain>`
(tau-bench v1 from a checkout) and `acebench_<category>` (ACEBench from a checkout).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envgen.llm.backends import ChatBackend, DoNothingAgent
from evals.synthetic import FAILURE_CATEGORIES, Score, SyntheticSuite, group_rates, score_models
from evals.tau2 import tau2_missing_reason
from evals.tool_calls import gold_dialogues, heldout_turns, score_tool_calls, table_rows

NEEDS_USER = "needs a user-simulator endpoint (set user_base_url and user_model)"
FLOOR = "floor"


@dataclass(frozen=True)
class SuiteOptions:
    """What a run needs beyond its agents; the fields mean what `BenchmarkConfig`'s of the same names do."""

    seed: int = 0
    tau2_split: str = "test"
    tau_split: str = "test"
    max_tasks: int = 0  # tau2 / tau-bench: seeded sample of tasks (0 = all)
    trials: int = 1  # tau2 / tau-bench: trials per task (pass^k)
    max_steps: int = 200
    taubench_root: Path | None = None
    acebench_root: Path | None = None
    acebench_language: str = "en"
    acebench_max_items: int = 0
    max_agent_turns: int = 20  # synthetic held-out: agent turns before an episode is cut
    rollouts_per_task: int = 1  # synthetic held-out: k seeded rollouts per task
    graded_turns_per_group: int = 600  # synthetic held-out: turns of the graded metric per group (0 = all)


@dataclass
class SuiteReport:
    """A suite's outcome as plain values. `facts` are shown as they are, `json` as JSON and `tables` as
    tables; `tables["scores"]` has one row per scored agent (floor included) with at least `model`, `n`,
    `solved`, `success`, `ci95_low` and `ci95_high`."""

    benchmark: str
    facts: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def scores(self) -> list[dict[str, Any]]:
        return self.tables.get("scores", [])


def run_suite(
    benchmark: str,
    agents: dict[str, ChatBackend],
    out: Path,
    options: SuiteOptions,
    user: ChatBackend | None = None,
    synthetic: SyntheticSuite | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> SuiteReport:
    """Score `agents` (and the floor) on `benchmark`, writing `out/scores.json`.

    `user` is the user-simulator endpoint (tau2 airline/retail, tau-bench, ACEBench multi-turn); without
    one those suites report that they need it. `synthetic` is the held-out synthetic suite. A suite that
    cannot run here (tau2 missing, no checkout) returns a report whose `facts["status"]` says why.
    """
    out.mkdir(parents=True, exist_ok=True)
    if benchmark == "synthetic_heldout":
        if synthetic is None:
            raise ValueError("synthetic_heldout needs its suite")
        return _synthetic(synthetic, agents, out, options, log)
    if benchmark.startswith(("tau2_", "tau_")):
        reason = tau2_missing_reason()
        if reason:
            return SuiteReport(benchmark, facts={"benchmark": benchmark, "status": f"not run: {reason}"})
    if benchmark.startswith("tau2_"):
        suite: _Suite | str = _tau2_suite(benchmark.removeprefix("tau2_"), options, user)
    elif benchmark.startswith("tau_"):
        suite = _taubench_suite(benchmark.removeprefix("tau_"), options, user)
    elif benchmark.startswith("acebench_"):
        suite = _acebench_suite(benchmark.removeprefix("acebench_"), options, user)
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}")
    if isinstance(suite, str):  # the data is not there: a status, not a failure
        return SuiteReport(benchmark, facts={"benchmark": benchmark, "status": suite})
    try:
        return _score(benchmark, suite, agents, out, log)
    except suite.data_missing as err:
        return SuiteReport(benchmark, facts={"benchmark": benchmark, "status": str(err)})


@dataclass
class _Suite:
    """How one suite runs an agent and shows a result; `_score` does the rest, the same for all."""

    run: Callable[[Any], Any]  # agent (or the gold marker) -> result
    gold: Any  # what `run` takes to replay the gold answers
    row: Callable[[Any], dict[str, Any]]  # result -> score-table fields beyond the model's name
    record: Callable[[Any], dict[str, Any]]  # result -> its `scores.json` entry
    harness_check: Callable[[Any], str]  # gold result -> one line
    scored: Callable[[Any], bool]  # did this result get a score (or does it need a user endpoint)?
    facts: Callable[[Any], dict[str, Any]]  # gold result -> suite facts (split, mode, data, ...)
    # (gold, results) -> (json, tables) beyond the ones every suite shows
    extra: Callable[[Any, dict[str, Any]], tuple[dict, dict]] = lambda _gold, _results: ({}, {})
    data_missing: tuple[type[Exception], ...] = ()  # errors that mean the suite's data is not there


def _score(
    benchmark: str, suite: _Suite, agents: dict[str, ChatBackend], out: Path, log: Callable[[str], None]
) -> SuiteReport:
    gold = suite.run(suite.gold)
    results = {}
    for label, agent in {FLOOR: DoNothingAgent(), **agents}.items():
        log(f"{benchmark}: {label}")
        results[label] = suite.run(agent)
    (out / "scores.json").write_text(
        json.dumps(
            [{**suite.record(r), "agent": label} for label, r in {"gold-replay": gold, **results}.items()],
            indent=1,
            default=str,
        )
    )
    scored = {label: r for label, r in results.items() if suite.scored(r)}
    report = SuiteReport(
        benchmark,
        facts={"benchmark": benchmark, **suite.facts(gold), "harness_check": suite.harness_check(gold)},
    )
    if len(scored) < len(results):
        report.facts["status"] = NEEDS_USER
        report.facts["note"] = next(r.note for r in results.values() if not suite.scored(r))
    if scored:
        report.tables["scores"] = [{"model": label, **suite.row(r)} for label, r in scored.items()]
        report.json["terminations"] = {label: r.terminations for label, r in scored.items()}
        report.json["failure_categories"] = {label: r.failures for label, r in scored.items()}
        report.facts.update({f"success/{label}": round(r.rate, 4) for label, r in scored.items()})
    extra_json, extra_tables = suite.extra(gold, results)
    report.json.update(extra_json)
    report.tables.update(extra_tables)
    return report


def _rate_fields(score: Any) -> dict[str, Any]:
    """The fields every score row shows: sample size, solved, rate and its Wilson 95% interval."""
    return {
        "n": score.n,
        "solved": score.successes,
        "success": round(score.rate, 3),
        "ci95_low": round(score.ci_low, 3),
        "ci95_high": round(score.ci_high, 3),
    }


class _TauFamily:
    """A tau2 or tau-bench result seen through the fields `_score` reads (rate, terminations, failures)."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.note = result.note
        score = result.score
        self.rate = score.rate if score else 0.0
        self.terminations = score.terminations if score else {}
        self.failures = score.failures if score else {}


def _tau_suite(
    run: Callable[[Any, ChatBackend | None], Any],
    split: str,
    user: ChatBackend | None,
    solo: bool,
    gold_user: Any,
    data_missing: tuple[type[Exception], ...] = (),
) -> _Suite:
    """tau2 and tau-bench alike, through tau2's orchestrator and evaluator. The gold replay checks the
    harness; without a user endpoint it talks to the scripted user, which is why it is reported apart."""
    from evals import tau2

    def row(wrapped: _TauFamily) -> dict[str, Any]:
        r = wrapped.result
        return {
            **_rate_fields(r.score),
            "tasks": len(r.task_ids),
            "trials": r.num_trials,
            **{f"pass^{k}": v for k, v in r.pass_hat_k.items()},
            "harness_agrees": f"{r.agreement[0]}/{r.agreement[1]}",
        }

    def harness_check(wrapped: _TauFamily) -> str:
        g = wrapped.result
        return (
            f"gold replay ({'solo' if solo else g.user + ' user'}): {g.score.successes}/{g.score.n} solved, "
            f"harness agrees with tau2 on {g.agreement[0]}/{g.agreement[1]}"
        )

    def facts(wrapped: _TauFamily) -> dict[str, Any]:
        g = wrapped.result
        shown = {
            "split": split,
            "mode": g.mode,
            "user_simulator": user.name if user else "none (solo)" if solo else "none configured",
        }
        return {**shown, "data_note": g.note} if g.note else shown

    return _Suite(
        run=lambda agent: _TauFamily(run(agent, gold_user if agent is tau2.GOLD else user)),
        gold=tau2.GOLD,
        row=row,
        # The score's fields at the top level, like every benchmark's `scores.json` (regression check).
        record=lambda w: {**w.result.to_dict(), **(asdict(w.result.score) if w.result.score else {})},
        harness_check=harness_check,
        scored=lambda w: w.result.status == tau2.SCORED,
        facts=facts,
        data_missing=data_missing,
    )


def _tau_run_options(options: SuiteOptions, task_ids: list[str] | None) -> dict[str, Any]:
    return {
        "num_trials": options.trials,
        "max_steps": options.max_steps,
        "seed": options.seed,
        "task_ids": task_ids,
    }


def _tau2_suite(domain: str, options: SuiteOptions, user: ChatBackend | None) -> _Suite:
    """tau2-bench `domain` from the installed package; telecom runs solo without a user endpoint."""
    from evals import tau2

    solo = user is None and tau2.supports_solo(domain)
    split = options.tau2_split
    ids = tau2.sample_task_ids(domain, split, options.max_tasks, options.seed) if options.max_tasks else None

    def run(agent: Any, who: ChatBackend | None) -> Any:
        return tau2.run_tau2(domain, agent, who, split=split, **_tau_run_options(options, ids))

    return _tau_suite(run, split, user, solo, user if user is not None or solo else tau2.SCRIPTED)


def _taubench_suite(domain: str, options: SuiteOptions, user: ChatBackend | None) -> _Suite | str:
    """tau-bench v1 `domain` from its checkout: its tasks and databases in tau2's environments, scored by
    v1's rule (final database hash and required outputs). A missing checkout is returned as a status."""
    from evals import tau2, taubench

    root, split = options.taubench_root, options.tau_split
    if root is None:
        return "data not found: no tau-bench checkout configured"
    try:
        ids = (
            taubench.sample_task_ids(root, domain, split, options.max_tasks, options.seed)
            if options.max_tasks
            else None
        )
    except taubench.TauBenchDataNotFound as err:
        return str(err)

    def run(agent: Any, who: ChatBackend | None) -> Any:
        return taubench.run_taubench(root, domain, agent, who, split=split, **_tau_run_options(options, ids))

    gold_user = user if user is not None else tau2.SCRIPTED
    # Without a task sample the checkout is first read by the gold replay: a missing one is a status there.
    return _tau_suite(run, split, user, False, gold_user, (taubench.TauBenchDataNotFound,))


def _acebench_suite(category: str, options: SuiteOptions, user: ChatBackend | None) -> _Suite | str:
    """ACEBench `category` by its own rules; the replay of the possible answers is the harness check."""
    from evals import acebench

    if options.acebench_root is None:
        return "data not found: no ACEBench checkout configured"
    try:
        data = acebench.load_acebench(options.acebench_root, options.acebench_language)
    except acebench.AceBenchDataNotFound as err:
        return str(err)

    def run(agent: Any) -> Any:
        return acebench.run_acebench(
            data, category, agent, user, max_items=options.acebench_max_items, seed=options.seed
        )

    def row(r: Any) -> dict[str, Any]:
        accuracy = None if r.process_accuracy is None else round(r.process_accuracy, 3)
        return {**_rate_fields(r), "acebench_score": round(r.acebench_score, 3), "process_accuracy": accuracy}

    def extra(gold: Any, results: dict[str, Any]) -> tuple[dict, dict]:
        per_sub = [
            {"model": label, "subcategory": sub, "solved": solved, "n": n}
            for label, r in results.items()
            for sub, (solved, n) in sorted(r.per_subcategory.items())
        ]
        return {"gold_failures": gold.failures}, {"per_subcategory": per_sub}

    return _Suite(
        run=run,
        gold="gold",
        row=row,
        record=lambda r: r.to_dict(),
        harness_check=_acebench_harness_check,
        scored=lambda r: r.status == acebench.SCORED,
        facts=lambda _: {
            "language": data.language,
            "data": str(data.root),
            "user_simulator": user.name if user else "none configured",
        },
        extra=extra,
    )


def _acebench_harness_check(gold: Any) -> str:
    """The gold replay's score and the items it does not solve: on ACEBench's own data some possible
    answers do not reach their own ground truth, and a reader should see which (docs/operating.md)."""
    missed = [r.id for r in gold.records if not r.solved]
    shown = ", ".join(missed[:12]) + (f" and {len(missed) - 12} more" if len(missed) > 12 else "")
    return f"replay of the possible answers: {gold.successes}/{gold.n} solved" + (
        f"; not solved: {shown}" if missed else ""
    )


def _synthetic(
    suite: SyntheticSuite,
    agents: dict[str, ChatBackend],
    out: Path,
    options: SuiteOptions,
    log: Callable[[str], None],
) -> SuiteReport:
    """Held-out synthetic tasks with the scripted user: success by the funnel's verdicts, pass^1..k, state
    and call match, failure categories, the cut by domain group (vertical / general); and the graded
    next-turn metric (`evals.tool_calls`) for every agent and both baselines on held-out dialogues."""
    shutil.rmtree(out / "journals", ignore_errors=True)
    log("synthetic_heldout: whole tasks")
    scores = score_models(
        suite.tasks,
        agents,
        out / "journals",
        max_agent_turns=options.max_agent_turns,
        k=options.rollouts_per_task,
    )
    log("synthetic_heldout: graded next turns")
    dialogues = gold_dialogues(suite.graded, out / "journals" / "gold")
    turns = heldout_turns(dialogues, suite.groups, options.graded_turns_per_group, options.seed)
    graded = score_tool_calls(turns, {FLOOR: DoNothingAgent(), **agents}, suite.train_calls)
    # Whether the agent's tool names were guided (envgen.llm.guided), so a reader knows what was measured.
    records = [
        {
            **s.__dict__,
            "tool_call_accuracy": graded[s.agent],
            "guided_tool_names": getattr(agents.get(s.agent), "guided_tool_names", False),
        }
        for s in scores
    ]
    records += [
        {"agent": label, "tool_call_accuracy": g}
        for label, g in graded.items()
        if label.startswith("baseline:")
    ]
    (out / "scores.json").write_text(json.dumps(records, indent=1, default=str))
    return SuiteReport(
        "synthetic_heldout",
        facts={
            "benchmark": "synthetic_heldout",
            "user_simulator": "scripted (rule-based)",
            "tasks": scores[0].n if scores else 0,
            "graded_turns": len(turns),
            **{f"success/{s.agent}": round(s.rate, 4) for s in scores},
            **{
                f"tool_name/{label}/{group}": rates["name"]["rate"]
                for label, by_group in graded.items()
                for group, rates in by_group.items()
                if group != "all"
            },
        },
        json={
            "terminations": {s.agent: s.terminations for s in scores},
            "failure_stages": {s.agent: s.failures for s in scores},
            "tool_call_accuracy": graded,
        },
        tables={
            "scores": [_synthetic_row(s) for s in scores],
            "tool_call_accuracy": [row for label, g in graded.items() for row in table_rows(label, g)],
            "vertical_vs_general": [row for s in scores for row in group_rates(s, suite.groups)],
            "per_domain": [
                {"model": s.agent, "domain": d, "solved": v[0], "n": v[1]}
                for s in scores
                for d, v in sorted(s.per_domain.items())
            ],
            "failure_categories": [
                {"model": s.agent, **{c: s.categories.get(c, 0) for c in FAILURE_CATEGORIES}} for s in scores
            ],
        },
    )


def _synthetic_row(s: Score) -> dict[str, Any]:
    return {
        "model": s.agent,
        **_rate_fields(s),
        "rollouts": s.rollouts,
        "state_match": round(s.state_match, 3),
        "call_match": round(s.call_match, 3),
        **{f"pass^{j}": v for j, v in s.pass_hat.items()},
    }
