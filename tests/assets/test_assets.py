"""In-process Dagster materialisation: the catalog stage registers partitions, and the per-domain chain
runs on one partition with readable metadata."""

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from agentscaler_assets.definitions import ALL_ASSETS
from agentscaler_assets.main_job import CATALOG_STAGE, DOMAIN_STAGE
from agentscaler_assets.resources import LanguageModels, StorageRoot, TrainingSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    return {
        "storage": StorageRoot(root=str(tmp_path_factory.mktemp("home"))),
        "llm": LanguageModels(),
        "training": TrainingSettings(),
    }


def _metadata(result, asset: str) -> dict:
    mats = [m for m in result.asset_materializations_for_node(asset)]
    assert mats, f"{asset} was not materialised"
    return mats[-1].metadata


def test_catalog_stage_registers_one_partition_per_domain(instance, resources):
    result = materialize(ALL_ASSETS, selection=CATALOG_STAGE, instance=instance, resources=resources)
    assert result.success
    keys = instance.get_dynamic_partitions("domain")
    assert {"retail", "airline", "telecom"} <= set(keys) and len(keys) >= 30
    apis = _metadata(result, "api_catalog")["apis"].value
    assert apis >= 400
    md = _metadata(result, "domains")
    assert md["domains"].value == len(keys) and md["domains_refused"].value == 0
    assert md["tools_refused"].value == 0  # 100% of the bundled tools are proven to run
    assert f"| accepted: proven to run | {apis} | {len(keys)} |" in md["funnel"].value
    assert "| 12-15 |" in md["domain_size_histogram"].value
    assert _metadata(result, "tool_graph")["embedder"].value == "tfidf"


def test_domains_retire_partitions_that_disappeared(instance, resources):
    instance.add_dynamic_partitions("domain", ["ghost-domain"])
    assert materialize(ALL_ASSETS, selection=["domains"], instance=instance, resources=resources).success
    assert "ghost-domain" not in instance.get_dynamic_partitions("domain")


def test_per_domain_chain_on_one_partition(instance, resources):
    run_config = {"ops": {"domain_tasks": {"config": {"n_chains": 12, "vertical_n_chains": 12}}}}
    result = materialize(
        ALL_ASSETS,
        selection=DOMAIN_STAGE,
        instance=instance,
        resources=resources,
        partition_key="airline",
        run_config=run_config,
    )
    assert result.success
    env_md = _metadata(result, "domain_environment")
    assert env_md["tools_executed"].value == env_md["tools_in_domain"].value > 0
    assert _metadata(result, "domain_tasks")["tasks"].value > 0
    funnel = _metadata(result, "filtered_trajectories")
    assert "validity" in funnel["funnel"].value and funnel["kept"].value > 0
    folder = resources["storage"].domain_dir("airline")
    kept = pl.read_parquet(folder / "filtered.parquet")
    tasks = pl.read_parquet(folder / "tasks.parquet")
    heldout = set(tasks.filter(pl.col("split") == "heldout")["task_id"])
    assert heldout and not heldout & set(kept["task_id"])  # held-out tasks are never rolled out for training


def test_unknown_partition_fails_with_a_clear_error(instance, resources):
    instance.add_dynamic_partitions("domain", ["not-a-domain"])
    result = materialize(
        ALL_ASSETS,
        selection=["domain_environment"],
        instance=instance,
        resources=resources,
        partition_key="not-a-domain",
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "domain 'not-a-domain' is not in the current domains table" in repr(
        failure.event_specific_data.error
    )


def test_definitions_validate():
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_funnel_yield_check_passes_and_fails_by_its_bounds(instance, resources):
    def check_result(min_yield: float):
        run_config = {"ops": {"filtered_trajectories": {"config": {"min_yield": min_yield}}}}
        result = materialize(
            ALL_ASSETS,
            selection=["filtered_trajectories"],
            instance=instance,
            resources=resources,
            partition_key="airline",
            run_config=run_config,
        )
        assert result.success  # a WARN check never fails the run
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    assert check_result(0.2).passed
    failing = check_result(0.999)
    assert not failing.passed and failing.metadata["yield"].value < 0.999


def test_a_phase_keeps_its_checkpoints_when_only_its_starting_models_run_record_changed(tmp_path):
    """Re-evaluating a finished phase 1 rewrites its record (wall time, plot); phase 2 trained from it must
    resume, not start again. New weights, or new data, do start it again."""
    from agentscaler_assets.training_assets import _fresh_out_dir
    from train.sft import PhaseConfig

    init, data, out = tmp_path / "phase1", tmp_path / "sft.parquet", tmp_path / "phase2"
    init.mkdir()
    (init / "model.safetensors").write_bytes(b"weights")
    (init / "phase_result.json").write_text('{"wall_seconds": 1}')
    data.write_bytes(b"rows")
    cfg = PhaseConfig(max_steps=3)
    _fresh_out_dir(out, [init, data], cfg)
    (out / "checkpoint-2").mkdir()
    (init / "phase_result.json").write_text('{"wall_seconds": 2}')
    (init / "loss_curve.png").write_bytes(b"another plot")
    _fresh_out_dir(out, [init, data], cfg)
    assert (out / "checkpoint-2").is_dir()  # kept: resumes
    (init / "model.safetensors").write_bytes(b"other weights")
    _fresh_out_dir(out, [init, data], cfg)
    assert not (out / "checkpoint-2").exists()  # another starting model: trained again


def test_a_users_own_catalog_gets_a_per_source_funnel_and_vertical_domains_by_similarity(tmp_path):
    """`benchmarks/catalogs/` (six public formats, no domain named retail, airline or telecom) through the
    catalog stage: the per-source funnel is in the metadata, and phase 2 still gets vertical domains."""
    run_config = {"ops": {"api_catalog": {"config": {"sources": [str(REPO / "benchmarks" / "catalogs")]}}}}
    resources = {
        "storage": StorageRoot(root=str(tmp_path)),
        "llm": LanguageModels(),
        "training": TrainingSettings(),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            ALL_ASSETS, selection=CATALOG_STAGE, instance=instance, resources=resources, run_config=run_config
        )
        assert result.success
        md = _metadata(result, "domains")
        funnel = md["source_funnel"].value
        for source in (
            "social_functions.json",
            "shop_functions.jsonl",
            "finance_weather_toolbench_queries.json",
        ):
            assert source in funnel
        assert md["admitted_share"].value >= 0.9
        vertical = md["vertical_domains"].value
        assert len(vertical) == 3 and md["vertical_chosen_by"].value.startswith("similarity to tau2's tools")
        assert set(vertical) <= set(instance.get_dynamic_partitions("domain"))
