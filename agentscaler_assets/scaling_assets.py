"""Group `studies`: does training on more general domains give a better agent?

`scaling_study` trains phase 1 + phase 2 on nested subsets of the general domains, every subset with the
same token budget, and scores each on the held-out synthetic tasks (and tau2 telecom, which runs offline)
with 95% intervals; its check compares the largest subset with the main phase-2 model.
"""

import json
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

from agentscaler_assets.artefacts import Artefact
from agentscaler_assets.catalog_assets import read_domains
from agentscaler_assets.environment_assets import domain_tasks
from agentscaler_assets.evaluation_assets import BenchmarkConfig, synthetic_suite
from agentscaler_assets.experience_assets import sft_phase1_dataset, sft_phase2_dataset, training_domains
from agentscaler_assets.resources import StorageRoot, TrainingSettings
from agentscaler_assets.rl_assets import RLPhaseConfig, train_rl_model
from agentscaler_assets.tables import markdown_table, png_markdown, write_parquet
from agentscaler_assets.training_assets import (
    base_model,
    model_version,
    phase2_model,
    phase_config,
    train_model,
)
from agentscaler_assets.versions import code_version
from envgen.llm.backends import ChatBackend
from envgen.llm.hf_backend import HFChatBackend
from evals.suites import SuiteOptions, run_suite
from train.launch import phase_rows
from train.plots import scaling_curve_png
from train.scaling import nested_subsets
from train.sft import assistant_token_loss

SCORE_FIELDS = ("model", "solved", "n", "success", "ci95_low", "ci95_high")


class ScalingConfig(Config):
    """Subset sizes, the per-subset token budget, and how each subset's phase-2 model is scored.

    The scoring fields mean what they mean for `benchmark_scores` (same names); the defaults score fewer
    whole tasks (every subset's model is one more agent to roll out), the graded metric on the same turns.
    """

    fractions: list[float] = [0.25, 0.5, 1.0]
    seed: int = 0
    phase1_token_budget: int = Field(default=150_000, ge=1)
    phase2_token_budget: int = Field(default=150_000, ge=1)
    max_validation_rows: int = Field(default=16, ge=-1)
    general_tasks_per_domain: int = 1
    max_tasks_per_domain: int = 4
    max_new_tokens: int = Field(default=96, ge=1)
    max_agent_turns: int = Field(default=20, ge=1)
    guided_tool_names: bool = True
    graded_turns_per_group: int = Field(default=200, ge=0)
    # tau2 domains that run offline (solo: telecom), scored on a seeded sample of their test split.
    tau2_domains: list[str] = ["telecom"]
    tau2_max_tasks: int = Field(default=10, ge=1)
    tau2_max_steps: int = Field(default=200, ge=1)
    # RL steps (phase 3, the `phase3_rl_model` recipe) after each subset's phase 2, scored as another agent
    # `<subset>_rl` beside it; 0 leaves RL out of the study (its default: the study already trains and
    # scores two models per subset on CPU).
    rl_steps: int = Field(default=0, ge=0)


@asset(
    group_name="studies",
    deps=[
        base_model,
        sft_phase1_dataset,
        sft_phase2_dataset,
        phase2_model,
        AssetDep(domain_tasks, partition_mapping=AllPartitionMapping()),
    ],
    code_version=code_version(__name__, "train", "evals", "envgen.llm"),
)
def scaling_study(
    context: AssetExecutionContext, config: ScalingConfig, storage: StorageRoot, training: TrainingSettings
) -> MaterializeResult:
    """Score versus number of general domains (and of distinct tools) in phase 1, with 95% intervals.

    Each subset trains phase 1 from the base on its domains' rows and phase 2 from that on the full
    vertical set, with the same token budgets for every subset, so the curve shows diversity, not volume.
    """
    table = read_domains(storage)
    general = training_domains(table, vertical=False)
    tools_of = dict(general.select("slug", "tools").iter_rows())
    subsets = nested_subsets(general["slug"].to_list(), config.fractions, config.seed)
    root = storage.artefact(Artefact.SCALING_STUDY)
    sft1 = pl.read_parquet(storage.artefact(Artefact.SFT_PHASE1))
    general_val = phase_rows(storage.artefact(Artefact.SFT_PHASE1), config.max_validation_rows)[1]
    models, facts = {}, []
    for subset in subsets:
        label = f"{len(subset)}_domains"
        data = root / "sft" / f"{label}.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(sft1.filter(pl.col("domain").is_in(subset)), data)
        p1, p2 = root / "models" / f"{label}_phase1", root / "models" / f"{label}_phase2"
        r1, _ = train_model(
            context,
            training,
            storage.artefact(Artefact.MODELS, "base"),
            data,
            p1,
            phase_config(training, 1, config.phase1_token_budget),
            config.max_validation_rows,
        )
        r2, _ = train_model(
            context,
            training,
            p1,
            storage.artefact(Artefact.SFT_PHASE2),
            p2,
            phase_config(training, 2, config.phase2_token_budget),
            config.max_validation_rows,
        )
        general_loss = assistant_token_loss(p1, general_val, training.max_length) if general_val else None
        facts.append(
            {
                "subset": label,
                "domains": len(subset),
                "tools": len({t for slug in subset for t in tools_of[slug]}),
                "phase1_rows": r1.num_train_rows,
                "tokens_seen": r1.cumulative_tokens_seen + r2.cumulative_tokens_seen,
                "general_val_loss": None if general_loss is None else round(general_loss, 4),
                "vertical_val_loss": None
                if r2.val_assistant_loss_after is None
                else round(r2.val_assistant_loss_after, 4),
                "domain_list": subset,
            }
        )
        trained = {label: p2}
        if config.rl_steps:
            rl_out = root / "models" / f"{label}_rl"
            train_rl_model(storage, training, RLPhaseConfig(max_steps=config.rl_steps), p2, rl_out)
            trained[f"{label}_rl"] = rl_out
        for name, folder in trained.items():
            models[name] = HFChatBackend(
                folder,
                max_new_tokens=config.max_new_tokens,
                seed=config.seed,
                guided_tool_names=config.guided_tool_names,
            )
    scores = _score_subsets(context, config, storage, root, models)
    by_subset = {f["subset"]: f for f in facts}
    rows = [
        {
            **{
                k: v
                for k, v in by_subset.get(s["model"].removesuffix("_rl"), {}).items()
                if k != "domain_list"
            },
            **s,
        }
        for s in scores
    ]
    storage.artefact(Artefact.SCALING_RESULT).write_text(
        json.dumps({"subsets": facts, "scores": rows}, indent=1)
    )
    return MaterializeResult(
        data_version=model_version(root), metadata=_scaling_metadata(root, facts, rows, config)
    )


