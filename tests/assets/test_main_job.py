"""End to end: the main job on the smallest settings materialises every asset (every domain partition
included) in a persistent Dagster instance; the phase-2 checkpoint loads and renders tool calls; and the
documented CLI re-runs `phase2_model` alone afterwards."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter, DagsterInstance, materialize
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentscaler_assets.artefacts import Artefact
from agentscaler_assets.catalog_assets import read_domains
from agentscaler_assets.definitions import ALL_ASSETS
from agentscaler_assets.main_job import run_main_job
from agentscaler_assets.partitions import BENCHMARKS
from agentscaler_assets.resources import StorageRoot
from agentscaler_assets.tables import write_parquet
from tests.assets.tiny_job import TINY_RUN, tiny_resources

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    instance_dir = tmp_path_factory.mktemp("dagster_home")
    home = tmp_path_factory.mktemp("agentscaler_home")
    resources = tiny_resources(home)
    with DagsterInstance.from_ref(DagsterInstance.local_temp(str(instance_dir)).get_ref()) as instance:
        report = run_main_job(instance, TINY_RUN, resources)
        yield instance, instance_dir, home, report


def _benchmark_metadata(instance: DagsterInstance, partition: str) -> dict:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("benchmark_scores"), asset_partitions=[partition]), limit=1
    ).records
    return records[0].asset_materialization.metadata


def test_every_asset_and_partition_is_materialised(finished_job):
    instance, _, home, report = finished_job
    assert report.ok, report.runs
    domains = instance.get_dynamic_partitions("domain")
    assert len(domains) >= 6
    for asset in ALL_ASSETS:
        key = asset.key
        if asset.partitions_def is None:
            assert instance.get_latest_materialization_event(key) is not None, key
        else:
            wanted = set(asset.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
            assert wanted and wanted <= instance.get_materialized_partitions(key), key
    synthetic = _benchmark_metadata(instance, "synthetic_heldout")
    assert "floor" in synthetic["scores"].value and "phase2" in synthetic["scores"].value
    assert "vertical_only" in synthetic["vertical_vs_general"].value
    # The graded next-turn metric: every agent and both baselines, per held-out group, with intervals.
    graded = synthetic["tool_call_accuracy"].value
    for label in ("floor", "phase1", "phase2", "vertical_only", "baseline:frequency", "baseline:lexical"):
        assert label in graded, label
    records = {
        r["agent"]: r
        for r in json.loads((home / "benchmarks" / "synthetic_heldout" / "scores.json").read_text())
    }
    assert set(records["phase2"]["tool_call_accuracy"]) == {"all", "general", "vertical"}
    name = records["baseline:lexical"]["tool_call_accuracy"]["vertical"]["name"]
    assert name["n"] > 0 and name["ci95"][0] <= name["rate"] <= name["ci95"][1]
    # Held-out general domains: whole domains no training set contains.
    domains_table = pl.read_parquet(home / "domains" / "domains.parquet")
    held = set(domains_table.filter(pl.col("heldout"))["slug"])
    assert len(held) == 4 and not held & set(pl.read_parquet(home / "sft" / "sft_phase1.parquet")["domain"])
    telecom = _benchmark_metadata(instance, "tau2_telecom")
    assert "phase2" in telecom["scores"].value and "2/2 solved" in telecom["harness_check"].value
    assert "needs a user-simulator endpoint" in _benchmark_metadata(instance, "tau2_retail")["status"].value
    # tau-bench v1 and ACEBench read checkouts the user provides; without one they say where they looked.
    for partition in ("tau_retail", "tau_airline", "acebench_normal", "acebench_special", "acebench_agent"):
        status = _benchmark_metadata(instance, partition)["status"].value
        assert status.startswith("data not found at ") and str(home / "external") in status, partition
    # The main job runs the asset checks of what it materialises, one evaluation per domain partition.
    checks = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey("domain_environment"), "every_tool_executes"), limit=1000
    )
    assert len(checks) == len(domains)


def _materialisations(instance: DagsterInstance) -> int:
    return sum(len(instance.fetch_materializations(a.key, limit=10_000).records) for a in ALL_ASSETS)


def test_a_second_run_on_an_up_to_date_instance_materialises_nothing(finished_job):
    """Straight after the full run (same code, config, resources): every asset and partition is judged up
    to date by Dagster's staleness and skipped; no run is launched."""
    instance, _, home, first = finished_job
    before = _materialisations(instance)
    report = run_main_job(instance, TINY_RUN, tiny_resources(home))
    assert report.ok and report.runs == [] and report.materialised == 0
    assert report.up_to_date == first.materialised == before
    assert all(v.reason == "up to date" for v in report.verdicts)
    assert _materialisations(instance) == before


