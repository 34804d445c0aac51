"""The user–agent–environment loop, many episodes in flight, each trajectory stored as soon as it ends.

Trajectories are appended to a JSON Lines journal the moment they finish, so an interrupted run resumes
where it stopped: finished (task, rollout) pairs are read back and never redone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from envgen.environment.programs import EnvironmentDoc
from envgen.environment.runtime import Episode
from envgen.llm.backends import ChatBackend
from envgen.simulate.scripted import STOP
from envgen.tasks.chains import Task

log = logging.getLogger(__name__)


class UserSimulator(Protocol):
    name: str

    def first_message(self) -> str: ...

    async def respond(self, messages: list[dict[str, Any]]) -> str: ...


@dataclass
class Trajectory:
    task_id: str
    domain: str
    rollout: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    final_hash: str
    gold_hash: str
    agent: str
    user: str
    termination: str
    n_tool_calls: int
    n_tool_errors: int
    wall_s: float

    def key(self) -> tuple[str, int]:
        return self.task_id, self.rollout


async def run_episode(
    task: Task,
    env: EnvironmentDoc,
    snapshot: Path,
    agent: ChatBackend,
    user: UserSimulator,
    rollout: int = 0,
    max_agent_turns: int = 24,
) -> Trajectory:
    """One conversation: system policy, user turns, agent turns with tool calls executed on the episode."""
    start = time.perf_counter()
    tools = env.openai_tools()
    episode = Episode(env, snapshot)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": env.policy},
        {"role": "user", "content": user.first_message()},
    ]
    termination, n_calls, n_errors = "max_turns", 0, 0
    try:
        for _ in range(max_agent_turns):
            try:
                reply = await agent.complete(messages, tools)
            except Exception as exc:  # a backend that gave up after its retries ends this episode only
                log.warning("agent %s failed on task %s: %s", agent.name, task.task_id, exc)
                termination = f"agent_error: {type(exc).__name__}"
                break
            messages.append(reply)
            if reply.get("tool_calls"):
                for call in reply["tool_calls"]:
                    fn = call.get("function", {})
                    name = fn.get("name", "")
                    result = episode.call(name, fn.get("arguments", "{}"))  # unknown tools get an error
                    n_calls += 1
                    n_errors += not result.ok
                    messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": call.get("id", ""),
                            "name": name,
                            "content": result.as_content(),
                        }
                    )
                continue
            said = await user.respond(messages)
            if STOP in said:
                messages.append({"role": "user", "content": said.replace(STOP, "").strip()})
                termination = "user_stop"
                break
            messages.append({"role": "user", "content": said})
        final = episode.state_hash()
    finally:
        episode.close()
    return Trajectory(
        task_id=task.task_id,
        domain=task.domain,
        rollout=rollout,
        messages=messages,
        tools=tools,
        final_hash=final,
        gold_hash=task.gold_hash,
        agent=agent.name,
        user=user.name,
        termination=termination,
        n_tool_calls=n_calls,
        n_tool_errors=n_errors,
        wall_s=round(time.perf_counter() - start, 4),
    )


def trajectory_row(t: Trajectory) -> dict[str, Any]:
    """A flat row (messages and tools as JSON text). Shallow on purpose: `dataclasses.asdict` deep-copies
    every message first, which showed up as a tenth of the client's CPU at 64 episodes in flight."""
    row = {name: getattr(t, name) for name in Trajectory.__dataclass_fields__}
    row["messages"] = json.dumps(t.messages)
    row["tools"] = json.dumps(t.tools)
    return row


def trajectory_from_row(row: dict[str, Any]) -> Trajectory:
    row = dict(row)
    row["messages"] = json.loads(row["messages"])
    row["tools"] = json.loads(row["tools"])
    return Trajectory(**{k: row[k] for k in Trajectory.__dataclass_fields__})


def read_journal(path: Path) -> dict[tuple[str, int], Trajectory]:
    """Finished trajectories recorded so far. A torn last line (a run killed mid-write) is cut off, so the
    next append starts on a line of its own."""
    done: dict[tuple[str, int], Trajectory] = {}
    if not path.exists():
        return done
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
    for line in path.read_text().splitlines():
        try:
            t = trajectory_from_row(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        done[t.key()] = t
    return done


AgentFactory = Callable[[Task, int], ChatBackend]
UserFactory = Callable[[Task, int], UserSimulator]


async def run_rollouts(
    tasks: list[Task],
    env: EnvironmentDoc,
    snapshot: Path,
    agent_for: AgentFactory,
    user_for: UserFactory,
    k: int,
    journal: Path,
    concurrency: int = 8,
    max_agent_turns: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> list[Trajectory]:
    """k rollouts per task, `concurrency` in flight; resumes from and appends to `journal`."""
    done = read_journal(journal)
    todo = [(t, r) for t in tasks for r in range(k) if (t.task_id, r) not in done]
    sem = asyncio.Semaphore(concurrency)
    journal.parent.mkdir(parents=True, exist_ok=True)
    total, finished = len(tasks) * k, len(done)

    async def one(task: Task, r: int) -> None:
        nonlocal finished
        async with sem:
            traj = await run_episode(
                task, env, snapshot, agent_for(task, r), user_for(task, r), r, max_agent_turns
            )
        with journal.open("a") as fh:
            fh.write(json.dumps(trajectory_row(traj)) + "\n")
            fh.flush()
        done[traj.key()] = traj
        finished += 1
        if progress:
            progress(finished, total)

    await asyncio.gather(*(one(t, r) for t, r in todo))
    wanted = [(t.task_id, r) for t in tasks for r in range(k)]
    return [done[w] for w in wanted]
