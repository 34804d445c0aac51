"""Group `evaluation`: benchmark scores of the checkpoints, one partition per benchmark."""

import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from agentscaler_assets.environment_assets import domain_tasks
from agentscaler_assets.partitions import benchmark_partitions
from agentscaler_assets.resources import StorageRoot
from agentscaler_assets.tables import markdown_table
from agentscaler_assets.training_assets import (
    base_model,
    phase1_model,
    phase2_model,
    vertical_only_model,
)
from envgen.environment import load_environment
from envgen.simulate.backends import ChatBackend, DoNothingAgent, OpenAIChatBackend
from envgen.simulate.hf_backend import HFChatBackend
from envgen.tasks import frame_to_tasks
from evals.synthetic import FAILURE_CATEGORIES, DomainTasks, group_rates, score_models
from evals.tau2 import tau2_missing_reason


class BenchmarkPaths(Config):
    """Checkouts of the benchmarks that are not on PyPI: sierra-research/tau-bench (v1) and ACEBench.
    Empty: the environment variable (AGENTSCALER_TAUBENCH_PATH, AGENTSCALER_ACEBENCH_PATH), else
    `external/tau-bench` and `external/ACEBench` under the storage root."""

    taubench_path: str = ""
    acebench_path: str = ""

    def taubench_root(self, storage: StorageRoot) -> Path:
        return _checkout(self.taubench_path, "AGENTSCALER_TAUBENCH_PATH", storage, "tau-bench")

    def acebench_root(self, storage: StorageRoot) -> Path:
        return _checkout(self.acebench_path, "AGENTSCALER_ACEBENCH_PATH", storage, "ACEBench")


def _checkout(configured: str, variable: str, storage: StorageRoot, folder: str) -> Path:
    return Path(configured or os.environ.get(variable) or storage.path("external", folder)).expanduser()


class BenchmarkConfig(BenchmarkPaths):
    # Models under `models/` to score; one that was never trained (vertical_only is optional) is listed
    # in the metadata as missing rather than failing the run.
    models: list[str] = ["base", "phase1", "phase2", "vertical_only"]
    # One per general domain: with 29 general domains that is already 29 tasks of general tool use, and
    # every task is several CPU generations per model.
    general_tasks_per_domain: int = 1
    max_tasks_per_domain: int = 12
    max_new_tokens: int = Field(default=96, ge=1)
    max_agent_turns: int = Field(default=20, ge=1)
    # k seeded rollouts per task give pass^1..k; they differ only when the models sample (temperature > 0).
    rollouts_per_task: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    seed: int = 0
    # tau2-bench: split, a seeded subset of its tasks (0 = all), trials per task (pass^k) and the step cap
    # (tau2's own default, 200: a step cap below a task's gold length makes even the gold replay fail).
    tau2_split: str = "test"
    tau2_max_tasks: int = Field(default=0, ge=0)
    tau2_trials: int = Field(default=1, ge=1)
    tau2_max_steps: int = Field(default=200, ge=1)
    # tau-bench v1 (`tau_*`) uses the same sample size, trials, step cap and user simulator as tau2; its
    # splits are its task files (`test`, `train`, `dev`).
    tau_split: str = "test"
    # The user simulator of tau2 airline/retail: an OpenAI-compatible endpoint (vLLM, OpenAI, or our own
    # `python -m envgen.simulate.serve`). Without it those partitions record that they need one.
    user_base_url: str = ""
    user_model: str = ""
    # ACEBench: language of its data (`en` | `zh`) and a seeded sample of items per category (0 = all).
    acebench_language: str = "en"
    acebench_max_items: int = Field(default=0, ge=0)
    # Also score an OpenAI-compatible endpoint as an agent (a base model served by vLLM, say), next to the
    # checkpoints, under the name `endpoint:<model>`.
    agent_base_url: str = ""
    agent_model: str = ""


def heldout_suite(storage: StorageRoot, cfg: BenchmarkConfig) -> dict[str, DomainTasks]:
    """Held-out tasks of every vertical domain (up to the cap) and a seeded sample of general ones."""
    table = pl.read_parquet(storage.path("domains", "domains.parquet"))
    suite = {}
    for slug, vertical in table.select("slug", "vertical").iter_rows():
        folder = storage.domain_dir(slug)
        env, snapshot = load_environment(folder)
        held = [t for t in frame_to_tasks(pl.read_parquet(folder / "tasks.parquet")) if t.split == "heldout"]
        random.Random(f"{cfg.seed}:{slug}").shuffle(held)
        held = held[: cfg.max_tasks_per_domain if vertical else cfg.general_tasks_per_domain]
        if held:
            suite[slug] = DomainTasks(env, snapshot, sorted(held, key=lambda t: t.task_id))
    return suite


