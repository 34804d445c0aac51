"""Group `environments`: per-domain databases with tool programs, and verifiable tasks in them."""

import asyncio
import json
from collections import Counter

import polars as pl
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from agentscaler_assets.artefacts import TASKS_FILE, Artefact
from agentscaler_assets.catalog_assets import read_domains
from agentscaler_assets.partitions import domain_partitions
from agentscaler_assets.resources import LanguageModels, StorageRoot
from agentscaler_assets.source_assets import DOMAIN_SPEC
from agentscaler_assets.tables import dict_table, markdown_table, write_parquet
from agentscaler_assets.versions import code_version, content_version
from envgen.catalog.spec import frame_to_specs
from envgen.environment.admission import MIN_TOOLS
from envgen.environment.build import ENVIRONMENT_FILES, build_environment, load_environment, save_environment
from envgen.environment.schema_llm import build_environment_with_model
from envgen.llm.backends import ChatBackend
from envgen.tasks.chains import Task, TaskConfig, replay, sample_tasks, tasks_to_frame
from envgen.tasks.intent_llm import rewrite_intent


def domain_record(storage: StorageRoot, slug: str) -> dict:
    frame = read_domains(storage).filter(pl.col("slug") == slug)
    if frame.is_empty():
        raise ValueError(f"domain {slug!r} is not in the current domains table; re-materialise `domains`")
    return frame.row(0, named=True)


class EnvironmentConfig(Config):
    rows_per_table: int = 12
    seed: int = 0


HERE = __name__  # each asset's code version covers its own module


@asset(
    group_name="environments",
    partitions_def=domain_partitions,
    deps=[DOMAIN_SPEC],
    code_version=code_version(HERE, "envgen.environment", "envgen.catalog.spec", "envgen.llm.backends"),
)
def domain_environment(
    context: AssetExecutionContext, config: EnvironmentConfig, storage: StorageRoot, llm: LanguageModels
) -> MaterializeResult:
    """Tables derived from the domain's tools, a program per tool, a seeded snapshot; every kept tool ran.
    With a program-proposing model configured, its draft is used when it runs at least as many tools."""
    slug = context.partition_key
    record = domain_record(storage, slug)
    specs = [
        s
        for s in frame_to_specs(pl.read_parquet(storage.artefact(Artefact.CATALOG)))
        if s.name in set(record["tools"])
    ]
    proposer = llm.program_backend()
    if proposer is None:
        env, snapshot, report = build_environment(
            slug, record["name"], specs, seed=config.seed, rows_per_table=config.rows_per_table
        )
    else:
        env, snapshot, report = asyncio.run(
            build_environment_with_model(
                slug, record["name"], specs, proposer, seed=config.seed, rows_per_table=config.rows_per_table
            )
        )
    if len(report.kept) < MIN_TOOLS:
        raise ValueError(f"domain {slug}: fewer than {MIN_TOOLS} tools execute; refused: {report.refused}")
    save_environment(env, snapshot, storage.domain_dir(slug))
    snapshot.close()
    for tool, reason in report.refused.items():
        context.log.warning(f"domain {slug}: tool {tool} refused: {reason}")
    tables = pl.DataFrame(
        {
            "table": [t.name for t in env.tables],
            "key": [t.key for t in env.tables],
            "columns": [", ".join(c.name for c in t.columns) for t in env.tables],
        }
    )
    programs = pl.DataFrame(
        {
            "tool": [p.tool for p in env.programs],
            "action": [p.action for p in env.programs],
            "entity": [p.entity for p in env.programs],
        }
    )
    return MaterializeResult(
        data_version=content_version(*(storage.domain_dir(slug) / f for f in ENVIRONMENT_FILES)),
        metadata={
            "tools_in_domain": len(specs),
            "tools_executed": len(report.kept),
            "tools_refused": len(report.refused),
            "refusals": MetadataValue.md(dict_table(report.refused, "tool", "reason"))
            if report.refused
            else "none",
            "tables": MetadataValue.md(markdown_table(tables)),
            "programs": MetadataValue.md(markdown_table(programs)),
            "rows_per_table": config.rows_per_table,
            "programs_by": report.source,
            **({"program_choice": report.choice} if report.choice else {}),
        },
    )


