"""Schedules and sensors: what they request (job, partition keys, run config), that their cursors stop
repeated requests, and that following their requests runs the lineage: spec folder → catalog run →
domain partitions → one domain run each, never one for a retired partition."""

import os
import shutil
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
    partition_loading_context,
)
from dagster._core.test_utils import create_run_for_test

from agentscaler_assets import main_job
from agentscaler_assets.cli import with_preset
from agentscaler_assets.definitions import ALL_ASSETS, ALL_CHECKS, ALL_JOBS, defs
from agentscaler_assets.jobs import CATALOG_STAGE_ASSETS, DOMAIN_STAGE_ASSETS, automation_on
from agentscaler_assets.partitions import BENCHMARKS
from agentscaler_assets.resources import LanguageModels, StorageRoot, TrainingSettings, resources_for_profile
from agentscaler_assets.schedules import CRON_ENV, DEFAULT_CRON, make_resynthesis_schedule
from agentscaler_assets.sensors import (
    WATCH_ENV,
    domain_partitions_sensor,
    make_catalog_watch_sensor,
)
from envgen.catalog.loaders import bundled_catalog_dir
from train.base_sources import GEMMA3_270M_PACKAGE


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def spec_folder(tmp_path) -> Path:
    """A folder of API specs: two of the bundled catalog's files (airline, banking)."""
    folder = tmp_path / "specs"
    folder.mkdir()
    for name in ("airline.json", "banking.json"):
        shutil.copy(bundled_catalog_dir() / name, folder / name)
    return folder


def _tick(sensor, instance: DagsterInstance, cursor: str | None = None):
    """One sensor tick as the daemon runs it, against the real Definitions (which is what lets Dagster
    check the requested partition keys against the instance's `domain` partitions)."""
    with (
        build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context,
        partition_loading_context(dynamic_partitions_store=instance),  # as the daemon sets it up
    ):
        return sensor.evaluate_tick(context)


def test_stage_jobs_run_what_the_main_job_runs():
    assert [a.key.to_user_string() for a in CATALOG_STAGE_ASSETS] == main_job.CATALOG_STAGE
    assert [a.key.to_user_string() for a in DOMAIN_STAGE_ASSETS] == main_job.DOMAIN_STAGE
    assert {j.name for j in ALL_JOBS} == {"catalog_stage", "domain_stage"}
    assert defs.resolve_schedule_def("resynthesis_schedule").job_name == "catalog_stage"
    assert defs.resolve_sensor_def("catalog_watch_sensor").job_name == "catalog_stage"
    assert defs.resolve_sensor_def("domain_partitions_sensor").job_name == "domain_stage"


# --- the re-synthesis schedule -----------------------------------------------------------------------


def test_schedule_cron_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(CRON_ENV, raising=False)
    assert make_resynthesis_schedule().cron_schedule == DEFAULT_CRON
    monkeypatch.setenv(CRON_ENV, "*/15 * * * *")
    assert make_resynthesis_schedule().cron_schedule == "*/15 * * * *"
    monkeypatch.setenv(CRON_ENV, "every night")
    with pytest.raises(ValueError, match=f"{CRON_ENV}='every night'"):
        make_resynthesis_schedule()


def _schedule_tick(schedule, instance: DagsterInstance):
    """One schedule tick; the context is closed after it, as the daemon closes it (an open one keeps the
    instance it opened set as the current one for every later test)."""
    with build_schedule_context(instance=instance) as context:
        return schedule.evaluate_tick(context)


def test_schedule_requests_a_catalog_run_of_the_watched_folder(monkeypatch, instance, spec_folder, tmp_path):
    schedule = make_resynthesis_schedule()
    monkeypatch.delenv(WATCH_ENV, raising=False)
    (bundled,) = _schedule_tick(schedule, instance).run_requests
    assert bundled.run_config == {} and bundled.tags["agentscaler/stage"] == "catalog"

    monkeypatch.setenv(WATCH_ENV, str(spec_folder))
    (watched,) = _schedule_tick(schedule, instance).run_requests
    assert watched.run_config == {"ops": {"api_catalog": {"config": {"sources": [str(spec_folder)]}}}}
    # Once api_catalog has read these specs, a tick with nothing changed launches nothing, and says so.
    storage = StorageRoot(root=str(tmp_path / "home"))
    resources = {"storage": storage, "llm": LanguageModels(), "training": TrainingSettings()}
    assert materialize(
        ALL_ASSETS,
        selection=["api_catalog"],
        instance=instance,
        resources=resources,
        run_config=watched.run_config,
    ).success
    unchanged = _schedule_tick(schedule, instance)
    assert not unchanged.run_requests and "specs unchanged" in unchanged.skip_message

    monkeypatch.setenv(WATCH_ENV, str(spec_folder / "gone"))
    skipped = _schedule_tick(schedule, instance)
    assert not skipped.run_requests and "is not a folder" in skipped.skip_message


