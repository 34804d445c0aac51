"""Whether an asset (partition) must run: Dagster's own staleness, and what Dagster cannot see.

Dagster marks an asset stale when its code version changed or a parent's data version changed since it was
materialised (versions.py gives every asset both), and missing when it never was. Three causes are
invisible to it, and `agentscaler run` adds them:
- **a failed run**: an asset whose latest materialisation came from a run that failed (a blocking check
  on it, or a later step) runs again, checks included, rather than have its downstream built on it.
- **config**: the run config and resources an asset ran with. Each run `agentscaler run` launches carries a
  fingerprint per selected asset as a run tag (`agentscaler/config/<asset>`); a different fingerprint now
  means the asset must run again. A materialisation without the tag (launched from the UI) is judged by
  Dagster's staleness alone.
- **wide fan-in**: Dagster skips partition-level checks for a parent with 100 or more partitions (a big
  catalog's `domain` partitions under the SFT sets); there any parent partition materialised after the
  asset counts as a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterInstance,
    DagsterInvariantViolationError,
    DagsterRun,
    DagsterRunStatus,
    DynamicPartitionsDefinition,
)
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.data_version import (
    SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD,
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._core.definitions.temporal_context import TemporalContext
from dagster._time import get_current_datetime

from agentscaler_assets.source_assets import report_spec_version
from agentscaler_assets.versions import config_fingerprint

CONFIG_TAG_PREFIX = "agentscaler/config/"


@dataclass(frozen=True)
class Verdict:
    """One asset (partition) of a stage: whether it runs, and why (or why not)."""

    asset: str
    partition: str | None
    run: bool
    reason: str


def lineage_graph(context: Any) -> BaseAssetGraph:
    """The asset graph a sensor or schedule judges against: its code location's, or (a context built in
    a test without one) the whole lineage's."""
    try:
        return context.repository_def.asset_graph
    except DagsterInvariantViolationError:  # a context built without definitions
        pass
    return whole_lineage()


def whole_lineage() -> BaseAssetGraph:
    """The asset graph of every asset of the lineage, sources included, built from the assets alone
    (resolving the Definitions would load resources and instance state that a judgement does not need)."""
    from agentscaler_assets.definitions import ALL_ASSETS, SOURCE_ASSETS  # here: definitions imports sensors

    return AssetGraph.from_assets([*SOURCE_ASSETS, *ALL_ASSETS])


def catalog_verdict(context: Any, sources: list[Path]) -> Verdict:
    """For a sensor or schedule: record the content version of the specs under `sources` on `api_specs`,
    then judge `api_catalog` against it (run when it is missing or the specs changed)."""
    report_spec_version(context.instance, sources)
    (verdict,) = Freshness(context.instance, (), lineage_graph(context), None, {}).verdicts(["api_catalog"])
    return verdict


def stale_resolver(instance: DagsterInstance, graph: BaseAssetGraph) -> CachingStaleStatusResolver:
    """Dagster's staleness resolver (the one behind the UI's badges), as of now: it caches what it reads,
    so make a new one after anything was materialised."""
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


