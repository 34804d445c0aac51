"""The incremental lineage: a spec edit makes exactly its domain stale (by Dagster's own staleness), and a
main job killed mid-training resumes from its last checkpoint on the next run."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.definitions.data_version import StaleStatus

from agentscaler_assets.cli import main as agentscaler
from agentscaler_assets.definitions import ALL_ASSETS, ALL_CHECKS, SOURCE_ASSETS
from agentscaler_assets.freshness import stale_resolver, whole_lineage
from agentscaler_assets.main_job import CATALOG_STAGE, DOMAIN_STAGE, run_main_job
from agentscaler_assets.source_assets import report_spec_version
from agentscaler_assets.training_assets import phase_config
from envgen.catalog.loaders import bundled_catalog_dir
from tests.assets.tiny_job import TINY_MODEL, TINY_RUN, tiny_resources
from train.launch import read_phase_result, run_phase_from_files

REPO = Path(__file__).resolve().parents[2]
GRAPH = whole_lineage()
ONLY_DOMAINS = [
    "training",
    "rl",
    "evaluation",
    "studies",
]  # main_job.skip: the catalog and domain stages alone


@pytest.fixture
def instance(tmp_path):
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    with DagsterInstance.from_ref(DagsterInstance.local_temp(str(folder)).get_ref()) as inst:
        yield inst


def _statuses(instance: DagsterInstance) -> dict[tuple[str, str | None], StaleStatus]:
    resolver = stale_resolver(instance, GRAPH)
    found = {(a, None): resolver.get_status(AssetKey(a)) for a in CATALOG_STAGE}
    for slug in instance.get_dynamic_partitions("domain"):
        found |= {(a, slug): resolver.get_status(AssetKey(a), slug) for a in DOMAIN_STAGE}
    return found


def test_editing_one_domains_spec_makes_exactly_that_partition_stale(instance, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("airline.json", "banking.json", "library.json"):
        shutil.copy(bundled_catalog_dir() / name, specs / name)
    config = {
        "ops": {**TINY_RUN["ops"], "api_catalog": {"config": {"sources": [str(specs)]}}},
        "main_job": {"skip": ONLY_DOMAINS},
    }
    resources = tiny_resources(tmp_path / "store")
    assert run_main_job(instance, config, resources).ok
    slugs = set(instance.get_dynamic_partitions("domain"))
    assert slugs == {"airline", "banking", "library"}
    assert set(_statuses(instance).values()) == {StaleStatus.FRESH}

    library = specs / "library.json"
    doc = json.loads(library.read_text())
    doc["tools"][0]["description"] = "Search the public library's catalog. " + doc["tools"][0]["description"]
    library.write_text(json.dumps(doc))
    assert report_spec_version(instance, [specs])  # what `agentscaler run` and the catalog sensor do first
    stale = {k for k, s in _statuses(instance).items() if s != StaleStatus.FRESH}
    assert stale == {("api_catalog", None)}  # Dagster does not propagate: the catalog first

    everything = [*SOURCE_ASSETS, *ALL_ASSETS, *ALL_CHECKS]
    catalog_config = {"ops": {"api_catalog": config["ops"]["api_catalog"]}}
    run = materialize(
        everything, selection=CATALOG_STAGE, instance=instance, resources=resources, run_config=catalog_config
    )
    assert run.success
    stale = {k for k, s in _statuses(instance).items() if s != StaleStatus.FRESH}
    assert stale == {("domain_environment", "library"), ("domain_tasks", "library")}

    counts = {
        s: len(instance.fetch_materializations(AssetKey("trajectories"), limit=100).records) for s in slugs
    }
    report = run_main_job(instance, config, resources)
    assert report.ok and [(stage, part) for stage, part, _, _ in report.runs] == [("domain", "library")]
    assert set(_statuses(instance).values()) == {StaleStatus.FRESH}
    assert (
        len(instance.fetch_materializations(AssetKey("trajectories"), limit=100).records)
        == counts["airline"] + 1
    )


def test_a_main_job_killed_mid_training_resumes_from_its_last_checkpoint(instance, tmp_path):
    store = tmp_path / "store"
    phase1 = store / "models" / "phase1"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.assets.tiny_job",
            instance.root_directory,
            str(store),
            "evaluation",
            "studies",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not (phase1 / "checkpoint-100" / "trainer_state.json").exists():
        assert child.poll() is None, "the job ended before phase 1 saved checkpoint-100"
        time.sleep(0.2)
    time.sleep(0.5)  # let the checkpoint finish writing
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (phase1 / "phase_result.json").exists(), "killed before phase 1 finished"
    saved = max(int(p.name.split("-")[1]) for p in phase1.glob("checkpoint-*"))

    config = {**TINY_RUN, "main_job": {"skip": ["rl", "evaluation", "studies"]}}
    report = run_main_job(instance, config, tiny_resources(store))
    assert report.ok
    ran = [v.asset for v in report.verdicts if v.run]
    assert ran == ["phase1_model", "phase2_model", "vertical_only_model"]  # nothing completed runs again
    resumed = read_phase_result(phase1)
    assert resumed.resumed_from and int(resumed.resumed_from.rsplit("-", 1)[1]) >= saved - 50
    assert resumed.global_step == 280
    steps = [s for s, _ in resumed.train_loss_history]
    assert steps == sorted(set(steps))  # the whole run's history, no step logged twice

    cfg = phase_config(TINY_MODEL, 1)
    whole = run_phase_from_files(
        store / "models" / "base",
        store / "sft" / "sft_phase1.parquet",
        tmp_path / "whole",
        cfg,
        TINY_MODEL.max_validation_rows,
    )
    assert whole.resumed_from is None
    assert (
        abs(resumed.val_assistant_loss_after - whole.val_assistant_loss_after)
        <= 0.02 * whole.val_assistant_loss_after
    )


def test_the_assets_of_a_failed_run_run_again_with_their_checks(instance, tmp_path, monkeypatch):
    """A domain stage that fails after its environment materialised: the next run rebuilds the environment
    too (a failed run may be a failed blocking check on it), not only the missing steps."""
    import agentscaler_assets.environment_assets as environment_assets

    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(bundled_catalog_dir() / "banking.json", specs / "banking.json")
    shutil.copy(bundled_catalog_dir() / "airline.json", specs / "airline.json")
    config = {
        "ops": {**TINY_RUN["ops"], "api_catalog": {"config": {"sources": [str(specs)]}}},
        "main_job": {"skip": ONLY_DOMAINS},
    }
    resources = tiny_resources(tmp_path / "store")

    def no_tasks(*_args, **_kwargs):
        raise RuntimeError("task sampling broke")

    monkeypatch.setattr(environment_assets, "sample_tasks", no_tasks)
    failed = run_main_job(instance, config, resources)
    assert not failed.ok and sorted(failed.failed) == ["domain:airline", "domain:banking"]
    monkeypatch.undo()
    report = run_main_job(instance, config, resources)
    assert report.ok and [stage for stage, *_ in report.runs] == ["domain", "domain"]
    environment = [v for v in report.verdicts if v.asset == "domain_environment"]
    assert [v.reason for v in environment] == ["its last run failed"] * 2
    assert set(_statuses(instance).values()) == {StaleStatus.FRESH}


def test_a_missing_spec_source_is_named_and_nothing_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("AGENTSCALER_HOME", str(tmp_path / "store"))
    config = tmp_path / "run.yaml"
    config.write_text(f"ops: {{api_catalog: {{config: {{sources: [{tmp_path / 'gone'}]}}}}}}\n")
    assert agentscaler(["run", "--profile", "smoke", "--config", str(config)]) == 2
    assert f"catalog source {tmp_path / 'gone'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
