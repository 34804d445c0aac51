"""The `openai` backend against the project's own OpenAI-compatible server (a real HTTP endpoint on a
local port serving a checkpoint trained here), retries on server errors, and the full rollout loop."""

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from envgen.funnel.filters import FunnelConfig, judge
from envgen.llm.backends import MalformedReply, OpenAIChatBackend, message_from_openai
from envgen.llm.hf_backend import HFChatBackend
from envgen.llm.serve import completion_body, serving, serving_app
from envgen.simulate.rollout import run_rollouts
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks


def test_full_rollout_loop_through_the_openai_backend_and_our_server(airline, tiny_checkpoint, tmp_path):
    tasks = sample_tasks(
        airline.env, airline.path, airline.edges, TaskConfig(n_chains=6, max_length=2)
    ).tasks[:3]
    with serving(HFChatBackend(tiny_checkpoint, max_new_tokens=16), "tiny") as base_url:
        agent = OpenAIChatBackend(base_url=base_url, model="tiny", max_concurrency=4)
        trajs = asyncio.run(
            run_rollouts(
                tasks,
                airline.env,
                airline.path,
                lambda t, r: agent,
                lambda t, r: ScriptedUser(t),
                k=1,
                journal=tmp_path / "j.jsonl",
                max_agent_turns=4,
            )
        )
    assert [t.task_id for t in trajs] == [t.task_id for t in tasks]
    assert agent.usage.requests >= len(tasks) and agent.usage.completion_tokens > 0
    for traj, task in zip(trajs, tasks, strict=True):
        assert traj.agent == "openai:tiny"
        assert any(m["role"] == "assistant" for m in traj.messages)
        judge(traj, task, airline.env, FunnelConfig())  # an untrained model's output is judged, never crashes


def test_server_returns_openai_shaped_tool_calls():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = completion_body({"role": "assistant", "content": "", "tool_calls": [call]}, "m", {})
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["tool_calls"] == [call]


def test_retries_with_backoff_on_server_errors_rate_limits_and_garbage_bodies():
    seen = {"n": 0}

    async def flaky(request):
        seen["n"] += 1
        if seen["n"] == 1:
            return JSONResponse({"error": {"message": "busy"}}, 429)
        if seen["n"] == 2:
            return JSONResponse({"error": {"message": "boom"}}, 500)
        if seen["n"] == 3:
            return PlainTextResponse("<html>502 Bad Gateway</html>", media_type="application/json")
        if seen["n"] == 4:
            return JSONResponse({"object": "chat.completion", "choices": []})
        usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        return JSONResponse(completion_body({"content": "hello"}, "m", usage))

    app = Starlette(routes=[Route("/v1/chat/completions", flaky, methods=["POST"])])
    with serving_app(app) as url:
        backend = OpenAIChatBackend(base_url=url, model="m", backoff_s=0.01)
        reply = asyncio.run(backend.complete([{"role": "user", "content": "hi"}], []))
        assert reply["content"] == "hello"
        assert backend.usage.retries == 4 and backend.usage.prompt_tokens == 3 and seen["n"] == 5
        # Out of retries, the garbage is named in the error.
        seen["n"] = 2
        stubborn = OpenAIChatBackend(base_url=url, model="m", backoff_s=0.01, max_retries=0)
        with pytest.raises(MalformedReply, match="502 Bad Gateway"):
            asyncio.run(stubborn.complete([{"role": "user", "content": "hi"}], []))


def test_one_backend_serves_successive_event_loops():
    """An asset may call `asyncio.run` more than once with the same resource-held backend."""

    async def ok(request):
        return JSONResponse(completion_body({"content": "hi"}, "m", {}))

    app = Starlette(routes=[Route("/v1/chat/completions", ok, methods=["POST"])])
    with serving_app(app) as url:
        backend = OpenAIChatBackend(base_url=url, model="m", max_concurrency=1)

        async def twice() -> list[str]:
            replies = await asyncio.gather(
                *(backend.complete([{"role": "user", "content": "x"}], []) for _ in "ab")
            )
            await backend.aclose()
            return [r["content"] for r in replies]

        assert asyncio.run(twice()) == ["hi", "hi"]
        assert asyncio.run(twice()) == ["hi", "hi"]
    assert backend.usage.requests == 4


def test_odd_tool_call_shapes_become_calls_the_funnel_can_reject():
    msg = message_from_openai({"content": None, "tool_calls": [{"function": {"arguments": None}}, {}]})
    assert [c["function"] for c in msg["tool_calls"]] == [{"name": "", "arguments": "{}"}] * 2
    assert len({c["id"] for c in msg["tool_calls"]}) == 2