class Freshness:
    """Verdicts for one lineage against one instance, one run config and one set of resources."""

    def __init__(
        self,
        instance: DagsterInstance,
        assets: Sequence[AssetsDefinition],
        graph: BaseAssetGraph,
        run_config: Mapping[str, Any] | None,
        resources: Mapping[str, Any],
        force: bool = False,
    ) -> None:
        """`run_config` None: the config a run will use is not known here (a sensor, a schedule), so
        assets are judged by Dagster's staleness and the fan-in check only."""
        self.instance, self.graph, self.force = instance, graph, force
        self._ops = None if run_config is None else run_config.get("ops", {})
        self._resources = resources
        self._defs = {key.to_user_string(): a for a in assets for key in a.keys}
        self._runs: dict[str, DagsterRun | None] = {}

    def fingerprint(self, asset: str) -> str:
        """The config fingerprint of `asset` under this run config: its op config and its resources."""
        needed = self._defs[asset].required_resource_keys
        return config_fingerprint(
            (self._ops or {}).get(asset, {}).get("config"),
            {k: v for k, v in self._resources.items() if k in needed},
        )

    def config_tags(self, selection: Sequence[str]) -> dict[str, str]:
        """Run tags recording the config fingerprint of each selected asset."""
        return {CONFIG_TAG_PREFIX + a: self.fingerprint(a) for a in selection}

    def verdicts(self, assets: Sequence[str], partition: str | None = None) -> list[Verdict]:
        """Whether each of `assets` (at `partition`) must run now, judged against the instance as it is."""
        resolver = stale_resolver(self.instance, self.graph)
        return [self._verdict(resolver, a, partition) for a in assets]

    def _verdict(self, resolver: CachingStaleStatusResolver, asset: str, partition: str | None) -> Verdict:
        def verdict(run: bool, reason: str) -> Verdict:
            return Verdict(asset, partition, run, reason)

        if self.force:
            return verdict(True, "forced (--force)")
        key = AssetKey(asset)
        status = resolver.get_status(key, partition)
        if status == StaleStatus.MISSING:
            return verdict(True, "never materialised")
        if status == StaleStatus.STALE:
            causes = resolver.get_stale_causes(key, partition)
            return verdict(True, "; ".join(_describe(c) for c in causes[:3]) or "stale")
        record = self._latest(key, partition)
        if record is None:  # Dagster found a version but no materialisation: an observation only
            return verdict(True, "never materialised")
        run = self._run(record.run_id)
        if run is not None and run.status == DagsterRunStatus.FAILURE:
            # A blocking check failed on it, or a later step of its run did: run it (and its checks) again
            # rather than build on it. A killed run stays STARTED, and what it finished is kept.
            return verdict(True, "its last run failed")
        recorded = (run.tags if run is not None else {}).get(CONFIG_TAG_PREFIX + asset)
        if self._ops is not None and recorded is not None and recorded != self.fingerprint(asset):
            return verdict(True, "run config or resources changed")
        newer = self._newer_wide_parents(key, record.storage_id)
        if newer:
            return verdict(True, newer)
        return verdict(False, "up to date")

    def _latest(self, key: AssetKey, partition: str | None):  # noqa: ANN202 (Dagster's EventLogRecord)
        records = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
        ).records
        return records[0] if records else None

    def _run(self, run_id: str) -> DagsterRun | None:
        if run_id not in self._runs:
            self._runs[run_id] = self.instance.get_run_by_id(run_id)
        return self._runs[run_id]

    def _newer_wide_parents(self, key: AssetKey, since: int) -> str:
        """A reason when a parent with too many partitions for Dagster's check was materialised after
        `since` (a storage id), else ''. Only an unpartitioned asset fans in over every partition."""
        if self.graph.get(key).partitions_def is not None:
            return ""
        for parent in sorted(self.graph.get(key).parent_keys):
            definition = self.graph.get(parent).partitions_def
            if definition is None or parent == key:
                continue
            n = (
                len(self.instance.get_dynamic_partitions(definition.name))
                if isinstance(definition, DynamicPartitionsDefinition)
                else definition.get_num_partitions()
            )
            if n < SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD:
                continue
            newer = self.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=parent, after_storage_id=since), limit=1
            ).records
            if newer:
                return f"{parent.to_user_string()} re-materialised ({n} partitions: checked by time)"
        return ""


def _describe(cause: Any) -> str:
    """'domain_spec[airline] has a new data version' from a Dagster StaleCause."""
    dep = cause.dependency
    if dep is None:
        return cause.reason
    where = dep.asset_key.to_user_string() + (f"[{dep.partition_key}]" if dep.partition_key else "")
    return f"{where}: {cause.reason.replace('has a new dependency ', 'new ')}"


def verdict_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """Lines for a person: what runs, grouped by reason, then what is up to date, on one line."""
    by_reason: dict[str, list[str]] = {}
    for v in verdicts:
        if v.run:
            by_reason.setdefault(v.reason, []).append(v.asset)
    fresh = [v.asset for v in verdicts if not v.run]
    lines = [f"{'run':<7} {', '.join(assets)}: {reason}" for reason, assets in by_reason.items()]
    return lines + ([f"{'skip':<7} {', '.join(fresh)}: up to date"] if fresh else [])
