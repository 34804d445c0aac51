"""The re-synthesis schedule: the catalog stage on a cron, the domain stage fanned out by a sensor.

A schedule cannot request the whole re-synthesis (catalog → environments → tasks → trajectories) as one
run, because Dagster refuses a run mixing unpartitioned assets with dynamic `domain` partitions. It
requests the catalog-stage run; when that run's `domains` materialisation lands, every live domain
partition is older than it, so `domain_partitions_sensor` (sensors.py) requests one domain-stage run per
partition. Turn both on for the full cycle.

The cron comes from AGENTSCALER_RESYNTH_CRON (default every day at 03:00, in AGENTSCALER_RESYNTH_TZ,
default UTC), read when the code location loads. The catalog read is the one the catalog sensor watches
(AGENTSCALER_CATALOG_WATCH, read at each tick) when set, else the bundled catalog. A tick whose specs are
unchanged since `api_catalog` last ran (content, not file times; freshness.catalog_verdict) launches
nothing and says so.
"""

import os
from pathlib import Path

from dagster import (
    DagsterInvalidDefinitionError,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from agentscaler_assets.freshness import catalog_verdict
from agentscaler_assets.jobs import (
    STAGE_TAG,
    TRIGGER_TAG,
    catalog_run_config,
    catalog_stage_job,
    default_schedule_status,
)
from agentscaler_assets.source_assets import WATCH_ENV, spec_sources

CRON_ENV = "AGENTSCALER_RESYNTH_CRON"
TZ_ENV = "AGENTSCALER_RESYNTH_TZ"
DEFAULT_CRON = "0 3 * * *"


def make_resynthesis_schedule(cron: str | None = None, timezone: str | None = None) -> ScheduleDefinition:
    """The schedule on `cron` (else AGENTSCALER_RESYNTH_CRON, else daily at 03:00); a bad cron string is
    refused here, naming the variable it came from, rather than by the daemon later."""
    cron = cron or os.environ.get(CRON_ENV, "").strip() or DEFAULT_CRON
    timezone = timezone or os.environ.get(TZ_ENV, "").strip() or "UTC"

    def resynthesis(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        watched = os.environ.get(WATCH_ENV, "")
        if watched and not Path(watched).is_dir():
            # Falling back to the bundled catalog would retire every domain of the watched one.
            return SkipReason(f"{WATCH_ENV}={watched} is not a folder: no re-synthesis until it is back")
        sources = [Path(watched)] if watched else []
        verdict = catalog_verdict(context, spec_sources(sources))
        if not verdict.run:
            where = watched or "the bundled catalog"
            return SkipReason(f"specs unchanged ({where}): api_catalog is {verdict.reason}")
        return RunRequest(
            run_config=catalog_run_config(sources),
            tags={STAGE_TAG: "catalog", TRIGGER_TAG: "resynthesis_schedule"},
        )

    try:
        return schedule(
            cron_schedule=cron,
            name="resynthesis_schedule",
            target=catalog_stage_job,
            execution_timezone=timezone,
            default_status=default_schedule_status(),
            description=(
                f"Re-synthesis on '{cron}' ({timezone}): the catalog stage; domain_partitions_sensor then "
                "runs the domain stage of every domain."
            ),
        )(resynthesis)
    except DagsterInvalidDefinitionError as exc:
        raise ValueError(
            f"{CRON_ENV}={cron!r} (timezone {timezone!r}) is not a valid schedule: {exc}"
        ) from exc


resynthesis_schedule = make_resynthesis_schedule()

ALL_SCHEDULES: list[ScheduleDefinition] = [resynthesis_schedule]
