"""Group `studies`: do the synthesized tools overlap the benchmarks' own tools?

`contamination_report` sits upstream of the SFT sets, which can exclude what it flags
(`SftConfig.exclude_contaminated`); its check (`no_exact_benchmark_duplicate`) flags exact duplicates.
"""

import json
from collections import Counter

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from agentscaler_assets.artefacts import FILTERED_FILE, TASKS_FILE, Artefact
from agentscaler_assets.catalog_assets import EmbedderSettings, api_catalog, domains, read_domains
from agentscaler_assets.environment_assets import domain_tasks
from agentscaler_assets.evaluation_assets import BenchmarkPaths
from agentscaler_assets.experience_assets import filtered_trajectories, training_domains
from agentscaler_assets.resources import StorageRoot
from agentscaler_assets.tables import markdown_table, write_parquet
from agentscaler_assets.versions import code_version, content_version
from envgen.catalog.spec import frame_to_specs
from envgen.funnel.contamination import (
    EXACT,
    NEAR,
    ContaminationSettings,
    called_tools,
    tasks_using,
)
from envgen.funnel.contamination import contamination_report as find_overlap
from evals.benchmark_tools import benchmark_tools


class ContaminationConfig(EmbedderSettings, BenchmarkPaths):
    """The tool graph's embedder (keep the two equal), the benchmark checkouts, and what counts as near."""

    top_k: int = Field(default=3, ge=1)
    near_threshold: float = Field(default=0.6, gt=0.0, le=1.0)


@asset(
    group_name="studies",
    deps=[
        api_catalog,
        domains,
        AssetDep(domain_tasks, partition_mapping=AllPartitionMapping()),
        AssetDep(filtered_trajectories, partition_mapping=AllPartitionMapping()),
    ],
    code_version=code_version(
        __name__,
        "envgen.funnel.contamination",
        "envgen.graph",
        "evals.benchmark_tools",
    ),
)
def contamination_report(
    context: AssetExecutionContext, config: ContaminationConfig, storage: StorageRoot
) -> MaterializeResult:
    """The synthesized tools nearest to each benchmark tool (tau2 from the installed package, tau-bench and
    ACEBench from their checkouts), exact and near duplicates, the training tasks that use them and the
    kept trajectories the SFT sets would lose by excluding them."""
    specs = frame_to_specs(pl.read_parquet(storage.artefact(Artefact.CATALOG)))
    table = read_domains(storage)
    domain_of = {tool: slug for slug, tools in table.select("slug", "tools").iter_rows() for tool in tools}
    tools, missing = benchmark_tools(config.taubench_root(storage), config.acebench_root(storage))
    for name, reason in missing.items():
        context.log.info(f"contamination: {name} not compared: {reason}")
    settings = ContaminationSettings(top_k=config.top_k, near_threshold=config.near_threshold)
    embedder = config.make_embedder()
    report = find_overlap(specs, domain_of, tools, settings, embedder)
    flagged = {level: sorted(report.flagged_tools(level)) for level in (EXACT, NEAR)}
    used, impact = _training_use(storage, table, flagged)
    out = storage.artefact(Artefact.CONTAMINATION)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("nearest_tools", report.nearest),
        ("nearest_domains", report.domains),
        ("flagged", report.flagged),
        ("tasks_using_flagged", used),
    ):
        write_parquet(frame, out / f"{name}.parquet")
    (storage.artefact(Artefact.CONTAMINATION_FLAGGED_TOOLS)).write_text(json.dumps(flagged, indent=1))
    top1 = report.nearest.filter(pl.col("rank") == 1).drop("rank")
    return MaterializeResult(
        data_version=content_version(out),
        metadata={
            "embedder": embedder.name,
            "benchmark_tools": MetadataValue.json(dict(Counter(t.benchmark for t in tools))),
            "not_compared": MetadataValue.json(missing),
            "exact_duplicates": int((report.flagged["kind"] == EXACT).sum()),
            "near_duplicates": int((report.flagged["kind"] == NEAR).sum()),
            "flagged": MetadataValue.md(markdown_table(report.flagged)) if report.flagged.height else "none",
            "nearest_tool": MetadataValue.md(markdown_table(top1, max_rows=500)) if top1.height else "none",
            "nearest_domains": MetadataValue.md(markdown_table(report.domains))
            if report.domains.height
            else "none",
            "training_tasks_using_flagged": int((used["split"] == "train").sum()),
            "heldout_tasks_using_flagged": int((used["split"] == "heldout").sum()),
            "sft_exclusion_counts": MetadataValue.md(markdown_table(impact)),
        },
    )


def _training_use(
    storage: StorageRoot, table: pl.DataFrame, flagged: dict[str, list[str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Tasks whose gold calls use a flagged tool, and per SFT set and level how many kept trajectories
    (before the SFT sets' de-duplication) call one: what `exclude_contaminated` would remove."""
    levels = {level: set(names) for level, names in flagged.items()}
    used, counts = [], []
    for set_name, vertical in (("sft_phase1", False), ("sft_phase2", True)):
        kept, hits = 0, {EXACT: 0, NEAR: 0}
        for slug in training_domains(table, vertical)["slug"].to_list():
            folder = storage.domain_dir(slug)
            used.append(tasks_using(pl.read_parquet(folder / TASKS_FILE), levels[NEAR]))
            rows = pl.read_parquet(folder / FILTERED_FILE).filter(pl.col("kept"))
            kept += rows.height
            for messages in rows["messages"].to_list():
                calls = called_tools(json.loads(messages))
                for level, names in levels.items():
                    hits[level] += bool(calls & names)
        counts += [
            {
                "sft_set": set_name,
                "exclude": level,
                "kept_trajectories": kept,
                "excluded": hits[level],
                "left": kept - hits[level],
            }
            for level in (EXACT, NEAR)
        ]
    return pl.concat(used), pl.DataFrame(counts)