class TasksConfig(Config):
    """Chains sampled per domain, and which share is held out: every task of a held-out domain, a
    `heldout_fraction` of a vertical domain's (at least 30 held-out tasks per vertical domain with the
    defaults), `general_heldout_fraction` of a general training domain's (none by default: general
    held-out tasks come from the held-out domains)."""

    n_chains: int = Field(default=320, ge=1)
    vertical_n_chains: int = Field(default=600, ge=1)
    min_length: int = 1
    max_length: int = 8
    heldout_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    general_heldout_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    # Share of requests the scripted user words in its own verbs (`envgen.tasks.phrasing`) instead of
    # restating the tool's description, which would let a word-overlap pick name every tool.
    own_words: float = Field(default=1.0, ge=0.0, le=1.0)
    seed: int = 0

    def for_domain(self, record: dict) -> TaskConfig:
        """The sampling of one domain, by its row of the domains table."""
        if record["heldout"]:
            chains, fraction = self.n_chains, 1.0
        elif record["vertical"]:
            chains, fraction = self.vertical_n_chains, self.heldout_fraction
        else:
            chains, fraction = self.n_chains, self.general_heldout_fraction
        return TaskConfig(
            n_chains=chains,
            min_length=self.min_length,
            max_length=self.max_length,
            heldout_fraction=fraction,
            own_words=self.own_words,
            seed=self.seed,
        )


async def _reword_intents(tasks: list[Task], backend: ChatBackend, tools: set[str]) -> Counter:
    """Reword every intent through the synthesis model; returns why rewrites were refused."""
    results = await asyncio.gather(*(rewrite_intent(t, backend, tools) for t in tasks))
    return Counter(reason for _, reason in results if reason)


@asset(
    group_name="environments",
    partitions_def=domain_partitions,
    deps=[domain_environment, DOMAIN_SPEC],  # the domain's row says whether it is vertical or held out
    code_version=code_version(HERE, "envgen.tasks", "envgen.environment", "envgen.llm.backends"),
)
def domain_tasks(
    context: AssetExecutionContext, config: TasksConfig, storage: StorageRoot, llm: LanguageModels
) -> MaterializeResult:
    """Random-walk tool chains executed for gold calls and gold final-state hash, with a stratified
    held-out share; intents are templated, or reworded by the synthesis model when one is configured."""
    slug = context.partition_key
    folder = storage.domain_dir(slug)
    env, snapshot = load_environment(folder)
    edges = pl.read_parquet(storage.artefact(Artefact.GRAPH_EDGES))
    edge_list = [tuple(r) for r in edges.select("src", "dst", "kind").iter_rows()]
    cfg = config.for_domain(domain_record(storage, slug))
    batch = sample_tasks(env, snapshot, edge_list, cfg)
    bad = [t.task_id for t in batch.tasks if replay(env, snapshot, t.gold_calls) != t.gold_hash]
    if bad:
        raise RuntimeError(f"domain {slug}: gold replay does not reproduce the hash for tasks {bad}")
    helper = llm.synthesis_backend()
    refused = Counter()
    if helper is not None:
        refused = asyncio.run(_reword_intents(batch.tasks, helper, {t["name"] for t in env.tools}))
        for reason, n in refused.items():
            context.log.warning(f"{slug}: kept the template for {n} intents: {reason}")
    frame = tasks_to_frame(batch.tasks)
    write_parquet(frame, folder / TASKS_FILE)
    lengths = frame.group_by("length").len().sort("length")
    strata = (
        frame.with_columns(
            mix=pl.when(pl.col("writes") > 0).then(pl.lit("writes")).otherwise(pl.lit("reads"))
        )
        .group_by("length", "mix", "split")
        .len()
        .sort("length", "mix", "split")
    )
    examples = [
        {"intent": t.intent, "gold_calls": t.gold_calls, "state_changed": t.gold_hash != t.initial_hash}
        for t in batch.tasks[:5]
    ]
    return MaterializeResult(
        data_version=content_version(folder / TASKS_FILE),
        metadata={
            "tasks": len(batch.tasks),
            "heldout": int((frame["split"] == "heldout").sum()) if len(frame) else 0,
            "attempted_chains": batch.attempted,
            "valid_share": round(len(batch.tasks) / max(1, batch.attempted), 3),
            "rejections": MetadataValue.md(dict_table(dict(batch.rejected), "reason"))
            if batch.rejected
            else "none",
            "length_histogram": MetadataValue.md(markdown_table(lengths)),
            "strata": MetadataValue.md(markdown_table(strata)),
            "intents": "templated" if helper is None else f"reworded by {helper.name}",
            "intent_rewrites_refused": sum(refused.values()),
            "example_tasks": MetadataValue.json(examples),
            "gold_replay": MetadataValue.text(json.dumps({"checked": len(batch.tasks), "mismatches": 0})),
        },
    )