@asset(
    group_name="evaluation",
    partitions_def=benchmark_partitions,
    deps=[
        base_model,
        phase1_model,
        phase2_model,
        vertical_only_model,
        AssetDep(domain_tasks, partition_mapping=AllPartitionMapping()),
    ],
)
def benchmark_scores(
    context: AssetExecutionContext, config: BenchmarkConfig, storage: StorageRoot
) -> MaterializeResult:
    """Task success (valid, gold final state, gold write calls) with Wilson 95% intervals, pass^1..k, the
    state and call match rates, failure categories and the floor a do-nothing agent gets on the same tasks.
    The user side is the scripted (rule-based) user."""
    benchmark = context.partition_key
    out = storage.path("benchmarks", benchmark)
    agents, missing = _agents(config, storage)
    if missing:
        context.log.warning(f"not scored, never materialised: {missing}")
    if benchmark.startswith("tau2_"):
        return _tau2_scores(context, config, out, benchmark.removeprefix("tau2_"), agents, missing)
    if benchmark.startswith("tau_"):
        root = config.taubench_root(storage)
        return _taubench_scores(context, config, out, root, benchmark.removeprefix("tau_"), agents, missing)
    if benchmark.startswith("acebench_"):
        root = config.acebench_root(storage)
        return _acebench_scores(
            context, config, out, root, benchmark.removeprefix("acebench_"), agents, missing
        )
    suite = heldout_suite(storage, config)
    shutil.rmtree(out / "journals", ignore_errors=True)
    scores = score_models(
        suite, agents, out / "journals", max_agent_turns=config.max_agent_turns, k=config.rollouts_per_task
    )
    rows = [
        {
            "model": s.agent,
            "tasks": s.n,
            "rollouts": s.rollouts,
            "solved": s.successes,
            "success": round(s.rate, 3),
            "ci95_low": round(s.ci_low, 3),
            "ci95_high": round(s.ci_high, 3),
            "state_match": round(s.state_match, 3),
            "call_match": round(s.call_match, 3),
            **{f"pass^{j}": v for j, v in s.pass_hat.items()},
        }
        for s in scores
    ]
    table = pl.DataFrame(rows)
    categories = pl.DataFrame(
        [{"model": s.agent, **{c: s.categories.get(c, 0) for c in FAILURE_CATEGORIES}} for s in scores]
    )
    per_domain = pl.DataFrame(
        [
            {"model": s.agent, "domain": d, "solved": v[0], "n": v[1]}
            for s in scores
            for d, v in sorted(s.per_domain.items())
        ]
    )
    domains = pl.read_parquet(storage.path("domains", "domains.parquet"))
    groups = {
        slug: "vertical" if vertical else "general"
        for slug, vertical in domains.select("slug", "vertical").iter_rows()
    }
    by_group = pl.DataFrame([row for s in scores for row in group_rates(s, groups)])
    (out / "scores.json").write_text(json.dumps([s.__dict__ for s in scores], indent=1, default=str))
    return MaterializeResult(
        metadata={
            "benchmark": benchmark,
            "user_simulator": "scripted (rule-based)",
            "tasks": scores[0].n if scores else 0,
            "scores": MetadataValue.md(markdown_table(table)),
            "vertical_vs_general": MetadataValue.md(markdown_table(by_group)),
            "per_domain": MetadataValue.md(markdown_table(per_domain)),
            "models_missing": MetadataValue.json(missing),
            "terminations": MetadataValue.json({s.agent: s.terminations for s in scores}),
            "failure_stages": MetadataValue.json({s.agent: s.failures for s in scores}),
            "failure_categories": MetadataValue.md(markdown_table(categories)),
            **{f"success/{s.agent}": round(s.rate, 4) for s in scores},
        }
    )


def _agents(config: BenchmarkConfig, storage: StorageRoot) -> tuple[dict[str, ChatBackend], list[str]]:
    """The configured checkpoints that exist (and the configured endpoint), and the models never trained."""
    trained = [m for m in config.models if (storage.path("models", m) / "config.json").exists()]
    agents: dict[str, ChatBackend] = {
        m: HFChatBackend(
            storage.path("models", m),
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=config.seed,
        )
        for m in trained
    }
    if config.agent_base_url and config.agent_model:
        agents[f"endpoint:{config.agent_model}"] = OpenAIChatBackend(
            config.agent_base_url, config.agent_model, default_sampling={"temperature": config.temperature}
        )
    return agents, sorted(set(config.models) - set(trained))