def _score_subsets(
    context: AssetExecutionContext,
    config: ScalingConfig,
    storage: StorageRoot,
    root: Path,
    models: dict[str, ChatBackend],
) -> list[dict[str, Any]]:
    """One row per (benchmark, model), the do-nothing floor included, with Wilson 95% intervals: the
    held-out synthetic suite of `benchmark_scores`, and the configured tau2 domains on a seeded sample."""
    bench = BenchmarkConfig(
        seed=config.seed,
        general_tasks_per_domain=config.general_tasks_per_domain,
        max_tasks_per_domain=config.max_tasks_per_domain,
    )
    options = SuiteOptions(
        seed=config.seed,
        max_tasks=config.tau2_max_tasks,
        max_steps=config.tau2_max_steps,
        max_agent_turns=config.max_agent_turns,
        graded_turns_per_group=config.graded_turns_per_group,
    )
    rows = []
    for benchmark in ["synthetic_heldout", *(f"tau2_{d}" for d in config.tau2_domains)]:
        synthetic = benchmark == "synthetic_heldout"
        report = run_suite(
            benchmark,
            models,
            root / "benchmarks" / benchmark,
            options,
            synthetic=synthetic_suite(storage, bench) if synthetic else None,
            log=lambda line: context.log.info(f"scaling study: {line}"),
        )
        if not report.scores:
            context.log.warning(f"scaling study: {benchmark} not scored: {report.facts.get('status')}")
        rows += [{"benchmark": benchmark, **{k: r[k] for k in SCORE_FIELDS}} for r in report.scores]
        rows += graded_rows(report.json.get("tool_call_accuracy", {}))
    return rows


def graded_rows(graded: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-name accuracy of each model per held-out group, as rows shaped like the success rows (`success`
    is the rate), under the benchmark name `tool_name_<group>`."""
    return [
        {
            "benchmark": f"tool_name_{group}",
            "model": label,
            "solved": rates["name"]["hits"],
            "n": rates["name"]["n"],
            "success": rates["name"]["rate"],
            "ci95_low": rates["name"]["ci95"][0],
            "ci95_high": rates["name"]["ci95"][1],
        }
        for label, by_group in graded.items()
        if not label.startswith("baseline:")
        for group, rates in by_group.items()
        if group in ("vertical", "general")
    ]


def _scaling_metadata(
    root: Path, facts: list[dict[str, Any]], rows: list[dict[str, Any]], config: ScalingConfig
) -> dict[str, Any]:
    models = [
        {**r, "series": r["benchmark"] + (" after RL" if r["model"].endswith("_rl") else "")}
        for r in rows
        if r["model"] != "floor"
    ]
    curve = [r for r in models if not r["benchmark"].startswith("tool_name_")]
    graded = [r for r in models if r["benchmark"].startswith("tool_name_")]
    floors = {r["benchmark"]: r["success"] for r in rows if r["model"] == "floor"}
    success_png = scaling_curve_png(curve, "success", root / "success_vs_domains.png")
    losses = [
        {**f, "series": f"{kind} validation", "loss": f[f"{kind}_val_loss"]}
        for f in facts
        for kind in ("general", "vertical")
        if f[f"{kind}_val_loss"] is not None
    ]
    meta = {
        "subsets": MetadataValue.md(
            markdown_table(pl.DataFrame([{k: v for k, v in f.items() if k != "domain_list"} for f in facts]))
        ),
        "scores": MetadataValue.md(markdown_table(pl.DataFrame(rows))),
        "floors": MetadataValue.json(floors),
        "token_budget_per_subset": config.phase1_token_budget + config.phase2_token_budget,
        "success_curve": MetadataValue.md(png_markdown(success_png, "success versus domains and tools")),
        **(
            {
                "tool_name_curve": MetadataValue.md(
                    png_markdown(
                        scaling_curve_png(graded, "success", root / "tool_name_vs_domains.png"),
                        "tool-name accuracy on held-out turns versus domains and tools",
                    )
                )
            }
            if graded
            else {}
        ),
        "largest_subset": facts[-1]["subset"],
    }
    if losses:
        loss_png = scaling_curve_png(losses, "loss", root / "loss_vs_domains.png")
        meta["validation_loss_curve"] = MetadataValue.md(
            png_markdown(loss_png, "assistant-token loss versus domains")
        )
    return meta