def test_force_launches_every_stage_whole_and_a_config_change_reruns_its_asset(finished_job, monkeypatch):
    """The decisions alone (`materialize` replaced by a recorder): `force` launches every stage and
    partition with its whole selection; without it, a changed op config reruns that asset and what
    follows it in its stage, nothing else."""
    import agentscaler_assets.main_job as main_job

    instance, _, home, _ = finished_job
    launched: list[tuple[str | None, tuple[str, ...]]] = []

    class Result:
        success = True

    def record(_assets, selection, partition_key=None, **_kw) -> Result:
        launched.append((partition_key, tuple(selection)))
        return Result()

    monkeypatch.setattr(main_job, "materialize", record)
    report = run_main_job(instance, TINY_RUN, tiny_resources(home), force=True)
    domains = instance.get_dynamic_partitions("domain")
    assert report.ok and len(launched) == 1 + len(domains) + 2 + len(main_job.BENCHMARKS) + 1
    assert (None, tuple(main_job.TRAINING_STAGE)) in launched and (None, tuple(main_job.RL_STAGE)) in launched
    assert all(sel == tuple(main_job.DOMAIN_STAGE) for part, sel in launched if part in domains)

    launched.clear()
    changed = {"ops": {**TINY_RUN["ops"], "trajectories": {"config": {"rollouts_per_task": 2}}}}
    run_main_job(instance, changed, tiny_resources(home))
    assert launched and all(sel == ("trajectories", "filtered_trajectories") for _, sel in launched)
    assert sorted(part for part, _ in launched) == sorted(domains)


def _latest(instance: DagsterInstance, asset: str) -> dict:
    return instance.get_latest_materialization_event(AssetKey(asset)).asset_materialization.metadata


def _check(instance: DagsterInstance, asset: str, name: str):
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey(asset), name), limit=1
    )
    assert history, f"{asset}.{name} never ran"
    return history[0].event.dagster_event.event_specific_data


def test_contamination_report_compares_tau2_tools_and_flags_exact_duplicates(finished_job):
    instance = finished_job[0]
    meta = _latest(instance, "contamination_report")
    assert set(meta["benchmark_tools"].value) == {"tau2_retail", "tau2_airline", "tau2_telecom"}
    assert "data not found at" in meta["not_compared"].value["acebench"]
    for tool in ("get_order_details", "cancel_pending_order", "get_reservation_details", "suspend_line"):
        assert f"| {tool} |" in meta["nearest_tool"].value
    evaluation = _check(instance, "contamination_report", "no_exact_benchmark_duplicate")
    # The bundled verticals share some of tau2's tool names and parameters: the check says so.
    assert evaluation.passed == (meta["exact_duplicates"].value == 0)
    assert meta["exact_duplicates"].value >= 1


def test_scaling_study_trains_nested_subsets_on_one_budget_and_scores_them(finished_job):
    instance, _, home, _ = finished_job
    meta = _latest(instance, "scaling_study")
    study = json.loads((home / "studies" / "scaling" / "scaling.json").read_text())
    subsets = study["subsets"]
    assert len(subsets) == 2 and subsets[0]["domains"] < subsets[1]["domains"]
    assert set(subsets[0]["domain_list"]) < set(subsets[1]["domain_list"])
    assert subsets[0]["tools"] < subsets[1]["tools"]
    for row in study["scores"]:
        assert 0.0 <= row["ci95_low"] <= row["success"] <= row["ci95_high"] <= 1.0
    benchmarks = {(r["benchmark"], r["model"]) for r in study["scores"]}
    # The smoke preset adds one RL step after each subset's phase 2: `<subset>_rl`, scored beside it.
    for model in [*(s["subset"] for s in subsets), *(f"{s['subset']}_rl" for s in subsets), "floor"]:
        assert ("synthetic_heldout", model) in benchmarks and ("tau2_telecom", model) in benchmarks, model
    assert meta["success_curve"].value.startswith(
        "![success versus domains and tools](data:image/png;base64,"
    )
    _check(instance, "scaling_study", "largest_subset_matches_phase2")


