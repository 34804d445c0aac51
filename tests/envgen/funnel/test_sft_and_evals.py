"""SFT rows and the held-out scorer: de-duplication, task-level splits, intervals and floors."""

import asyncio
import zlib

import pytest

from envgen.funnel.sft import build_sft_frame, load_rows, to_row
from envgen.simulate.rollout import run_rollouts
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher, ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks
from evals.synthetic import DomainTasks, score_agent, score_models, wilson_interval

PERFECT = ErrorModel(0, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def tasks(airline):
    return sample_tasks(airline.env, airline.path, airline.edges, TaskConfig(n_chains=24)).tasks


def test_sft_rows_are_chat_format_deduplicated_and_split_by_task(airline, tasks, tmp_path):
    trajs = asyncio.run(
        run_rollouts(
            tasks,
            airline.env,
            airline.path,
            lambda t, r: ScriptedTeacher(t, PERFECT, seed=r),
            lambda t, r: ScriptedUser(t),
            k=2,
            journal=tmp_path / "j.jsonl",
        )
    )
    rows = [to_row(t, recovered=False) for t in trajs]
    frame = build_sft_frame(rows, validation_fraction=0.25, seed=0)
    assert frame.height == len(tasks)  # an error-free teacher repeats itself exactly: duplicates dropped
    by_split = {s: set(frame.filter(frame["split"] == s)["task_id"]) for s in ("train", "validation")}
    assert by_split["train"] and by_split["validation"] and not by_split["train"] & by_split["validation"]
    path = tmp_path / "sft.parquet"
    frame.write_parquet(path)
    row = load_rows(path, "train")[0]
    assert set(row) == {"messages", "tools"}
    assert row["messages"][0]["role"] == "system" and row["tools"][0]["type"] == "function"
    assert all("parse_errors" not in m for m in row["messages"])


def test_wilson_interval_is_sane():
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    lo, hi = wilson_interval(10, 20)
    assert lo < 0.5 < hi
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_a_perfect_agent_scores_one_and_the_floor_is_computed(airline, tasks, tmp_path):
    held = [t for t in tasks if t.split == "heldout"]
    suite = {"airline": DomainTasks(airline.env, airline.path, held)}
    perfect = score_agent(
        suite,
        lambda t, r: ScriptedTeacher(t, PERFECT, seed=zlib.crc32(t.task_id.encode())),
        tmp_path,
        "oracle",
    )
    assert perfect.n == len(held) and perfect.rate == 1.0
    assert perfect.pass_hat == {1: 1.0} and perfect.state_match == perfect.call_match == 1.0
    floor = score_models(suite, {}, tmp_path)[0]
    assert floor.agent == "floor" and floor.n == len(held)
    # Doing nothing solves no task: writes are missing, and read-only tasks require their reads.
    assert floor.rate == 0.0 and floor.failures
    assert floor.categories == {"missing call": len(held)}


def test_pass_hat_k_and_failure_categories_over_seeded_rollouts(airline, tasks, tmp_path):
    """A teacher with an error model: k rollouts per task, pass^k falls with k, every miss is named."""
    held = [t for t in tasks if t.split == "heldout"] + [t for t in tasks if t.split == "train"][:8]
    suite = {"airline": DomainTasks(airline.env, airline.path, held)}
    shaky = ErrorModel(wrong_argument=0.3, skipped_step=0.2, unknown_tool=0.2, early_stop=0.1, recover=0.0)
    score = score_agent(
        suite,
        lambda t, r: ScriptedTeacher(t, shaky, seed=zlib.crc32(f"{t.task_id}:{r}".encode())),
        tmp_path,
        "shaky",
        k=3,
    )
    assert score.n == len(held) and score.rollouts == 3 * len(held) and score.k == 3
    assert 1.0 >= score.pass_hat[1] >= score.pass_hat[2] >= score.pass_hat[3]
    assert abs(score.pass_hat[1] - score.rate) < 1e-3  # pass^1 is the mean success
    assert sum(score.categories.values()) == score.rollouts - score.successes
    assert {"wrong tool", "wrong argument"} <= set(score.categories)
