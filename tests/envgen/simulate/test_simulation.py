"""Rollouts with the scripted user and teacher, the funnel, and resuming from the journal."""

import asyncio
import json
import zlib

import pytest

from envgen.funnel.filters import FunnelConfig, funnel_counts, judge, rejection_reasons, successful_calls
from envgen.llm.toolcall_parse import parse_assistant_text
from envgen.simulate.rollout import read_journal, run_episode, run_rollouts
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher, ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks

PERFECT = ErrorModel(0, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def airline_tasks(airline):
    return sample_tasks(airline.env, airline.path, airline.edges, TaskConfig(n_chains=30)).tasks


def _roll(airline, tasks, errors, journal, k=1):
    return asyncio.run(
        run_rollouts(
            tasks,
            airline.env,
            airline.path,
            lambda t, r: ScriptedTeacher(t, errors, seed=zlib.crc32(f"{t.task_id}{r}".encode())),
            lambda t, r: ScriptedUser(t),
            k=k,
            journal=journal,
        )
    )


def test_an_error_free_teacher_solves_every_task(airline, airline_tasks, tmp_path):
    trajs = _roll(airline, airline_tasks, PERFECT, tmp_path / "j.jsonl")
    by_id = {t.task_id: t for t in airline_tasks}
    verdicts = [judge(t, by_id[t.task_id], airline.env, FunnelConfig()) for t in trajs]
    assert all(v.kept for v in verdicts), [v.reason for v in verdicts if not v.kept]
    assert all(t.termination == "user_stop" for t in trajs)


def test_teacher_mistakes_are_caught_by_the_funnel(airline, airline_tasks, tmp_path):
    noisy = ErrorModel(wrong_argument=0.3, skipped_step=0.15, unknown_tool=0.15, early_stop=0.1, recover=0.5)
    trajs = _roll(airline, airline_tasks, noisy, tmp_path / "j.jsonl", k=3)
    by_id = {t.task_id: t for t in airline_tasks}
    verdicts = [judge(t, by_id[t.task_id], airline.env, FunnelConfig()) for t in trajs]
    counts = funnel_counts(verdicts)
    assert (
        counts["trajectories"] > counts["validity"] >= counts["state_alignment"] >= counts["call_match"] > 0
    )
    reasons = rejection_reasons(verdicts)
    assert any(r.startswith("validity: call to a tool not offered") for r in reasons)
    assert any(r.startswith("state_alignment") for r in reasons)
    assert counts["kept_with_recovery"] > 0  # failed calls retried correctly still reach the gold state


def test_a_rerun_resumes_from_the_journal_and_redoes_nothing(airline, airline_tasks, tmp_path):
    journal = tmp_path / "j.jsonl"
    first = _roll(airline, airline_tasks[:5], PERFECT, journal)
    with journal.open("a") as fh:
        fh.write('{"task_id": "torn')  # a run killed mid-write leaves a torn line
    made = []

    def agent_for(task, r):
        made.append(task.task_id)
        return ScriptedTeacher(task, PERFECT, seed=r)

    again = asyncio.run(
        run_rollouts(
            airline_tasks,
            airline.env,
            airline.path,
            agent_for,
            lambda t, r: ScriptedUser(t),
            k=1,
            journal=journal,
        )
    )
    assert set(made) == {t.task_id for t in airline_tasks[5:]}
    assert [t.task_id for t in again] == [t.task_id for t in airline_tasks]
    assert again[:5] == first
    assert len(read_journal(journal)) == len(airline_tasks)


def test_malformed_agent_output_is_kept_and_fails_validity(airline, airline_tasks, tmp_path):
    class Garbled:
        name = "test:garbled"

        async def complete(self, messages, tools, **kw):
            return {"role": "assistant", "content": "<tool_call>{oops", "parse_errors": ["invalid JSON"]}

    task = airline_tasks[0]
    traj = asyncio.run(
        run_rollouts(
            [task],
            airline.env,
            airline.path,
            lambda t, r: Garbled(),
            lambda t, r: ScriptedUser(t),
            k=1,
            journal=tmp_path / "j.jsonl",
        )
    )[0]
    verdict = judge(traj, task, airline.env, FunnelConfig())
    assert not verdict.valid and "unparseable" in verdict.reason


def test_repetition_loops_are_rejected(airline, airline_tasks, tmp_path):
    task = next(t for t in airline_tasks if t.writes == 0)
    call = task.gold_calls[0]

    class Looper:
        name = "test:looper"
        n = 0

        async def complete(self, messages, tools, **kw):
            self.n += 1
            fn = {"name": call["name"], "arguments": json.dumps(call["arguments"])}
            return {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": f"c{self.n}", "type": "function", "function": fn}],
            }

    traj = asyncio.run(
        run_rollouts(
            [task],
            airline.env,
            airline.path,
            lambda t, r: Looper(),
            lambda t, r: ScriptedUser(t),
            k=1,
            journal=tmp_path / "j.jsonl",
            max_agent_turns=6,
        )
    )[0]
    verdict = judge(traj, task, airline.env, FunnelConfig())
    assert not verdict.valid and "repeated" in verdict.reason


def test_results_are_matched_to_calls_within_their_turn(airline, airline_tasks):
    """A model's parsed calls are numbered per turn (every turn has a `call_1`): each result belongs to the
    call of the turn just before it, so a failed call is not taken for a successful one, nor the reverse."""
    task = next(t for t in airline_tasks if len(t.gold_calls) >= 2)

    def said(call: dict) -> dict:
        return parse_assistant_text(f"<tool_call>\n{json.dumps(call)}\n</tool_call>")

    turns = [m for g in task.gold_calls for m in (said(g), {"role": "assistant", "content": "Done."})]
    turns.insert(1, said({"name": "no_such_tool", "arguments": {}}))  # right after the first gold call

    class Scripted:
        name = "scripted:replay"

        async def complete(self, messages, tools, **_):
            return turns.pop(0) if turns else {"role": "assistant", "content": "Bye."}

    traj = asyncio.run(run_episode(task, airline.env, airline.path, Scripted(), ScriptedUser(task)))
    ids = [c["id"] for m in traj.messages for c in m.get("tool_calls") or []]
    assert set(ids) == {"call_1"} and len(ids) == len(task.gold_calls) + 1
    assert successful_calls(traj) == task.gold_calls
    assert judge(traj, task, airline.env, FunnelConfig()).calls_match