def _tau2_scores(
    context: AssetExecutionContext,
    config: BenchmarkConfig,
    out: Path,
    domain: str,
    agents: dict[str, ChatBackend],
    missing: list[str],
) -> MaterializeResult:
    """tau2-bench `domain` (test split by default) from the installed package; telecom runs solo without a
    user endpoint."""
    benchmark = f"tau2_{domain}"
    reason = tau2_missing_reason()
    if reason:
        return MaterializeResult(metadata={"benchmark": benchmark, "status": f"not run: {reason}"})
    from evals import tau2

    user = _user_backend(config)
    solo = user is None and tau2.supports_solo(domain)
    task_ids = (
        tau2.sample_task_ids(domain, config.tau2_split, config.tau2_max_tasks, config.seed)
        if config.tau2_max_tasks
        else None
    )

    def run(agent: Any, who: Any) -> Any:
        return tau2.run_tau2(domain, agent, who, split=config.tau2_split, **_tau_options(config, task_ids))

    return _tau_family_scores(context, out, benchmark, config.tau2_split, run, user, solo, agents, missing)


def _taubench_scores(
    context: AssetExecutionContext,
    config: BenchmarkConfig,
    out: Path,
    root: Path,
    domain: str,
    agents: dict[str, ChatBackend],
    missing: list[str],
) -> MaterializeResult:
    """tau-bench v1 `domain` from the checkout at `root`: its tasks and databases in tau2's environments,
    scored by v1's rule (final database hash and required outputs)."""
    benchmark = f"tau_{domain}"
    reason = tau2_missing_reason()
    if reason:
        return MaterializeResult(metadata={"benchmark": benchmark, "status": f"not run: {reason}"})
    from evals import taubench

    user = _user_backend(config)
    # The checkout is first read by the task sample (or, without one, by the gold replay): either way a
    # missing checkout is a status, not a failure.
    try:
        task_ids = (
            taubench.sample_task_ids(root, domain, config.tau_split, config.tau2_max_tasks, config.seed)
            if config.tau2_max_tasks
            else None
        )

        def run(agent: Any, who: Any) -> Any:
            options = _tau_options(config, task_ids)
            return taubench.run_taubench(root, domain, agent, who, split=config.tau_split, **options)

        return _tau_family_scores(
            context, out, benchmark, config.tau_split, run, user, False, agents, missing
        )
    except taubench.TauBenchDataNotFound as err:
        return MaterializeResult(metadata={"benchmark": benchmark, "status": str(err)})


def _tau_options(config: BenchmarkConfig, task_ids: list[str] | None) -> dict[str, Any]:
    """The run settings tau2 and tau-bench share: trials (pass^k), step cap, seed and task subset."""
    return {
        "num_trials": config.tau2_trials,
        "max_steps": config.tau2_max_steps,
        "seed": config.seed,
        "task_ids": task_ids,
    }


def _tau_family_scores(
    context: AssetExecutionContext,
    out: Path,
    benchmark: str,
    split: str,
    run: Callable[[Any, Any], Any],
    user: ChatBackend | None,
    solo: bool,
    agents: dict[str, ChatBackend],
    missing: list[str],
) -> MaterializeResult:
    """Through tau2's own orchestrator and evaluator: every agent, the do-nothing floor and the gold replay
    (the ceiling, a check of the harness), on the same tasks and trial seeds."""
    from evals import tau2

    # The gold replay checks the harness (it must score 1.0); without a user endpoint it talks to the
    # scripted user, which is why it is reported apart and never as a model's score.
    gold = run(tau2.GOLD, user if user is not None or solo else tau2.SCRIPTED)
    results = {}
    for label, agent in {"floor": DoNothingAgent(), **agents}.items():
        context.log.info(f"{benchmark}: {label}")
        results[label] = run(agent, user)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(
        json.dumps(
            # The score's fields at the top level, like every benchmark's `scores.json` (regression check).
            [
                {**r.to_dict(), **(asdict(r.score) if r.score else {}), "agent": label}
                for label, r in {"gold-replay": gold, **results}.items()
            ],
            indent=1,
            default=str,
        )
    )
    meta: dict = {
        "benchmark": benchmark,
        "split": split,
        "mode": gold.mode,
        "user_simulator": user.name if user else "none (solo)" if solo else "none configured",
        "harness_check": f"gold replay ({'solo' if solo else gold.user + ' user'}): "
        f"{gold.score.successes}/{gold.score.n} solved, "
        f"harness agrees with tau2 on {gold.agreement[0]}/{gold.agreement[1]}",
        "models_missing": MetadataValue.json(missing),
    }
    if gold.note:
        meta["data_note"] = gold.note
    scored = {label: r for label, r in results.items() if r.status == tau2.SCORED}
    if len(scored) < len(results):
        meta["status"] = "needs a user-simulator endpoint (set user_base_url and user_model)"
        meta["note"] = next(r.note for r in results.values() if r.status != tau2.SCORED)
    rows = [
        {
            "model": label,
            "tasks": len(r.task_ids),
            "trials": r.num_trials,
            "solved": r.score.successes,
            "success": round(r.score.rate, 3),
            "ci95_low": round(r.score.ci_low, 3),
            "ci95_high": round(r.score.ci_high, 3),
            **{f"pass^{k}": v for k, v in r.pass_hat_k.items()},
            "harness_agrees": f"{r.agreement[0]}/{r.agreement[1]}",
        }
        for label, r in scored.items()
    ]
    if rows:
        meta["scores"] = MetadataValue.md(markdown_table(pl.DataFrame(rows)))
        meta["terminations"] = MetadataValue.json({lbl: r.score.terminations for lbl, r in scored.items()})
        meta["failure_categories"] = MetadataValue.json({lbl: r.score.failures for lbl, r in scored.items()})
        meta.update({f"success/{lbl}": round(r.score.rate, 4) for lbl, r in scored.items()})
    return MaterializeResult(metadata=meta)


