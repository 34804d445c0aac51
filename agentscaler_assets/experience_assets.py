"""Group `experience`: simulated user–agent trajectories, the funnel, and the two SFT sets."""

import asyncio
import hashlib
import json
from typing import Literal

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from agentscaler_assets.artefacts import FILTERED_FILE, TASKS_FILE, TRAJECTORIES_FILE, Artefact
from agentscaler_assets.catalog_assets import domains, read_domains
from agentscaler_assets.environment_assets import domain_tasks
from agentscaler_assets.partitions import domain_partitions
from agentscaler_assets.resources import LanguageModels, StorageRoot
from agentscaler_assets.tables import dict_table, markdown_table, write_parquet
from agentscaler_assets.versions import code_version, content_version
from envgen.environment.build import load_environment
from envgen.funnel.contamination import called_tools, read_flagged
from envgen.funnel.filters import FunnelConfig, funnel_counts, judge, rejection_reasons
from envgen.funnel.sft import build_sft_frame, to_row
from envgen.simulate.rollout import run_rollouts, trajectory_from_row, trajectory_row
from envgen.tasks.chains import frame_to_tasks
from evals.synthetic import pass_hat_k


class TrajectoryConfig(Config):
    """Bounds are checked when a run starts; a bad value fails it with the field named."""

    rollouts_per_task: int = Field(default=2, ge=1, description="k rollouts per training task (pass^k)")
    concurrency: int = Field(default=16, ge=1, description="episodes in flight")
    max_agent_turns: int = Field(default=24, ge=1, description="agent turns before an episode is cut")


HERE = __name__  # each asset's code version covers its own module


@asset(
    group_name="experience",
    partitions_def=domain_partitions,
    deps=[domain_tasks],
    code_version=code_version(HERE, "envgen.simulate", "envgen.llm", "envgen.environment", "envgen.tasks"),
)
def trajectories(
    context: AssetExecutionContext, config: TrajectoryConfig, storage: StorageRoot, llm: LanguageModels
) -> MaterializeResult:
    """k rollouts per training task (never held-out ones); resumable from the journal of finished ones."""
    slug = context.partition_key
    folder = storage.domain_dir(slug)
    env, snapshot = load_environment(folder)
    tasks_path = folder / TASKS_FILE
    tasks = [t for t in frame_to_tasks(pl.read_parquet(tasks_path)) if t.split == "train"]
    fingerprint = hashlib.sha1(
        tasks_path.read_bytes()
        + json.dumps(
            [
                llm.describe(),
                llm.error_model().__dict__,
                llm.seed,
                config.rollouts_per_task,
                config.max_agent_turns,
            ]
        ).encode()
    ).hexdigest()[:12]
    journal = folder / f"journal-{fingerprint}.jsonl"
    total = len(tasks) * config.rollouts_per_task

    def progress(done: int, _total: int) -> None:
        if done % 25 == 0 or done == total:
            context.log.info(f"{slug}: {done}/{total} trajectories")

    async def collect() -> list:
        try:
            return await run_rollouts(
                tasks,
                env,
                snapshot,
                llm.teacher_for,
                llm.user_for,
                k=config.rollouts_per_task,
                journal=journal,
                concurrency=config.concurrency,
                max_agent_turns=config.max_agent_turns,
                progress=progress,
            )
        finally:
            await llm.aclose()

    trajs = asyncio.run(collect())
    frame = pl.DataFrame([trajectory_row(t) for t in trajs])
    write_parquet(frame, folder / TRAJECTORIES_FILE)
    for old in folder.glob("journal-*.jsonl"):
        if old != journal:
            old.unlink()
    terms = frame.group_by("termination").len().sort("termination") if len(frame) else frame
    return MaterializeResult(
        data_version=content_version(folder / TRAJECTORIES_FILE),
        metadata={
            "trajectories": len(trajs),
            "training_tasks": len(tasks),
            "rollouts_per_task": config.rollouts_per_task,
            "backends": MetadataValue.json(llm.describe()),
            "tool_calls": int(frame["n_tool_calls"].sum()) if len(frame) else 0,
            "tool_errors": int(frame["n_tool_errors"].sum()) if len(frame) else 0,
            "terminations": MetadataValue.md(markdown_table(terms)) if len(frame) else "none",
            "preview": MetadataValue.json(trajs[0].messages[:6]) if trajs else "none",
        },
    )


