"""Sensors: new API specs start a catalog run; new or re-synthesised domains start their domain runs.

- `catalog_watch_sensor` watches the folder named by AGENTSCALER_CATALOG_WATCH (read at every tick, so a
  deployment can set it without code) and requests a catalog-stage run with `api_catalog` pointed at that
  folder whenever its spec files changed. Its cursor is a fingerprint of the files a catalog run would read
  (envgen.catalog.loaders.spec_files): relative names, sizes and modification times, so a tick costs a
  directory walk, and an unchanged folder requests nothing. When the fingerprint moves, the specs' content
  version is recorded on `api_specs` (source_assets.py); files touched but not changed request nothing.
- `domain_partitions_sensor` fans the domain stage out: one run per live `domain` partition whose domain
  stage is missing or stale by Dagster's own staleness (freshness.py): a new domain, a domain whose slice
  of the catalog (`domain_spec`) changed, or one whose stage code changed. A re-synthesis that leaves a
  domain's tools as they were requests nothing for it. It reads the partition keys from the instance at
  every tick, so keys `domains` retired are never requested, and waits while a catalog-stage run is in
  progress (its `domains` is not recorded yet).
"""

import hashlib
import os
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from agentscaler_assets.freshness import Freshness, catalog_verdict, lineage_graph
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
from agentscaler_assets.source_assets import DOMAIN_SPEC, WATCH_ENV
from agentscaler_assets.versions import value_version
from envgen.catalog.loaders import spec_files

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
        verdict = catalog_verdict(context, [root])
        if not verdict.run:
            return SkipReason(f"{n_files} spec files under {root} touched; api_catalog is {verdict.reason}")
        return RunRequest(
            run_key=f"catalog-{fingerprint}",
            run_config=catalog_run_config([root]),
            tags={STAGE_TAG: "catalog", TRIGGER_TAG: "catalog_watch", "agentscaler/catalog": str(root)},
        )

    return catalog_watch_sensor


def domains_to_run(context: SensorEvaluationContext, live: list[str]) -> dict[str, str]:
    """The keys of `live` whose domain stage is missing or stale, each with a run key that names what it
    is stale against (its slice's version and the stage's code), so a failed domain is requested again
    only once something it depends on changes."""
    graph = lineage_graph(context)
    freshness = Freshness(context.instance, (), graph, None, {})
    stage = [a.key.to_user_string() for a in DOMAIN_STAGE_ASSETS]
    code = value_version([graph.get(a.key).code_version for a in DOMAIN_STAGE_ASSETS])
    wanted = {}
    for key in live:
        due = [v for v in freshness.verdicts(stage, key) if v.run]
        if due:
            spec = context.instance.get_latest_data_version_record(DOMAIN_SPEC, True, key)
            wanted[key] = f"domain-{key}-{spec.storage_id if spec else 0}-{code[:8]}-{due[0].asset}"
    return wanted


@sensor(
    name="domain_partitions_sensor",
    target=domain_stage_job,
    minimum_interval_seconds=30,
    default_status=default_sensor_status(),
    description=(
        "One domain-stage run per `domain` partition whose domain stage is missing or stale (a new "
        "domain, a changed slice of the catalog, changed code); retired partitions are never requested."
    ),
)
def domain_partitions_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    if context.instance.get_runs(RunsFilter(tags={STAGE_TAG: "catalog"}, statuses=CATALOG_BUSY), limit=1):
        # `domains` adds partitions before its materialisation is recorded: wait for the run to finish, so
        # each partition is requested once, against the new `domains`.
        return SkipReason("a catalog-stage run is in progress: waiting for its `domains`")
    live = list(context.instance.get_dynamic_partitions(domain_partitions.name))
    if not live:
        return SkipReason("no `domain` partitions yet: materialise the catalog stage (api_catalog … domains)")
    wanted = domains_to_run(context, live)
    if not wanted:
        return SkipReason(f"all {len(live)} domain partitions are up to date")
    return SensorResult(
        run_requests=[
            RunRequest(
                partition_key=key,
                run_key=run_key,
                tags={STAGE_TAG: "domain", TRIGGER_TAG: "domain_partitions_sensor"},
            )
            for key, run_key in wanted.items()
        ]
    )


catalog_watch_sensor = make_catalog_watch_sensor()

ALL_SENSORS: list[SensorDefinition] = [catalog_watch_sensor, domain_partitions_sensor]
