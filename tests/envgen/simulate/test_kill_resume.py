"""A trajectories run killed midway (SIGKILL) and re-run loses no finished trajectory and redoes none, and
ends with exactly the trajectories a clean run produces. The child process is this file run as a script."""

import asyncio
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

from envgen.environment.bundled import build_bundled_domain
from envgen.simulate.rollout import read_journal, run_rollouts
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher, ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks

ERRORS = ErrorModel()


class SlowTeacher(ScriptedTeacher):
    """The scripted teacher, slowed down so the run can be killed while episodes are in flight."""

    async def complete(self, messages, tools, **kw):
        await asyncio.sleep(0.02)
        return await super().complete(messages, tools, **kw)


def teacher(task, r):
    return SlowTeacher(task, ERRORS, seed=zlib.crc32(f"{task.task_id}:{r}".encode()))


def setup(folder: Path):
    env, db, edges = build_bundled_domain("retail", folder)
    return env, db, sample_tasks(env, db, edges, TaskConfig(n_chains=30)).tasks


def roll(folder: Path, journal: Path, agent_for=teacher):
    env, db, tasks = setup(folder)
    return asyncio.run(
        run_rollouts(
            tasks, env, db, agent_for, lambda t, r: ScriptedUser(t), k=2, journal=journal, concurrency=2
        )
    )


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path):
    journal = tmp_path / "journal.jsonl"
    child = subprocess.Popen([sys.executable, __file__, str(tmp_path / "env"), str(journal)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 10):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    finished_before = set(read_journal(journal))  # a torn last line, if any, is cut off here
    assert len(finished_before) >= 10

    redone = []

    def counting(task, r):
        redone.append((task.task_id, r))
        return teacher(task, r)

    resumed = roll(tmp_path / "env", journal, counting)
    assert not set(redone) & finished_before
    keys = [(t.task_id, t.rollout) for t in resumed]
    assert len(keys) == len(set(keys)) == len(finished_before) + len(redone)
    clean = roll(tmp_path / "env2", tmp_path / "clean.jsonl")
    strip = lambda ts: [(t.task_id, t.rollout, t.messages, t.final_hash) for t in ts]  # noqa: E731
    assert strip(resumed) == strip(clean)


if __name__ == "__main__":
    roll(Path(sys.argv[1]), Path(sys.argv[2]))
