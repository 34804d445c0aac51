"""Observable source assets: what the lineage reads from outside, versioned so Dagster knows what changed.

- `api_specs`: the spec files a catalog run reads. Its data version is a hash of their bytes; `agentscaler
  run`, the re-synthesis schedule and the catalog sensor record it (`report_spec_version`) before they
  decide whether `api_catalog` must run, and the UI's "Observe" button records it for the watched folder
  (AGENTSCALER_CATALOG_WATCH) or the bundled catalog.
- `domain_spec`: one domain's slice of the catalog (its row in the domains table and its tools' specs),
  partitioned by `domain`. `domains` records a version per partition each time it runs, and the domain
  stage depends on this asset rather than on `domains` itself: a catalog edit changes `domains`' version,
  but only the partitions whose slice changed become stale, not every domain.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    DagsterInstance,
    DataVersion,
    DataVersionsByPartition,
    ObserveResult,
    multi_observable_source_asset,
    observable_source_asset,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from agentscaler_assets.artefacts import Artefact
from agentscaler_assets.partitions import domain_partitions
from agentscaler_assets.resources import StorageRoot
from agentscaler_assets.versions import content_version, value_version
from envgen.catalog.loaders import bundled_catalog_dir, spec_files

WATCH_ENV = "AGENTSCALER_CATALOG_WATCH"
API_SPECS = AssetKey("api_specs")
DOMAIN_SPEC = AssetKey("domain_spec")
_NOT_IN_SLICE = ("source_origin",)  # where a spec file lies is not what the domain is built from


def spec_sources(configured: Sequence[str | Path] | None = None) -> list[Path]:
    """The spec files or folders a catalog run reads: the configured ones, else the bundled catalog."""
    return [Path(p) for p in configured or []] or [bundled_catalog_dir()]


def spec_version(sources: list[Path]) -> DataVersion:
    """A hash of the bytes of every spec file a catalog run over `sources` reads."""
    return content_version(*spec_files(sources))


def _latest_version(instance: DagsterInstance, key: AssetKey, partition: str | None = None) -> str | None:
    record = instance.get_latest_data_version_record(key, True, partition)
    if record is None or record.asset_observation is None:
        return None
    return record.asset_observation.tags.get(DATA_VERSION_TAG)


def _observe(instance: DagsterInstance, key: AssetKey, version: str, partition: str | None = None) -> bool:
    """Record `version` for `key` (and partition) unless it is the latest already; True when it changed."""
    if _latest_version(instance, key, partition) == version:
        return False
    instance.report_runless_asset_event(
        AssetObservation(key, partition=partition, tags={DATA_VERSION_TAG: version})
    )
    return True


def report_spec_version(instance: DagsterInstance, sources: list[Path]) -> bool:
    """Record the data version of the specs under `sources`; True when they changed since the last record."""
    return _observe(instance, API_SPECS, spec_version(sources).value)


def domain_spec_versions(storage: StorageRoot) -> dict[str, str]:
    """Each live domain's slice version: its domains-table row and its tools' catalog rows."""
    table = pl.read_parquet(storage.artefact(Artefact.DOMAINS))
    catalog = pl.read_parquet(storage.artefact(Artefact.CATALOG))
    catalog = catalog.drop([c for c in _NOT_IN_SLICE if c in catalog.columns])
    versions = {}
    for row in table.iter_rows(named=True):
        tools = catalog.filter(pl.col("name").is_in(row["tools"])).sort("name").to_dicts()
        versions[row["slug"]] = value_version({"domain": row, "tools": tools})
    return versions


def report_domain_spec_versions(instance: DagsterInstance, versions: dict[str, str]) -> list[str]:
    """Record each partition's slice version; the partitions whose slice changed (or is new)."""
    return [slug for slug, v in sorted(versions.items()) if _observe(instance, DOMAIN_SPEC, v, slug)]


@observable_source_asset(
    name=API_SPECS.path[-1],
    group_name="catalog",
    description="The API spec files a catalog run reads (the watched folder, else the bundled catalog).",
)
def api_specs() -> DataVersion:
    watched = os.environ.get(WATCH_ENV, "")
    return spec_version(spec_sources([watched] if watched else []))


@multi_observable_source_asset(
    specs=[
        AssetSpec(
            DOMAIN_SPEC,
            deps=[AssetKey("domains")],
            partitions_def=domain_partitions,
            group_name="catalog",
            description="One domain's slice of the catalog: its domains-table row and its tools' specs.",
        )
    ],
    required_resource_keys={"storage"},
)
def domain_spec(context) -> ObserveResult:  # noqa: ANN001 (Dagster's observe context)
    versions = domain_spec_versions(context.resources.storage)
    return ObserveResult(asset_key=DOMAIN_SPEC, data_version=DataVersionsByPartition(versions))
