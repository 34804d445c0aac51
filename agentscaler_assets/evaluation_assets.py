"""Group `evaluation`: benchmark scores of the checkpoints, one partition per benchmark."""

import json
import random
import shutil

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
from envgen.simulate.hf_backend import HFChatBackend
from envgen.tasks import frame_to_tasks
from evals.synthetic import FAILURE_CATEGORIES, DomainTasks, group_rates, score_models


class BenchmarkConfig(Config):
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
    if benchmark != "synthetic_heldout":
        raise ValueError(f"benchmark {benchmark!r} is not implemented yet")
    suite = heldout_suite(storage, config)
    out = storage.path("benchmarks", benchmark)
    shutil.rmtree(out / "journals", ignore_errors=True)
    trained = [m for m in config.models if (storage.path("models", m) / "config.json").exists()]
    missing = sorted(set(config.models) - set(trained))
    if missing:
        context.log.warning(f"not scored, never materialised: {missing}")
    agents = {
        m: HFChatBackend(
            storage.path("models", m),
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=config.seed,
        )
        for m in trained
    }
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
