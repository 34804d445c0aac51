"""Jobs that schedules and sensors launch: the stages of the main job, one Dagster run each.

Dagster refuses one run that mixes unpartitioned assets and the dynamic `domain` partitions, so the
automated path mirrors `agentscaler run` (main_job.py): a catalog-stage run (unpartitioned) first; the
`domains` asset registers the partitions; then one domain-stage run per partition, each a separate run
that shows in the UI with its partition key. Each stage job includes the asset checks of its assets, so
the blocking ones stop a domain whose environment or tasks are broken before rollouts are spent on it.
"""

import os
from pathlib import Path
from typing import Any

from dagster import AssetSelection, DefaultScheduleStatus, DefaultSensorStatus, define_asset_job

from agentscaler_assets.catalog_assets import api_catalog, domains, tool_graph
from agentscaler_assets.environment_assets import domain_environment, domain_tasks
from agentscaler_assets.experience_assets import filtered_trajectories, trajectories

# The same assets, in the same order, as main_job.CATALOG_STAGE and DOMAIN_STAGE (tests hold them equal;
# main_job imports the Definitions module, which imports this one, so the lists cannot be imported here).
CATALOG_STAGE_ASSETS = [api_catalog, tool_graph, domains]
DOMAIN_STAGE_ASSETS = [domain_environment, domain_tasks, trajectories, filtered_trajectories]
STAGE_TAG = "agentscaler/stage"  # the tag main_job puts on its runs, so automated runs filter the same way
TRIGGER_TAG = "agentscaler/trigger"

catalog_stage_job = define_asset_job(
    "catalog_stage",
    selection=AssetSelection.assets(*CATALOG_STAGE_ASSETS),
    description="API specs → tool graph → domains (which adds and retires the `domain` partitions).",
    tags={STAGE_TAG: "catalog"},
)

domain_stage_job = define_asset_job(
    "domain_stage",
    selection=AssetSelection.assets(*DOMAIN_STAGE_ASSETS),
    description="One domain: environment → tasks → trajectories → funnel, with their checks.",
    tags={STAGE_TAG: "domain"},
)

AUTOMATION_ENV = "AGENTSCALER_AUTOMATION"


def automation_on() -> bool:
    """Whether schedules and sensors start switched on (AGENTSCALER_AUTOMATION=1/true/on), as a deployment
    wants; off by default, so `dagster dev` on a laptop never starts work nobody asked for."""
    return os.environ.get(AUTOMATION_ENV, "").strip().lower() in ("1", "true", "on", "yes")


def default_sensor_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED


def default_schedule_status() -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation_on() else DefaultScheduleStatus.STOPPED


def catalog_run_config(sources: list[Path] | None = None) -> dict[str, Any]:
    """Run config of a catalog-stage run: `api_catalog` reads `sources` (absolute paths, since the daemon
    may run elsewhere), or the bundled catalog when there are none."""
    if not sources:
        return {}
    return {"ops": {"api_catalog": {"config": {"sources": [str(Path(s).resolve()) for s in sources]}}}}