class FunnelSettings(Config):
    max_messages: int = Field(default=80, ge=2, description="longer trajectories fail validity")
    max_repeats: int = Field(default=3, ge=2, description="the same call this many times in a row: a loop")
    # Reads must match the gold reads too: a read with a wrong id that happens to exist succeeds and leaves
    # the state right, and training on it teaches the model to copy the wrong id (about 14% of the
    # dialogues the scripted teacher's error model produces).
    match_reads: bool = True
    # Below min_yield the teacher or the environment is broken (the check warns).
    min_yield: float = Field(default=0.2, ge=0.0, le=1.0)
    max_yield: float = Field(default=1.0, ge=0.0, le=1.0)


@asset(
    group_name="experience",
    partitions_def=domain_partitions,
    deps=[trajectories],
    code_version=code_version(HERE, "envgen.funnel", "envgen.simulate.rollout", "envgen.environment"),
    check_specs=[AssetCheckSpec("funnel_yield_in_bounds", asset="filtered_trajectories")],
)
def filtered_trajectories(
    context: AssetExecutionContext, config: FunnelSettings, storage: StorageRoot
) -> MaterializeResult:
    """Validity → final-state alignment → exact match of write calls (and of reads, with `match_reads`);
    every verdict is stored."""
    slug = context.partition_key
    folder = storage.domain_dir(slug)
    env, _ = load_environment(folder)
    tasks = {t.task_id: t for t in frame_to_tasks(pl.read_parquet(folder / TASKS_FILE))}
    trajs = [
        trajectory_from_row(r) for r in pl.read_parquet(folder / TRAJECTORIES_FILE).iter_rows(named=True)
    ]
    cfg = FunnelConfig(
        max_messages=config.max_messages, max_repeats=config.max_repeats, match_reads=config.match_reads
    )
    verdicts = [judge(t, tasks[t.task_id], env, cfg) for t in trajs]
    rows = [
        {
            **trajectory_row(t),
            "valid": v.valid,
            "state_aligned": v.state_aligned,
            "calls_match": v.calls_match,
            "kept": v.kept,
            "recovered": v.recovered,
            "reason": v.reason,
        }
        for t, v in zip(trajs, verdicts, strict=True)
    ]
    write_parquet(pl.DataFrame(rows), folder / FILTERED_FILE)
    counts = funnel_counts(verdicts)
    funnel_yield = round(counts["call_match"] / max(1, counts["trajectories"]), 3)
    per_task: dict[str, list[bool]] = {}
    for t, v in zip(trajs, verdicts, strict=True):
        per_task.setdefault(t.task_id, []).append(v.kept)
    k = max((len(r) for r in per_task.values()), default=1)
    kept_example = next((t.messages for t, v in zip(trajs, verdicts, strict=True) if v.kept), None)
    return MaterializeResult(
        data_version=content_version(folder / FILTERED_FILE),
        metadata={
            "kept": counts["call_match"],
            "funnel": MetadataValue.md(dict_table(counts, "stage", "surviving")),
            "yield": funnel_yield,
            "rejections": MetadataValue.md(dict_table(dict(rejection_reasons(verdicts)), "reason")),
            "teacher_pass^1": pass_hat_k(per_task, 1),
            f"teacher_pass^{k}": pass_hat_k(per_task, k),
            "kept_example": MetadataValue.json(kept_example) if kept_example else "none",
        },
        check_results=[
            AssetCheckResult(
                check_name="funnel_yield_in_bounds",
                # A held-out domain has no training task, so no trajectory: nothing to judge.
                passed=not trajs or config.min_yield <= funnel_yield <= config.max_yield,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "yield": funnel_yield,
                    "bounds": f"[{config.min_yield}, {config.max_yield}]",
                    **{f"stage/{k}": v for k, v in counts.items()},
                },
            )
        ],
    )


