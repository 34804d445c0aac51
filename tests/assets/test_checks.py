"""Asset checks, run through Dagster on files the real libraries wrote: each passes on good data and fails,
with the evidence in its metadata, on the bad data it exists to catch."""

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    materialize,
)
from dagster._core.storage.tags import PARTITION_NAME_TAG

from agentscaler_assets.checks import (
    HISTORY_FILE,
    every_tool_executes,
    gold_calls_reproduce_gold_state,
    no_score_regression,
    phase1_loss_went_down,
    phase2_loss_went_down,
    sft_phase1_no_heldout,
    sft_phase2_no_heldout,
    vertical_only_loss_went_down,
)
from agentscaler_assets.definitions import ALL_ASSETS, ALL_CHECKS
from agentscaler_assets.resources import LanguageModels, StorageRoot, TrainingSettings
from agentscaler_assets.tables import write_parquet
from envgen.environment.build import build_environment, load_environment, save_environment
from envgen.funnel.sft import build_sft_frame, to_row
from envgen.simulate.rollout import run_episode
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher, ScriptedUser
from envgen.tasks.chains import Task, TaskConfig, frame_to_tasks, sample_tasks, tasks_to_frame
from evals.synthetic import Score, wilson_interval
from train.launch import RESULT_FILE
from train.sft import PhaseResult