def _user_backend(config: BenchmarkConfig) -> ChatBackend | None:
    """The configured user-simulator endpoint (tau2 airline/retail, tau-bench, ACEBench multi-turn)."""
    if config.user_base_url and config.user_model:
        return OpenAIChatBackend(
            config.user_base_url, config.user_model, default_sampling={"temperature": 0.0}
        )
    return None


def _acebench_scores(
    context: AssetExecutionContext,
    config: BenchmarkConfig,
    out: Path,
    root: Path,
    category: str,
    agents: dict[str, ChatBackend],
    missing: list[str],
) -> MaterializeResult:
    """ACEBench `category` by its own rules: every agent, the do-nothing floor, and the replay of the
    possible answers (the harness check, which must solve every item it can run)."""
    from evals import acebench

    benchmark = f"acebench_{category}"
    try:
        data = acebench.load_acebench(root, config.acebench_language)
    except acebench.AceBenchDataNotFound as err:
        return MaterializeResult(metadata={"benchmark": benchmark, "status": str(err)})
    user = _user_backend(config)

    def run(agent: Any) -> Any:
        return acebench.run_acebench(
            data,
            category,
            agent,
            user,
            max_items=config.acebench_max_items,
            seed=config.seed,  # type: ignore[arg-type]
        )

    gold = run("gold")
    results = {}
    for label, agent in {"floor": DoNothingAgent(), **agents}.items():
        context.log.info(f"{benchmark}: {label}")
        results[label] = run(agent)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(
        json.dumps([{**r.to_dict(), "agent": label} for label, r in results.items()], indent=1, default=str)
    )
    rows = [
        {
            "model": label,
            "items": r.n,
            "solved": r.successes,
            "success": round(r.rate, 3),
            "ci95_low": round(r.ci_low, 3),
            "ci95_high": round(r.ci_high, 3),
            "acebench_score": round(r.acebench_score, 3),
            "process_accuracy": None if r.process_accuracy is None else round(r.process_accuracy, 3),
        }
        for label, r in results.items()
    ]
    per_sub = [
        {"model": label, "subcategory": sub, "solved": solved, "n": n}
        for label, r in results.items()
        for sub, (solved, n) in sorted(r.per_subcategory.items())
    ]
    meta: dict = {
        "benchmark": benchmark,
        "language": data.language,
        "data": str(data.root),
        "user_simulator": user.name if user else "none configured",
        "harness_check": f"replay of the possible answers: {gold.successes}/{gold.n} solved",
        "scores": MetadataValue.md(markdown_table(pl.DataFrame(rows))),
        "per_subcategory": MetadataValue.md(markdown_table(pl.DataFrame(per_sub))) if per_sub else "none",
        "failure_categories": MetadataValue.json({lbl: r.failures for lbl, r in results.items()}),
        "terminations": MetadataValue.json({lbl: r.terminations for lbl, r in results.items()}),
        "skipped": MetadataValue.json(gold.skipped),
        "models_missing": MetadataValue.json(missing),
        **{f"success/{lbl}": round(r.rate, 4) for lbl, r in results.items()},
    }
    if any(r.status != acebench.SCORED for r in results.values()):
        meta["status"] = "needs a user-simulator endpoint (set user_base_url and user_model) for multi_turn"
        meta["note"] = next(r.note for r in results.values() if r.status != acebench.SCORED)
    return MaterializeResult(metadata=meta)
