"""The main job on the `smoke` profile: shared by the end-to-end tests, and runnable as a process
(`python -m tests.assets.tiny_job DAGSTER_HOME STORAGE [skip ...]`) so that a test can kill it midway."""

import sys
from pathlib import Path

from dagster import DagsterInstance

from agentscaler_assets.cli import with_preset
from agentscaler_assets.main_job import run_main_job
from agentscaler_assets.resources import SMOKE_MODEL, StorageRoot, resources_for_profile

# The `smoke` profile's run config and model (presets/smoke.yaml, resources.SMOKE_MODEL), as the CLI runs it.
TINY_RUN = with_preset("smoke", {})
TINY_MODEL = SMOKE_MODEL


def tiny_resources(storage: Path | str) -> dict:
    """The `smoke` profile's resources, with the storage root at `storage`."""
    return {**resources_for_profile("smoke"), "storage": StorageRoot(root=str(storage))}


def main(argv: list[str]) -> int:
    """Run the tiny main job against the instance folder argv[0] and storage argv[1], skipping the stages
    or benchmark partitions named after them; exit 0 when every run succeeded."""
    instance_dir, storage, skip = argv[0], argv[1], argv[2:]
    config = {**TINY_RUN, "main_job": {"skip": skip}}
    with DagsterInstance.from_ref(DagsterInstance.local_temp(instance_dir).get_ref()) as instance:
        report = run_main_job(instance, config, tiny_resources(storage))
    print(f"materialised {report.materialised} in {len(report.runs)} runs; {report.up_to_date} up to date")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
