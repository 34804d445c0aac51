"""Fault injection: trajectories through the `openai` backend against a local endpoint that fails a share
of its requests (500s, 429s, garbage 200 bodies, answers slower than the client's timeout, connections
dropped mid-body), with the rollout process SIGKILLed once midway. After re-running, the stored trajectories
equal those of a clean run with the same seed: no finished work lost, none duplicated, no fault visible.

The endpoint is the project's own server around a tiny checkpoint decoding greedily, so its answers are a
function of the request alone. The killed child is this file run as a script.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from envgen.environment.bundled import build_bundled_domain
from envgen.llm.backends import OpenAIChatBackend
from envgen.llm.hf_backend import HFChatBackend
from envgen.llm.serve import build_app, serving_app
from envgen.simulate.rollout import Trajectory, read_journal, run_rollouts
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks

FAULTS = (("server_error", 0.12), ("rate_limit", 0.10), ("garbage", 0.10), ("slow", 0.06), ("drop", 0.06))


def faulty(app: Any, seed: int, tally: Counter) -> Any:
    """ASGI wrapper failing a seeded share of chat requests, each way a real endpoint fails."""
    rng = random.Random(seed)

    async def asgi(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            return await app(scope, receive, send)
        draw, kind = rng.random(), "ok"
        for name, share in FAULTS:
            if draw < share:
                kind = name
                break
            draw -= share
        tally[kind] += 1
        if kind == "ok":
            return await app(scope, receive, send)
        while (await receive()).get("more_body"):
            pass
        status, body = {
            "server_error": (500, b'{"error": {"message": "boom"}}'),
            "rate_limit": (429, b'{"error": {"message": "slow down"}}'),
            "garbage": (200, b"<html>upstream connect error</html>"),
            "slow": (503, b'{"error": {"message": "late"}}'),
            "drop": (200, b'{"id": "chatcmpl-1", "choices": [{"mess'),
        }[kind]
        if kind == "slow":
            await asyncio.sleep(CLIENT_TIMEOUT * 3)
        length = len(body) * (4 if kind == "drop" else 1)  # promise more than is sent, then hang up
        headers = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": kind == "drop"})
        if kind == "drop":
            raise ConnectionResetError("dropped mid-body on purpose")

    return asgi


CLIENT_TIMEOUT = 1.5


def setup(folder: Path):
    env, db, edges = build_bundled_domain("airline", folder)
    return env, db, sample_tasks(env, db, edges, TaskConfig(n_chains=8, max_length=2)).tasks[:4]


def roll(folder: Path, journal: Path, url: str) -> list[Trajectory]:
    env, db, tasks = setup(folder)
    agent = OpenAIChatBackend(
        base_url=url, model="tiny", timeout_s=CLIENT_TIMEOUT, backoff_s=0.02, max_retries=12
    )

    async def run() -> list[Trajectory]:
        try:
            return await run_rollouts(
                tasks,
                env,
                db,
                lambda t, r: agent,
                lambda t, r: ScriptedUser(t),
                k=2,
                journal=journal,
                concurrency=2,
                max_agent_turns=3,
            )
        finally:
            await agent.aclose()

    return asyncio.run(run())


def test_faulty_endpoint_and_a_kill_midway_leave_exactly_the_clean_run(tiny_checkpoint, tmp_path):
    backend = HFChatBackend(tiny_checkpoint, max_new_tokens=12)
    tally: Counter = Counter()
    journal = tmp_path / "journal.jsonl"
    with serving_app(faulty(build_app(backend, "tiny"), seed=7, tally=tally)) as url:
        child = subprocess.Popen([sys.executable, __file__, str(tmp_path / "env"), str(journal), url])
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 3):
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        finished_before = set(read_journal(journal))
        assert 3 <= len(finished_before) < 8, "the kill must land midway"
        resumed = roll(tmp_path / "env", journal, url)
    assert all(tally[kind] for kind, _ in FAULTS), tally  # every kind of fault was met
    with serving_app(build_app(backend, "tiny")) as clean_url:
        clean = roll(tmp_path / "env2", tmp_path / "clean.jsonl", clean_url)

    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    keys = [(row["task_id"], row["rollout"]) for row in lines]
    assert len(keys) == len(set(keys)) == 8  # nothing redone after the kill, nothing lost
    strip = lambda ts: [(t.task_id, t.rollout, t.messages, t.final_hash, t.termination) for t in ts]  # noqa: E731
    assert strip(resumed) == strip(clean)
    assert not any(t.termination.startswith("agent_error") for t in resumed)


if __name__ == "__main__":
    roll(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
