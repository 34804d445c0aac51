"""An OpenAI-compatible HTTP endpoint around any `ChatBackend` (in practice our own checkpoints).

`POST /v1/chat/completions` and `GET /v1/models`, enough for the `openai` client, tau2's harness or any
other OpenAI-speaking tool to call a model trained here. Run it with
`python -m envgen.llm.serve MODEL_DIR --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from envgen.llm.backends import ChatBackend, Usage

_SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "max_completion_tokens")


def completion_body(message: dict[str, Any], model: str, usage: dict[str, int]) -> dict[str, Any]:
    """An OpenAI `chat.completion` object for one assistant message."""
    out = {"role": "assistant", "content": message.get("content") or None}
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": out, "finish_reason": "tool_calls" if out.get("tool_calls") else "stop"}
        ],
        "usage": usage,
    }


def _tokens(backend: ChatBackend) -> tuple[int, int]:
    """(prompt, completion) tokens the backend has counted so far (backends without counts report 0)."""
    usage = getattr(backend, "usage", None) or Usage()
    return usage.prompt_tokens, usage.completion_tokens


def build_app(backend: ChatBackend, model_name: str) -> Starlette:
    """Requests are served one at a time: an in-process checkpoint generates one at a time anyway."""
    lock = asyncio.Lock()

    async def chat(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse(
                {"error": {"message": f"bad request: {exc}", "type": "invalid_request_error"}}, 400
            )
        sampling = {k: body[k] for k in _SAMPLING_KEYS if body.get(k) is not None}
        async with lock:  # one request at a time, so the token counts below are this request's own
            before = _tokens(backend)
            message = await backend.complete(messages, body.get("tools") or [], **sampling)
            after = _tokens(backend)
        prompt, completion = after[0] - before[0], after[1] - before[1]
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return JSONResponse(completion_body(message, body.get("model") or model_name, usage))

    async def models(_: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "agentscaler"}]}
        )

    return Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)]
    )


@contextmanager
def serving_app(app: Starlette, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an app in a background thread for the duration of the block; yields the base URL (`.../v1`)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the OpenAI-compatible server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serving(backend: ChatBackend, model_name: str, port: int = 0, host: str = "127.0.0.1"):
    """`serving_app` for a backend: the project's own OpenAI-compatible endpoint."""
    return serving_app(build_app(backend, model_name), port, host)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args(argv)
    from envgen.llm.hf_backend import HFChatBackend

    backend = HFChatBackend(args.model_dir, max_new_tokens=args.max_new_tokens)
    uvicorn.run(build_app(backend, backend.name), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