def test_vertical_only_ablation_matches_the_two_phase_budget(finished_job):
    instance = finished_job[0]
    meta = instance.get_latest_materialization_event(AssetKey("vertical_only_model")).asset_materialization
    tokens = {
        p: instance.get_latest_materialization_event(AssetKey(f"{p}_model"))
        .asset_materialization.metadata["tokens_seen"]
        .value
        for p in ("phase1", "phase2")
    }
    assert meta.metadata["token_budget"].value == sum(tokens.values())
    assert 0.7 <= meta.metadata["budget_used"].value <= 1.3
    table = meta.metadata["validation_losses"].value
    for model in ("base", "phase1", "phase2", "vertical_only"):
        assert model in table


def test_rl_phase_trains_on_training_tasks_only_and_is_scored_beside_phase2(finished_job):
    instance, _, home, _ = finished_job
    meta = _latest(instance, "phase3_rl_model")
    assert meta["steps"].value == 2 and meta["episodes"].value == 8  # the smoke preset: 2 steps of 2 x 2
    assert "reward_curve" in meta and "mean_reward_last_step" in meta
    assert "solved" in meta["reward_terms"].value
    domains_table = pl.read_parquet(home / "domains" / "domains.parquet")
    allowed = set()
    for slug in domains_table.filter(pl.col("vertical") & ~pl.col("heldout"))["slug"]:
        tasks = pl.read_parquet(home / "domains" / slug / "tasks.parquet")
        allowed |= {(slug, t) for t in tasks.filter(pl.col("split") == "train")["task_id"]}
    journal = home / "models" / "phase3_rl" / "episodes.jsonl"
    episodes = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(episodes) == 8 and all((e["domain"], e["task_id"]) in allowed for e in episodes)
    synthetic = _benchmark_metadata(instance, "synthetic_heldout")
    assert "phase3_rl" in synthetic["scores"].value and "phase3_rl" in synthetic["tool_call_accuracy"].value


def test_phase2_checkpoint_loads_and_renders_tool_calls(finished_job):
    _, _, home, _ = finished_job
    path = home / "models" / "phase2"
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "qwen3"
    tok = AutoTokenizer.from_pretrained(path)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Look up an order.",
                "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "user", "content": "Where is order ORD-1001?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": json.dumps({"order_id": "ORD-1001"})},
                }
            ],
        },
    ]
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False)
    assert "<tool_call>" in text and '"get_order"' in text and "ORD-1001" in text


