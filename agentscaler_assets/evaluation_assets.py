"""Group `evaluation`: benchmark scores of the checkpoints, one partition per benchmark."""

import os
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

from agentscaler_assets.artefacts import TASKS_FILE, Artefact
from agentscaler_assets.catalog_assets import read_domains
from agentscaler_assets.environment_assets import domain_tasks
from agentscaler_assets.partitions import benchmark_partitions
from agentscaler_assets.resources import StorageRoot
from agentscaler_assets.rl_assets import RL_MODEL, phase3_rl_model
from agentscaler_assets.tables import markdown_table
from agentscaler_assets.training_assets import (
    base_model,
    phase1_model,
    phase2_model,
    vertical_only_model,
)
from agentscaler_assets.versions import code_version, content_version
from envgen.llm.backends import ChatBackend, OpenAIChatBackend
from envgen.llm.hf_backend import HFChatBackend
from evals.suites import SuiteOptions, SuiteReport, run_suite
from evals.synthetic import SyntheticSuite, load_synthetic_suite


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
    default = storage.artefact(Artefact.EXTERNAL, folder)
    return Path(configured or os.environ.get(variable) or default).expanduser()


class BenchmarkConfig(BenchmarkPaths):
    # Models under `models/` to score; one that was never trained (vertical_only is optional) is listed
    # in the metadata as missing rather than failing the run.
    models: list[str] = ["base", "phase1", "phase2", "vertical_only", RL_MODEL]
    # Whole-task success: a seeded sample of each general domain's held-out tasks (every task is several
    # CPU generations per model) and up to `max_tasks_per_domain` of each vertical domain's.
    general_tasks_per_domain: int = 3
    max_tasks_per_domain: int = 16
    # The graded next-turn metric: held-out turns per group (vertical, general), seeded sample (0 = all).
    graded_turns_per_group: int = Field(default=300, ge=0)
    max_new_tokens: int = Field(default=96, ge=1)
    max_agent_turns: int = Field(default=20, ge=1)
    # Guided tool names (`envgen.llm.guided`, as vLLM's guided decoding): while a checkpoint writes a call's
    # name, only offered tools can be spelt; the model still chooses whether to call, which tool, and
    # every argument. The baselines choose among the offered tools too.
    guided_tool_names: bool = True
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
    # `python -m envgen.llm.serve`). Without it those partitions record that they need one.
    user_base_url: str = ""
    user_model: str = ""
    # ACEBench: language of its data (`en` | `zh`) and a seeded sample of items per category (0 = all).
    acebench_language: str = "en"
    acebench_max_items: int = Field(default=0, ge=0)
    # Also score an OpenAI-compatible endpoint as an agent (a base model served by vLLM, say), next to the
    # checkpoints, under the name `endpoint:<model>`.
    agent_base_url: str = ""
    agent_model: str = ""


def synthetic_suite(storage: StorageRoot, cfg: BenchmarkConfig) -> SyntheticSuite:
    """The held-out synthetic suite of the domain folders (`evals.synthetic.load_synthetic_suite`)."""
    table = read_domains(storage)
    domains = [
        (
            slug,
            domain_group(vertical, heldout),
            storage.domain_dir(slug),
            storage.domain_dir(slug) / TASKS_FILE,
        )
        for slug, vertical, heldout in table.select("slug", "vertical", "heldout").iter_rows()
    ]
    return load_synthetic_suite(domains, cfg.general_tasks_per_domain, cfg.max_tasks_per_domain, cfg.seed)


def domain_group(vertical: bool, heldout: bool) -> str:
    """`vertical`; `general` for a held-out general domain (tools never trained on); `general-seen` for the
    held-out tasks of a general domain training did see (none with the default task split)."""
    if vertical:
        return "vertical"
    return "general" if heldout else "general-seen"


def suite_metadata(report: SuiteReport) -> dict[str, Any]:
    """A suite's report as Dagster metadata: facts as they are, JSON as JSON, tables as tables."""
    return {
        **report.facts,
        **{name: MetadataValue.json(value) for name, value in report.json.items()},
        **{
            name: MetadataValue.md(markdown_table(pl.DataFrame(rows))) if rows else "none"
            for name, rows in report.tables.items()
        },
    }


@asset(
    group_name="evaluation",
    partitions_def=benchmark_partitions,
    deps=[
        base_model,
        phase1_model,
        phase2_model,
        vertical_only_model,
        phase3_rl_model,
        AssetDep(domain_tasks, partition_mapping=AllPartitionMapping()),
    ],
    code_version=code_version(__name__, "evals", "envgen"),
)
def benchmark_scores(
    context: AssetExecutionContext, config: BenchmarkConfig, storage: StorageRoot
) -> MaterializeResult:
    """Every configured model, the do-nothing floor and (where the suite has gold answers) the gold replay
    on one benchmark, through `evals.suites.run_suite`: success with Wilson 95% intervals, pass^k,
    failure categories, the harness check; `scores.json` beside. `synthetic_heldout` uses the scripted
    (rule-based) user; the tau and ACEBench conversational suites need a user-simulator endpoint."""
    benchmark = context.partition_key
    agents, missing = _agents(config, storage)
    if missing:
        context.log.warning(f"not scored, never materialised: {missing}")
    options = SuiteOptions(
        seed=config.seed,
        tau2_split=config.tau2_split,
        tau_split=config.tau_split,
        max_tasks=config.tau2_max_tasks,
        trials=config.tau2_trials,
        max_steps=config.tau2_max_steps,
        taubench_root=config.taubench_root(storage),
        acebench_root=config.acebench_root(storage),
        acebench_language=config.acebench_language,
        acebench_max_items=config.acebench_max_items,
        max_agent_turns=config.max_agent_turns,
        rollouts_per_task=config.rollouts_per_task,
        graded_turns_per_group=config.graded_turns_per_group,
    )
    report = run_suite(
        benchmark,
        agents,
        storage.artefact(Artefact.BENCHMARKS, benchmark),
        options,
        user=_user_backend(config),
        synthetic=synthetic_suite(storage, config) if benchmark == "synthetic_heldout" else None,
        log=context.log.info,
    )
    metadata = {
        **suite_metadata(report),
        "models_missing": MetadataValue.json(missing),
        "guided_tool_names": config.guided_tool_names,
    }
    return MaterializeResult(
        data_version=content_version(storage.artefact(Artefact.BENCHMARKS, benchmark)), metadata=metadata
    )


def _agents(config: BenchmarkConfig, storage: StorageRoot) -> tuple[dict[str, ChatBackend], list[str]]:
    """The configured checkpoints that exist (and the configured endpoint), and the models never trained."""
    trained = [m for m in config.models if (storage.artefact(Artefact.MODELS, m) / "config.json").exists()]
    agents: dict[str, ChatBackend] = {
        m: HFChatBackend(
            storage.artefact(Artefact.MODELS, m),
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=config.seed,
            guided_tool_names=config.guided_tool_names,
        )
        for m in trained
    }
    if config.agent_base_url and config.agent_model:
        agents[f"endpoint:{config.agent_model}"] = OpenAIChatBackend(
            config.agent_base_url, config.agent_model, default_sampling={"temperature": config.temperature}
        )
    return agents, sorted(set(config.models) - set(trained))


def _user_backend(config: BenchmarkConfig) -> ChatBackend | None:
    """The configured user-simulator endpoint (tau2 airline/retail, tau-bench, ACEBench multi-turn)."""
    if config.user_base_url and config.user_model:
        return OpenAIChatBackend(
            config.user_base_url, config.user_model, default_sampling={"temperature": 0.0}
        )
    return None
