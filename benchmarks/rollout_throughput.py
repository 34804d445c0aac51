"""Rollouts per second through the `openai` backend against a mock endpoint with a fixed latency.

The ideal is concurrency / (latency × agent turns per episode): what a perfectly overlapped client would
reach. The script prints achieved and ideal side by side, measured in one run, for each concurrency.

    .venv/bin/python benchmarks/rollout_throughput.py [--latency 0.2] [--waves 20] [--concurrency 8 64]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from envgen.environment.bundled import build_bundled_domain
from envgen.llm.backends import OpenAIChatBackend
from envgen.llm.serve import completion_body
from envgen.simulate.rollout import run_rollouts
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks


def mock_app(latency: float) -> Starlette:
    async def chat(request):
        await request.body()
        await asyncio.sleep(latency)
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return JSONResponse(completion_body({"content": "Done. Anything else?"}, "mock", usage))

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def _serve(port: int, latency: float) -> None:
    uvicorn.run(mock_app(latency), host="127.0.0.1", port=port, log_level="error", backlog=4096)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _airline():
    folder = Path(tempfile.mkdtemp())
    env, db, edges = build_bundled_domain("airline", folder)
    return env, db, sample_tasks(env, db, edges, TaskConfig(n_chains=40)).tasks, folder


def measure(url: str, env, db, tasks, waves: int, concurrency: int, latency: float, folder: Path) -> None:
    k = max(1, round(waves * concurrency / len(tasks)))
    agent = OpenAIChatBackend(base_url=url, model="mock", max_concurrency=concurrency, max_retries=0)
    journal = folder / f"bench-{concurrency}.jsonl"
    journal.unlink(missing_ok=True)

    async def run() -> list:
        try:
            return await run_rollouts(
                tasks,
                env,
                db,
                lambda t, r: agent,
                lambda t, r: ScriptedUser(t),
                k=k,
                journal=journal,
                concurrency=concurrency,
            )
        finally:
            await agent.aclose()

    start = time.perf_counter()
    trajs = asyncio.run(run())
    wall = time.perf_counter() - start
    turns = agent.usage.requests / len(trajs)
    achieved = len(trajs) / wall
    ideal = concurrency / (latency * turns)
    ratio = achieved / ideal
    print(f"{concurrency:>11} {len(trajs):>9} {turns:>10.2f} {achieved:>13.1f} {ideal:>10.1f} {ratio:>7.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--waves",
        type=int,
        default=20,
        help="episodes per concurrency slot: every level runs concurrency x waves episodes, so the ramp-up "
        "and the drain at the end weigh the same at every level",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    args = parser.parse_args(argv)
    port = _free_port()
    server = multiprocessing.Process(target=_serve, args=(port, args.latency), daemon=True)
    server.start()
    try:
        env, db, tasks, folder = _airline()
        time.sleep(1.5)  # the mock endpoint starts while the environment is built
        print(f"mock endpoint latency {args.latency}s, {len(tasks)} airline tasks")
        print("concurrency  episodes  turns/ep  rollouts/s  ideal/s  ratio")
        for c in args.concurrency:
            measure(f"http://127.0.0.1:{port}/v1", env, db, tasks, args.waves, c, args.latency, folder)
    finally:
        server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