def test_automation_switch(monkeypatch):
    monkeypatch.delenv("AGENTSCALER_AUTOMATION", raising=False)
    assert not automation_on()
    monkeypatch.setenv("AGENTSCALER_AUTOMATION", "1")
    assert automation_on()


# --- the catalog-watching sensor ---------------------------------------------------------------------


def test_catalog_sensor_requests_once_per_change(monkeypatch, instance, spec_folder):
    monkeypatch.setenv(WATCH_ENV, str(spec_folder))
    sensor = make_catalog_watch_sensor()
    first = _tick(sensor, instance)
    (request,) = first.run_requests
    assert request.run_config == {"ops": {"api_catalog": {"config": {"sources": [str(spec_folder)]}}}}
    assert request.tags["agentscaler/trigger"] == "catalog_watch" and first.cursor

    unchanged = _tick(sensor, instance, first.cursor)
    assert not unchanged.run_requests and "unchanged" in unchanged.skip_message
    (spec_folder / "README.md").write_text("not a spec")  # not a file a catalog run reads
    assert not _tick(sensor, instance, first.cursor).run_requests

    spec = spec_folder / "banking.json"
    spec.write_text(spec.read_text().replace('"description": "', '"description": "Edited. ', 1))
    stat = spec.stat()
    os.utime(spec, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # coarse-clock file systems
    edited = _tick(sensor, instance, first.cursor)
    assert len(edited.run_requests) == 1 and edited.cursor != first.cursor
    assert edited.run_requests[0].run_key != request.run_key

    (spec_folder / "more").mkdir()
    shutil.copy(bundled_catalog_dir() / "clinic.json", spec_folder / "more" / "clinic.json")
    added = _tick(sensor, instance, edited.cursor)
    assert len(added.run_requests) == 1 and added.cursor != edited.cursor


def test_catalog_sensor_skips_without_a_folder(monkeypatch, instance, tmp_path):
    monkeypatch.delenv(WATCH_ENV, raising=False)
    assert f"{WATCH_ENV} is not set" in _tick(make_catalog_watch_sensor(), instance).skip_message
    monkeypatch.setenv(WATCH_ENV, str(tmp_path / "missing"))
    assert "is not a folder" in _tick(make_catalog_watch_sensor(), instance).skip_message
    monkeypatch.setenv(WATCH_ENV, str(tmp_path))
    assert "no spec files" in _tick(make_catalog_watch_sensor(), instance).skip_message


# --- the domain fan-out sensor -----------------------------------------------------------------------


def test_domain_sensor_without_partitions_skips(instance):
    result = _tick(domain_partitions_sensor, instance)
    assert not result.run_requests and "no `domain` partitions yet" in result.skip_message


def test_domain_sensor_requests_new_keys_and_never_retired_ones(instance):
    instance.add_dynamic_partitions("domain", ["alpha", "beta", "gamma"])
    instance.delete_dynamic_partition("domain", "beta")
    requests = _tick(domain_partitions_sensor, instance).run_requests
    assert [r.partition_key for r in requests] == ["alpha", "gamma"]
    assert all(r.job_name in (None, "domain_stage") and r.run_key for r in requests)


def test_domain_sensor_waits_for_a_catalog_run_in_progress(instance):
    instance.add_dynamic_partitions("domain", ["alpha"])
    run = create_run_for_test(
        instance,
        job_name="catalog_stage",
        tags={"agentscaler/stage": "catalog"},
        status=DagsterRunStatus.STARTED,
    )
    waiting = _tick(domain_partitions_sensor, instance)
    assert not waiting.run_requests and "catalog-stage run is in progress" in waiting.skip_message
    instance.report_run_failed(run)
    assert [r.partition_key for r in _tick(domain_partitions_sensor, instance).run_requests] == ["alpha"]


def test_following_the_sensors_runs_the_lineage(monkeypatch, instance, spec_folder, tmp_path):
    """Spec folder → catalog sensor → catalog run → domain sensor → one domain run per partition, with the
    domain's checks; a materialised partition is not requested again until the next `domains`."""
    storage = StorageRoot(root=str(tmp_path / "home"))
    resources = {"storage": storage, "llm": LanguageModels(), "training": TrainingSettings()}
    test_defs = Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=ALL_JOBS, resources=resources)

    def launch(request: RunRequest, job: str):
        result = test_defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            run_config=request.run_config or None,
            partition_key=request.partition_key,
            tags=request.tags,
        )
        assert result.success
        return result

    monkeypatch.setenv(WATCH_ENV, str(spec_folder))
    first_tick = _tick(make_catalog_watch_sensor(), instance)
    (catalog_request,) = first_tick.run_requests
    catalog_cursor = first_tick.cursor
    launch(catalog_request, "catalog_stage")
    keys = list(instance.get_dynamic_partitions("domain"))
    assert "airline" in keys and "banking" in keys and len(keys) < 8  # the watched folder, not the bundle

    requests = _tick(domain_partitions_sensor, instance).run_requests
    assert sorted(r.partition_key for r in requests) == sorted(keys)
    airline = next(r for r in requests if r.partition_key == "airline")
    run = launch(
        RunRequest(
            partition_key="airline",
            run_config={"ops": {"domain_tasks": {"config": {"n_chains": 8, "vertical_n_chains": 8}}}},
            tags=airline.tags,
        ),
        "domain_stage",
    )
    checked = {(e.asset_key.to_user_string(), e.check_name) for e in run.get_asset_check_evaluations()}
    assert checked >= {
        ("domain_environment", "every_tool_executes"),
        ("domain_tasks", "gold_calls_reproduce_gold_state"),
    }

    after = _tick(domain_partitions_sensor, instance).run_requests
    assert "airline" not in {r.partition_key for r in after} and len(after) == len(keys) - 1

    # Re-synthesis of unchanged specs: `domains` runs again, but no domain's slice changed, so airline
    # stays up to date (the others are still missing).
    assert materialize(ALL_ASSETS, selection=["domains"], instance=instance, resources=resources).success
    resynthesised = _tick(domain_partitions_sensor, instance).run_requests
    assert {r.partition_key for r in resynthesised} == set(keys) - {"airline"}
    # Files touched, content unchanged: the catalog sensor launches nothing.
    spec = spec_folder / "airline.json"
    stat = spec.stat()
    os.utime(spec, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = _tick(make_catalog_watch_sensor(), instance, catalog_cursor)
    assert not touched.run_requests and "up to date" in touched.skip_message

    # One airline tool edited: the catalog runs again, and airline (only) is stale, under a new run key.
    spec.write_text(spec.read_text().replace('"description": "', '"description": "Edited. ', 1))
    os.utime(spec, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    (edit_request,) = _tick(make_catalog_watch_sensor(), instance, touched.cursor).run_requests
    launch(edit_request, "catalog_stage")
    again = _tick(domain_partitions_sensor, instance).run_requests
    assert {r.partition_key for r in again} == set(keys)
    airline_again = next(r for r in again if r.partition_key == "airline")
    assert airline_again.run_key != airline.run_key


def test_profiles_scale_the_same_lineage_and_an_unknown_one_is_named(monkeypatch):
    monkeypatch.delenv("AGENTSCALER_PROFILE", raising=False)
    local, large = resources_for_profile("local")["training"], resources_for_profile("large")["training"]
    assert resources_for_profile()["training"] == local
    assert large.hidden_size > local.hidden_size and large.num_hidden_layers > local.num_hidden_layers
    assert large.phase1_max_steps > local.phase1_max_steps and large.base_model == local.base_model == ""
    assert resources_for_profile("large")["llm"] == resources_for_profile("local")["llm"]  # still offline
    with pytest.raises(ValueError, match="'huge'"):
        resources_for_profile("huge")


def test_the_pretrained_profile_trains_gemma_with_lora_and_its_preset_sizes_the_run(monkeypatch, tmp_path):
    monkeypatch.delenv("AGENTSCALER_BASE_MODEL", raising=False)
    pretrained = resources_for_profile("pretrained")["training"]
    assert (pretrained.base_model, pretrained.use_lora) == (GEMMA3_270M_PACKAGE, True)
    assert pretrained.phase1_learning_rate < resources_for_profile("local")["training"].phase1_learning_rate
    monkeypatch.setenv("AGENTSCALER_BASE_MODEL", "/models/my.gguf")
    assert resources_for_profile("pretrained")["training"].base_model == "/models/my.gguf"
    # The preset under the user's config: a key the user sets wins, the preset's other keys stay.
    mine = {"ops": {"benchmark_scores": {"config": {"graded_turns_per_group": 7}}}, "main_job": {"skip": []}}
    merged = with_preset("pretrained", mine)
    config = merged["ops"]["benchmark_scores"]["config"]
    assert config["graded_turns_per_group"] == 7 and config["max_tasks_per_domain"] == 2
    assert merged["main_job"]["skip"] == []
    assert with_preset("pretrained", {})["main_job"]["skip"] == ["studies", "rl"]
    assert with_preset("local", mine) == mine
    # A skipped stage is reported, not run.
    with DagsterInstance.ephemeral() as instance:
        report = main_job.run_main_job(
            instance,
            {"main_job": {"skip": ["catalog", "training", "rl", "evaluation", "studies"]}},
            resources={"storage": StorageRoot(root=str(tmp_path))},
        )
    assert report.runs == [] and report.skipped[:3] == ["catalog", "training", "rl"]
    assert report.skipped[3:] == [f"evaluation:{b}" for b in BENCHMARKS] + ["studies"]
