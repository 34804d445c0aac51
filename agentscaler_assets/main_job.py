"""The main job: the whole lineage, as ordered Dagster runs against one instance.

Dagster refuses one run that mixes unpartitioned assets, the dynamic `domain` partitions and the
benchmark partitions, so the job is six stages of runs: catalog (unpartitioned), one run per domain
partition, training (unpartitioned, the contamination report first), rl (phase 3, GRPO), one run per
benchmark partition, and the studies (the scaling study). Each run is recorded in the instance, so the UI
shows every materialisation with its lineage, exactly as if launched from there.

The job is incremental: before each stage (and partition) it asks which assets are missing or stale
(freshness.py, on Dagster's own staleness), runs only those and what follows them, and reports every
asset it skipped with the reason; `force=True` (`agentscaler run --force`) rebuilds everything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance, materialize

from agentscaler_assets.definitions import ALL_ASSETS, ALL_CHECKS, SOURCE_ASSETS
from agentscaler_assets.freshness import Freshness, Verdict, whole_lineage
from agentscaler_assets.partitions import BENCHMARKS, domain_partitions
from agentscaler_assets.resources import StorageRoot, resources_for_profile
from agentscaler_assets.source_assets import report_spec_version, spec_sources

log = logging.getLogger("agentscaler")

CATALOG_STAGE = ["api_catalog", "tool_graph", "domains"]
DOMAIN_STAGE = ["domain_environment", "domain_tasks", "trajectories", "filtered_trajectories"]
TRAINING_STAGE = [
    "contamination_report",
    "sft_phase1_dataset",
    "sft_phase2_dataset",
    "base_model",
    "phase1_model",
    "phase2_model",
    "vertical_only_model",
]
RL_STAGE = ["phase3_rl_model"]  # its own stage, so a profile that cannot afford it skips `rl`
EVALUATION_STAGE = ["benchmark_scores"]
STUDY_STAGE = ["scaling_study"]  # last: its check compares with the main phase-2 model's benchmark score


@dataclass
class MainJobReport:
    runs: list[tuple[str, str, bool, float]] = field(default_factory=list)  # (stage, partition, ok, seconds)
    skipped: list[str] = field(default_factory=list)  # `stage` or `stage:partition`, as main_job.skip says
    verdicts: list[Verdict] = field(default_factory=list)  # every asset (partition) judged, run or not
    materialised: int = 0  # asset (partition) materialisations of the successful runs

    @property
    def ok(self) -> bool:
        return all(r[2] for r in self.runs)

    @property
    def failed(self) -> list[str]:
        """`stage` or `stage:partition` of every run that failed."""
        return [stage if part == "-" else f"{stage}:{part}" for stage, part, ok, _ in self.runs if not ok]

    @property
    def up_to_date(self) -> int:
        """Asset (partition)s skipped because nothing they depend on changed."""
        return sum(not v.run for v in self.verdicts)


QUIET_CONSOLE = {"console": {"config": {"log_level": "INFO"}}}


def _ops_config(run_config: dict[str, Any], selection: list[str]) -> dict[str, Any]:
    """The part of a whole-job run config that concerns the selected assets (Dagster rejects the rest),
    with the console logger at INFO unless the config sets loggers itself."""
    ops = {k: v for k, v in run_config.get("ops", {}).items() if k in selection}
    return {"loggers": run_config.get("loggers", QUIET_CONSOLE), **({"ops": ops} if ops else {})}


def catalog_sources(run_config: dict[str, Any]) -> list[str]:
    """The spec sources `api_catalog` reads under this run config (none: the bundled catalog)."""
    return run_config.get("ops", {}).get("api_catalog", {}).get("config", {}).get("sources", [])


def run_main_job(
    instance: DagsterInstance,
    run_config: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
    on_run: Callable[[str, str, bool, float], None] | None = None,
    force: bool = False,
    on_verdicts: Callable[[str, str, list[Verdict]], None] | None = None,
) -> MainJobReport:
    """Materialise what is missing or stale in the lineage, every domain partition included; with `force`,
    everything.

    Each stage (and partition) is judged first (freshness.py): an up-to-date one launches no run. In the
    cheap stages the first asset that must run is run with the rest of its stage; the training stage runs
    one asset at a time and judges again after each, so a dataset rebuilt to the same content (same data
    version) retrains nothing. A stage stopped part-way (killed, failed) resumes at its first asset not
    materialised, and a phase resumes from its last checkpoint (training_assets).

    Every domain partition runs even when one fails, and the later stages then run on the domains that
    succeeded (`StorageRoot.failed_domains`): one broken domain costs only itself, and the report lists
    it, so `agentscaler run` again retries just the failed partitions (and what depends on them). Any
    other failed stage stops the job there. Stages and benchmark partitions named in the run config's
    `main_job.skip` (a profile's preset leaves out what its machine cannot afford) are reported as
    skipped, not run."""
    run_config = run_config or {}
    skip = set(run_config.get("main_job", {}).get("skip", []))
    resources = resources or resources_for_profile()
    report = MainJobReport()
    everything = [*SOURCE_ASSETS, *ALL_ASSETS, *ALL_CHECKS]
    freshness = Freshness(instance, ALL_ASSETS, whole_lineage(), run_config, resources, force)

    def materialise(stage: str, selection: list[str], partition: str | None) -> bool:
        start = time.perf_counter()
        result = materialize(
            everything,  # the selected assets' checks run too; a blocking failure stops here
            selection=selection,
            instance=instance,
            resources=resources,
            partition_key=partition,
            run_config=_ops_config(run_config, selection),
            raise_on_error=False,
            tags={"agentscaler/stage": stage, **freshness.config_tags(selection)},
        )
        took = time.perf_counter() - start
        report.runs.append((stage, partition or "-", result.success, took))
        report.materialised += len(selection) if result.success else 0
        if on_run:
            on_run(stage, partition or "-", result.success, took)
        return result.success

    def run(stage: str, assets: list[str], partition: str | None = None, one_at_a_time: bool = False) -> bool:
        if stage in skip or partition in skip:
            report.skipped.append(f"{stage}:{partition}" if partition else stage)
            return True
        pending = list(assets)
        while pending:
            verdicts = freshness.verdicts(pending, partition)
            first = next((i for i, v in enumerate(verdicts) if v.run), len(pending))
            batch = 1 if one_at_a_time and not force else len(pending) - first
            judged = verdicts[:first] + [
                v if v.run else Verdict(v.asset, partition, True, f"after {pending[first]} in the same run")
                for v in verdicts[first : first + batch]
            ]
            report.verdicts += judged
            if on_verdicts:
                on_verdicts(stage, partition or "-", judged)
            if first == len(pending):
                return True
            if not materialise(stage, pending[first : first + batch], partition):
                return False
            pending = pending[first + batch :]
        return True

    report_spec_version(instance, spec_sources(catalog_sources(run_config)))
    if not run("catalog", CATALOG_STAGE):
        return report
    slugs = instance.get_dynamic_partitions(domain_partitions.name)
    failed = [slug for slug in slugs if not run("domain", DOMAIN_STAGE, slug)]
    if failed and len(failed) == len(slugs):
        return report
    if failed:
        log.warning(f"domains {failed} failed; the later stages run on the other {len(slugs) - len(failed)}")
        storage = resources.get("storage") or StorageRoot()
        resources = {**resources, "storage": storage.model_copy(update={"failed_domains": failed})}
    if not run("training", TRAINING_STAGE, one_at_a_time=True):
        return report
    if not run("rl", RL_STAGE):
        return report
    for bench in BENCHMARKS:
        if not run("evaluation", EVALUATION_STAGE, bench):
            return report
    run("studies", STUDY_STAGE)
    return report