SLUG = "airline"
PERFECT = ErrorModel(0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        inst.add_dynamic_partitions("domain", [SLUG])
        yield inst


@pytest.fixture(scope="module")
def built_root(bundled_specs, bundled_graph, tmp_path_factory) -> Path:
    """One domain as `domain_environment` and `domain_tasks` leave it: environment.json, snapshot.sqlite
    and tasks.parquet under domains/airline, written by the library functions the assets call."""
    _, edges, domains, _ = bundled_graph
    row = domains.filter(pl.col("slug") == SLUG).row(0, named=True)
    by_name = {s.name: s for s in bundled_specs}
    root = tmp_path_factory.mktemp("checks_home")
    folder = StorageRoot(root=str(root)).domain_dir(SLUG)
    env, snapshot, _ = build_environment(SLUG, row["name"], [by_name[t] for t in row["tools"]], seed=0)
    save_environment(env, snapshot, folder)
    edge_list = [tuple(r) for r in edges.select("src", "dst", "kind").iter_rows()]
    batch = sample_tasks(
        env, snapshot, edge_list, TaskConfig(n_chains=16, max_length=4, heldout_fraction=0.25)
    )
    write_parquet(tasks_to_frame(batch.tasks), folder / "tasks.parquet")
    return root


@pytest.fixture
def storage(built_root, tmp_path) -> StorageRoot:
    """A private copy of the built root, so a test can corrupt it."""
    shutil.copytree(built_root, tmp_path / "home")
    return StorageRoot(root=str(tmp_path / "home"))


def run_check(
    check: AssetChecksDefinition,
    storage: StorageRoot,
    instance: DagsterInstance,
    partition: str | None = None,
) -> AssetCheckEvaluation:
    """Execute one check on its own (its asset is not re-materialised) through Dagster, as the UI's
    "execute check" does; a partitioned check gets its partition from the run's partition tag."""
    result = materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=AssetSelection.checks(check),
        instance=instance,
        resources={"storage": storage, "llm": LanguageModels(), "training": TrainingSettings()},
        tags={PARTITION_NAME_TAG: partition} if partition else None,
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    (spec,) = check.check_specs
    # Only a blocking check failing at ERROR fails its run (that is what stops the assets downstream).
    stops = spec.blocking and not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert result.success is not stops
    return evaluation


def _tasks(storage: StorageRoot) -> list[Task]:
    return frame_to_tasks(pl.read_parquet(storage.domain_dir(SLUG) / "tasks.parquet"))


# --- domain_environment: every tool executes ----------------------------------------------------------


def test_every_tool_executes_on_a_built_environment(storage, instance):
    ev = run_check(every_tool_executes, storage, instance, SLUG)
    assert ev.passed and ev.partition == SLUG and ev.severity == AssetCheckSeverity.ERROR
    env, _ = load_environment(storage.domain_dir(SLUG))
    assert ev.metadata["tools"].value == len(env.tools) > 0 and ev.metadata["tools_failing"].value == 0


def test_every_tool_executes_fails_on_an_emptied_snapshot(storage, instance):
    folder = storage.domain_dir(SLUG)
    env, db = load_environment(folder)
    conn = sqlite3.connect(db)
    with conn:
        for table in env.tables:
            conn.execute(f'DELETE FROM "{table.name}"')
    conn.close()
    ev = run_check(every_tool_executes, storage, instance, SLUG)
    assert not ev.passed and ev.severity == AssetCheckSeverity.ERROR
    assert ev.metadata["tools_failing"].value > 0
    assert "| tool | reason |" in ev.metadata["failures"].value


def test_every_tool_executes_fails_without_an_environment(tmp_path, instance):
    ev = run_check(every_tool_executes, StorageRoot(root=str(tmp_path)), instance, SLUG)
    assert not ev.passed and "materialise domain_environment" in ev.description


# --- domain_tasks: gold calls replay to the gold hash -----------------------------------------------


def test_gold_replay_passes_on_sampled_tasks(storage, instance):
    ev = run_check(gold_calls_reproduce_gold_state, storage, instance, SLUG)
    assert ev.passed and ev.metadata["tasks"].value == len(_tasks(storage)) > 0


def test_gold_replay_fails_on_a_wrong_gold_hash(storage, instance):
    tasks = _tasks(storage)
    victim = next(t for t in tasks if t.writes)
    victim.gold_hash = "0" * len(victim.gold_hash)
    write_parquet(tasks_to_frame(tasks), storage.domain_dir(SLUG) / "tasks.parquet")
    ev = run_check(gold_calls_reproduce_gold_state, storage, instance, SLUG)
    assert not ev.passed and ev.severity == AssetCheckSeverity.ERROR
    assert ev.metadata["mismatched_tasks"].value == [victim.task_id]


def test_gold_replay_fails_when_the_environment_was_rebuilt_under_the_tasks(storage, instance, bundled_specs):
    folder = storage.domain_dir(SLUG)
    env, _ = load_environment(folder)
    names = {t["name"] for t in env.tools}
    specs = [s for s in bundled_specs if s.name in names]
    rebuilt, snapshot, _ = build_environment(SLUG, env.name, specs, seed=7)  # another seeded state
    save_environment(rebuilt, snapshot, folder)
    ev = run_check(gold_calls_reproduce_gold_state, storage, instance, SLUG)
    assert not ev.passed and ev.metadata["mismatches"].value > 0


# --- sft datasets: no held-out task in training -----------------------------------------------------


def _sft_rows(storage: StorageRoot, tasks: list[Task]) -> list[dict]:
    """Perfect scripted rollouts of `tasks`, as SFT rows (what the funnel keeps)."""
    env, snapshot = load_environment(storage.domain_dir(SLUG))

    async def roll(task: Task):
        return await run_episode(
            task, env, snapshot, ScriptedTeacher(task, PERFECT, seed=0), ScriptedUser(task)
        )

    return [to_row(asyncio.run(roll(t)), recovered=False) for t in tasks]


def _write_sft(storage: StorageRoot, name: str, rows: list[dict]) -> None:
    write_parquet(build_sft_frame(rows, 0.1, 0), storage.path("sft", f"{name}.parquet"))


SFT_CHECKS = [(sft_phase1_no_heldout, "sft_phase1"), (sft_phase2_no_heldout, "sft_phase2")]


@pytest.mark.parametrize(("check", "name"), SFT_CHECKS)
def test_training_rows_of_train_tasks_pass(check, name, storage, instance):
    train = [t for t in _tasks(storage) if t.split == "train"][:4]
    _write_sft(storage, name, _sft_rows(storage, train))
    ev = run_check(check, storage, instance)
    assert ev.passed and ev.metadata["heldout_tasks"].value > 0 and ev.metadata["leaked_rows"].value == 0


@pytest.mark.parametrize(("check", "name"), SFT_CHECKS)
def test_a_heldout_task_in_training_fails(check, name, storage, instance):
    tasks = _tasks(storage)
    train = [t for t in tasks if t.split == "train"][:3]
    held = next(t for t in tasks if t.split == "heldout")
    _write_sft(storage, name, _sft_rows(storage, [*train, held]))
    ev = run_check(check, storage, instance)
    assert not ev.passed and ev.severity == AssetCheckSeverity.ERROR
    assert ev.metadata["leaked_rows"].value == 1 and held.task_id in ev.metadata["leaks"].value


def test_a_heldout_request_under_another_id_fails(storage, instance):
    tasks = _tasks(storage)
    held = next(t for t in tasks if t.split == "heldout")
    (row,) = _sft_rows(storage, [held])
    row = {**row, "task_id": "copied-under-a-new-id"}
    _write_sft(storage, "sft_phase1", [row])
    ev = run_check(sft_phase1_no_heldout, storage, instance)
    assert not ev.passed and "same request" in ev.metadata["leaks"].value


def test_the_leak_check_fails_without_its_dataset(storage, instance):
    ev = run_check(sft_phase2_no_heldout, storage, instance)
    assert not ev.passed and "sft_phase2.parquet does not exist" in ev.description


# --- models: loss went down --------------------------------------------------------------------------


def _phase_result(storage: StorageRoot, folder: str, before, after, history) -> None:
    out = storage.path("models", folder)
    out.mkdir(parents=True, exist_ok=True)
    result = PhaseResult(
        out_dir=str(out),
        train_loss_history=history,
        val_loss_history=[],
        val_assistant_loss_before=before,
        val_assistant_loss_after=after,
        assistant_tokens_seen=1000,
        total_tokens_seen=4000,
        wall_seconds=1.0,
        tokens_per_second=4000.0,
        parameter_count=10,
        num_train_rows=8,
        num_val_rows=2 if before is not None else 0,
        rows_dropped_too_long=0,
        rows_dropped_no_assistant=0,
        global_step=len(history),
    )
    (out / RESULT_FILE).write_text(json.dumps(result.to_dict()))


LOSS_CHECKS = [
    (phase1_loss_went_down, "phase1"),
    (phase2_loss_went_down, "phase2"),
    (vertical_only_loss_went_down, "vertical_only"),
]
FALLING = [(1, 4.0), (5, 3.1), (10, 2.5)]
RISING = [(1, 2.5), (5, 3.1), (10, 4.0)]


@pytest.mark.parametrize(("check", "folder"), LOSS_CHECKS)
@pytest.mark.parametrize(
    ("before", "after", "history", "passed", "which"),
    [
        (3.0, 2.2, RISING, True, "validation"),  # validation decides when there is one
        (2.2, 3.0, FALLING, False, "validation"),
        (None, None, FALLING, True, "training"),  # no validation split: first vs last training loss
        (None, None, RISING, False, "training"),
        (None, None, [], False, "none"),
    ],
)
def test_loss_went_down(check, folder, before, after, history, passed, which, storage, instance):
    _phase_result(storage, folder, before, after, history)
    ev = run_check(check, storage, instance)
    assert ev.passed is passed and ev.severity == AssetCheckSeverity.WARN
    assert ev.metadata["loss"].value.startswith(which)


def test_loss_check_fails_without_a_phase_result(storage, instance):
    ev = run_check(phase2_loss_went_down, storage, instance)
    assert not ev.passed and "phase_result.json" in ev.description


# --- benchmark_scores: no regression versus the previous scores --------------------------------------


def _scores(storage: StorageRoot, solved: dict[str, int], n: int = 40) -> None:
    out = storage.path("benchmarks", "synthetic_heldout")
    out.mkdir(parents=True, exist_ok=True)
    scores = [Score(m, n, s, s / n, *wilson_interval(s, n)) for m, s in solved.items()]
    (out / "scores.json").write_text(json.dumps([s.__dict__ for s in scores], indent=1))


def test_score_regression_against_the_previous_scores(storage, instance):
    def check():
        return run_check(no_score_regression, storage, instance, "synthetic_heldout")

    _scores(storage, {"floor": 4, "phase1": 20, "phase2": 30})
    first = check()
    assert first.passed and "nothing to compare" in first.description
    assert check().passed  # the same scores again: compared with nothing older, still passes

    _scores(storage, {"floor": 4, "phase1": 18, "phase2": 27})  # small drops, inside the intervals
    assert check().passed

    _scores(storage, {"floor": 0, "phase1": 19, "phase2": 8})  # phase2 collapses; the floor never counts
    failing = check()
    assert not failing.passed and failing.severity == AssetCheckSeverity.WARN
    assert failing.metadata["regressed"].value == ["phase2"]
    assert "| phase2 | 0.675 |" in failing.metadata["changes"].value
    again = check()  # checking the same scores twice still compares them with the ones before
    assert not again.passed and again.metadata["regressed"].value == ["phase2"]

    history = json.loads((storage.path("benchmarks", "synthetic_heldout") / HISTORY_FILE).read_text())
    assert len(history) == 3  # one entry per distinct scores.json seen


def test_score_check_fails_without_scores(storage, instance):
    ev = run_check(no_score_regression, storage, instance, "synthetic_heldout")
    assert not ev.passed and "materialise benchmark_scores" in ev.description


def test_unscored_rows_are_left_out_of_the_comparison():
    """A benchmark that ran without its user simulator has rows without a rate; they compare with nothing."""
    from evals.regression import score_changes

    scored = {"agent": "phase2", "rate": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    unscored = {"agent": "phase2", "status": "needs_user_simulator"}
    assert score_changes([unscored], [scored]) == []
    assert score_changes([scored], [unscored]) == []
    assert [r["model"] for r in score_changes([scored], [scored])] == ["phase2"]
