"""Sensors: new API specs start a catalog run; new or re-synthesised domains start their domain runs.

- `catalog_watch_sensor` watches the folder named by AGENTSCALER_CATALOG_WATCH (read at every tick, so a
  deployment can set it without code) and requests a catalog-stage run with `api_catalog` pointed at that
  folder whenever its spec files changed. Its cursor is a fingerprint of the files a catalog run would read
  (envgen.catalog.loaders.spec_files): relative names, sizes and modification times, so a tick costs a
  directory walk, never a read of the specs, and an unchanged folder requests nothing.
- `domain_partitions_sensor` fans the domain stage out: one run per live `domain` partition whose last
  domain-stage asset (`filtered_trajectories`) was never materialised, or was materialised before the
  latest `domains` materialisation (a re-synthesis: the domain may have other tools now). It reads the
  partition keys from the instance at every tick, so keys `domains` retired are never requested, and
  waits while a catalog-stage run is in progress (its `domains` is not recorded yet).
"""

import hashlib
import os
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from agentscaler_assets.catalog_assets import domains
from agentscaler_assets.jobs import (
    DOMAIN_STAGE_ASSETS,
    STAGE_TAG,
    TRIGGER_TAG,
    catalog_run_config,
    catalog_stage_job,
    default_sensor_status,
    domain_stage_job,
)
from agentscaler_assets.partitions import domain_partitions
from envgen.catalog.loaders import spec_files

WATCH_ENV = "AGENTSCALER_CATALOG_WATCH"
CATALOG_BUSY = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def folder_fingerprint(folder: Path) -> tuple[str, int]:
    """A hash of the spec files under `folder` (relative name, size, mtime in ns) and how many there are."""
    files = spec_files([folder])
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20], len(files)


def make_catalog_watch_sensor(
    folder: str | None = None, minimum_interval_seconds: int = 60
) -> SensorDefinition:
    """The catalog-watching sensor, for `folder`, or for AGENTSCALER_CATALOG_WATCH read at each tick."""

    @sensor(
        name="catalog_watch_sensor",
        target=catalog_stage_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_sensor_status(),
        description=f"A catalog-stage run when spec files under ${WATCH_ENV} are added, edited or removed.",
    )
    def catalog_watch_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
        where = folder or os.environ.get(WATCH_ENV, "")
        if not where:
            return SkipReason(f"{WATCH_ENV} is not set: no catalog folder to watch")
        root = Path(where).expanduser().resolve()
        if not root.is_dir():
            return SkipReason(f"{WATCH_ENV}={where}: {root} is not a folder")
        fingerprint, n_files = folder_fingerprint(root)
        if n_files == 0:
            return SkipReason(f"no spec files (*.json, *.jsonl, *.yaml, *.yml) under {root}")
        if fingerprint == context.cursor:
            return SkipReason(f"{n_files} spec files under {root}, unchanged since the last request")
        context.update_cursor(fingerprint)
        return RunRequest(
            run_key=f"catalog-{fingerprint}",
            run_config=catalog_run_config([root]),
            tags={STAGE_TAG: "catalog", TRIGGER_TAG: "catalog_watch", "agentscaler/catalog": str(root)},
        )

    return catalog_watch_sensor


def domains_to_run(instance: DagsterInstance, live: list[str]) -> tuple[list[str], int]:
    """The keys of `live` whose domain stage is missing or older than the latest `domains`
    materialisation, and that materialisation's storage id (0 when `domains` never ran here)."""
    latest = instance.fetch_materializations(domains.key, limit=1).records
    since = latest[0].storage_id if latest else 0
    done = instance.get_latest_storage_id_by_partition(
        DOMAIN_STAGE_ASSETS[-1].key, DagsterEventType.ASSET_MATERIALIZATION, partitions=set(live)
    )
    return [key for key in live if done.get(key, -1) < since], since


@sensor(
    name="domain_partitions_sensor",
    target=domain_stage_job,
    minimum_interval_seconds=30,
    default_status=default_sensor_status(),
    description=(
        "One domain-stage run per `domain` partition never materialised, or materialised before the "
        "latest `domains` run; retired partitions are never requested."
    ),
)
def domain_partitions_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Requests are keyed by (partition, `domains` materialisation): the daemon launches each once, so a
    failed domain is retried after the next re-synthesis, not at every tick."""
    if context.instance.get_runs(RunsFilter(tags={STAGE_TAG: "catalog"}, statuses=CATALOG_BUSY), limit=1):
        # `domains` adds partitions before its materialisation is recorded: wait for the run to finish, so
        # each partition is requested once, against the new `domains`.
        return SkipReason("a catalog-stage run is in progress: waiting for its `domains`")
    live = list(context.instance.get_dynamic_partitions(domain_partitions.name))
    if not live:
        return SkipReason("no `domain` partitions yet: materialise the catalog stage (api_catalog … domains)")
    wanted, since = domains_to_run(context.instance, live)
    if not wanted:
        return SkipReason("every live domain partition is up to date with the latest `domains`")
    return SensorResult(
        run_requests=[
            RunRequest(
                partition_key=key,
                run_key=f"domain-{key}-{since}",
                tags={STAGE_TAG: "domain", TRIGGER_TAG: "domain_partitions_sensor"},
            )
            for key in wanted
        ],
        cursor=str(since),
    )


catalog_watch_sensor = make_catalog_watch_sensor()

ALL_SENSORS: list[SensorDefinition] = [catalog_watch_sensor, domain_partitions_sensor]