def training_domains(table: pl.DataFrame, vertical: bool) -> pl.DataFrame:
    """The vertical or the general domains a training set draws from (`read_domains`'s table): never a
    held-out domain."""
    return table.filter((pl.col("vertical") == vertical) & ~pl.col("heldout"))


class SftConfig(Config):
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    seed: int = 0
    # Drop examples that call a tool `contamination_report` flagged as a duplicate of a benchmark tool:
    # `none`, `exact` (same name and parameters) or `near` (exact plus near duplicates).
    exclude_contaminated: Literal["none", "exact", "near"] = "none"


def _sft_dataset(
    context: AssetExecutionContext, storage: StorageRoot, config: SftConfig, vertical: bool, target: Artefact
) -> MaterializeResult:
    name = target.value[-1]
    table = training_domains(read_domains(storage), vertical)
    slugs = table["slug"].to_list()
    missing = [s for s in slugs if not (storage.domain_dir(s) / FILTERED_FILE).exists()]
    if missing:
        raise FileNotFoundError(f"{name}: filtered_trajectories not materialised for domains {missing}")
    flagged = (
        read_flagged(storage.artefact(Artefact.CONTAMINATION_FLAGGED_TOOLS), config.exclude_contaminated)
        if config.exclude_contaminated != "none"
        else set()
    )
    rows, excluded = [], 0
    for slug in slugs:
        kept = pl.read_parquet(storage.domain_dir(slug) / FILTERED_FILE).filter(pl.col("kept"))
        for r in kept.iter_rows(named=True):
            trajectory = trajectory_from_row(r)
            if flagged and called_tools(trajectory.messages) & flagged:
                excluded += 1
                continue
            rows.append(to_row(trajectory, r["recovered"]))
    if not rows:
        raise ValueError(f"{name}: no trajectory survived the funnel (and exclusions) in domains {slugs}")
    frame = build_sft_frame(rows, config.validation_fraction, config.seed)
    write_parquet(frame, storage.artefact(target))
    per_domain = frame.group_by("domain", "split").len().sort("domain", "split")
    context.log.info(f"{name}: {frame.height} examples from {len(slugs)} domains")
    return MaterializeResult(
        data_version=content_version(storage.artefact(target)),
        metadata={
            "examples": frame.height,
            "tool_calls": sum(
                len(m.get("tool_calls") or []) for text in frame["messages"] for m in json.loads(text)
            ),
            "train": int((frame["split"] == "train").sum()),
            "validation": int((frame["split"] == "validation").sum()),
            "duplicates_dropped": len(rows) - frame.height,
            "exclude_contaminated": config.exclude_contaminated,
            "excluded_contaminated": excluded,
            "with_recovery": int(frame["recovered"].sum()),
            "domains": MetadataValue.json(slugs),
            "per_domain": MetadataValue.md(markdown_table(per_domain)),
        },
    )


# `contamination_report` is named by key: its module imports this one (it reads the funnel's output).
SFT_DEPS = [filtered_trajectories, domains, AssetKey("contamination_report")]
SFT_CODE = code_version(HERE, "envgen.funnel", "envgen.simulate.rollout")


@asset(group_name="experience", deps=SFT_DEPS, code_version=SFT_CODE)
def sft_phase1_dataset(
    context: AssetExecutionContext, config: SftConfig, storage: StorageRoot
) -> MaterializeResult:
    """Chat-format SFT rows from the general (non-vertical) domains: phase 1's general tool use."""
    return _sft_dataset(context, storage, config, vertical=False, target=Artefact.SFT_PHASE1)


@asset(group_name="experience", deps=SFT_DEPS, code_version=SFT_CODE)
def sft_phase2_dataset(
    context: AssetExecutionContext, config: SftConfig, storage: StorageRoot
) -> MaterializeResult:
    """Chat-format SFT rows from the vertical domains (retail, airline, telecom by default): phase 2."""
    return _sft_dataset(context, storage, config, vertical=True, target=Artefact.SFT_PHASE2)