def test_cli_rematerialises_phase2_alone(finished_job):
    instance, instance_dir, home, _ = finished_job
    before = len(instance.fetch_materializations(AssetKey("phase2_model"), limit=100).records)
    env = {**os.environ, "DAGSTER_HOME": str(instance_dir), "AGENTSCALER_HOME": str(home)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "agentscaler_assets",
            "--select",
            "phase2_model",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = len(instance.fetch_materializations(AssetKey("phase2_model"), limit=100).records)
    assert after == before + 1


def test_cli_materialises_the_rl_phase_with_its_op_config(finished_job, tmp_path):
    instance, instance_dir, home, _ = finished_job
    before = len(instance.fetch_materializations(AssetKey("phase3_rl_model"), limit=100).records)
    config = tmp_path / "rl.yaml"
    recipe = "{max_steps: 1, tasks_per_step: 2, group_size: 2, max_turns: 2, max_new_tokens: 16}"
    config.write_text(f"ops:\n  phase3_rl_model:\n    config: {recipe}\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(instance_dir),
        "AGENTSCALER_HOME": str(home),
        "AGENTSCALER_PROFILE": "smoke",
    }
    command = [
        "asset",
        "materialize",
        "-m",
        "agentscaler_assets",
        "--select",
        "phase3_rl_model",
        "-c",
        str(config),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", *command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = instance.fetch_materializations(AssetKey("phase3_rl_model"), limit=100).records
    assert len(records) == before + 1
    assert records[0].asset_materialization.metadata["episodes"].value == 4


def test_a_reevaluated_phase1_does_not_make_phase2_train_again(finished_job):
    """Phase 2 is kept (resumed at its last step) when phase 1 is materialised again on the same inputs."""
    instance, _, home, _ = finished_job
    resources = tiny_resources(home)
    phase2 = Path(home) / "models" / "phase2"

    def run(asset: str) -> None:
        assert materialize(ALL_ASSETS, selection=[asset], instance=instance, resources=resources).success

    run("phase2_model")  # the CLI test above retrained it with the default recipe: back to this run's
    run("phase1_model")  # re-evaluated: its run record (wall time, plot) is rewritten
    run("phase2_model")
    result = json.loads((phase2 / "phase_result.json").read_text())
    assert result["resumed_from"] and result["resumed_from"].endswith(f"checkpoint-{result['global_step']}")


def test_sft_sets_exclude_what_the_contamination_report_flags(finished_job):
    """Last: it rewrites the SFT sets (and puts them back)."""
    instance, _, home, _ = finished_job
    counts = _latest(instance, "contamination_report")["sft_exclusion_counts"].value
    resources = tiny_resources(home)

    def build(level: str) -> dict:
        config = {"ops": {"sft_phase2_dataset": {"config": {"exclude_contaminated": level}}}}
        result = materialize(
            ALL_ASSETS,
            selection=["sft_phase2_dataset"],
            instance=instance,
            resources=resources,
            run_config=config,
        )
        assert result.success
        return result.asset_materializations_for_node("sft_phase2_dataset")[-1].metadata

    near = build("near")
    excluded = near["excluded_contaminated"].value
    kept = near["examples"].value + near["duplicates_dropped"].value + excluded
    assert f"| sft_phase2 | near | {kept} | {excluded} | {kept - excluded} |" in counts
    assert near["excluded_contaminated"].value > 0
    assert build("none")["excluded_contaminated"].value == 0


def test_a_failed_domain_costs_only_itself_and_the_job_goes_on_with_the_rest(monkeypatch, tmp_path):
    """The failure policy alone: `materialize` is replaced by a recorder that fails one domain partition.
    The later stages run, told (through the storage resource) to leave the failed domain out."""
    import agentscaler_assets.main_job as main_job

    launched: list[tuple[str, str | None, list[str]]] = []

    class Result:
        def __init__(self, success: bool) -> None:
            self.success = success

    def fake_materialize(_assets, selection, partition_key=None, tags=None, resources=None, **_kw) -> Result:
        launched.append((tags["agentscaler/stage"], partition_key, resources["storage"].failed_domains))
        return Result(partition_key != "bad")

    monkeypatch.setattr(main_job, "materialize", fake_materialize)
    storage = StorageRoot(root=str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("domain", ["alpha", "bad", "omega"])
        report = run_main_job(instance, {}, resources={"storage": storage}, force=True)
    stages = [(stage, part) for stage, part, _ in launched]
    assert stages[:4] == [("catalog", None), ("domain", "alpha"), ("domain", "bad"), ("domain", "omega")]
    assert [s for s, _ in stages[4:]] == ["training", "rl"] + ["evaluation"] * len(BENCHMARKS) + ["studies"]
    assert all(failed == [] for _, _, failed in launched[:4])
    assert all(failed == ["bad"] for _, _, failed in launched[4:])
    assert not report.ok and report.failed == ["domain:bad"]


def test_read_domains_leaves_out_the_failed_domains(tmp_path):
    storage = StorageRoot(root=str(tmp_path))
    table = pl.DataFrame({"slug": ["alpha", "bad"], "vertical": [False, False], "heldout": [False, False]})
    write_parquet(table, storage.artefact(Artefact.DOMAINS))
    assert read_domains(storage)["slug"].to_list() == ["alpha", "bad"]
    assert read_domains(storage.model_copy(update={"failed_domains": ["bad"]}))["slug"].to_list() == ["alpha"]
