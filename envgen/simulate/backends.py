"""One interface for every language-model role, and its OpenAI-compatible implementation.

`ChatBackend.complete(messages, tools, **sampling)` returns an OpenAI-format assistant message dict. The
synthesis helper, the user simulator, the teacher and the evaluated agent all use it, so any role can be
played by a scripted component (offline default), an in-process Hugging Face checkpoint, or any
OpenAI-compatible endpoint (vLLM, SGLang, Ollama, OpenAI).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from envgen.simulate.toolcall_parse import parse_assistant_text


@runtime_checkable
class ChatBackend(Protocol):
    name: str

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **sampling: Any
    ) -> dict[str, Any]: ...


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    retries: int = 0


class DoNothingAgent:
    """The floor: an agent that never calls a tool and only acknowledges. Used to compute score floors."""

    name = "floor:do-nothing"

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **sampling: Any
    ) -> dict[str, Any]:
        return {"role": "assistant", "content": "I'm sorry, I can't help with that."}


@dataclass
class OpenAIChatBackend:
    """Any OpenAI-compatible chat endpoint, with bounded concurrency, retries with backoff and timeouts.

    The key is read from `api_key` or the environment variable named by `api_key_env`, never stored in
    metadata or logs.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    api_key: str | None = None
    max_concurrency: int = 16
    max_retries: int = 5
    timeout_s: float = 120.0
    backoff_s: float = 1.0
    default_sampling: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        from openai import AsyncOpenAI

        key = self.api_key or os.environ.get(self.api_key_env) or "not-needed"
        # Retries are ours (so they are counted and jittered); the client must not retry on its own.
        self._client = AsyncOpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout_s, max_retries=0)
        self._sem = asyncio.Semaphore(self.max_concurrency)
        self.name = f"openai:{self.model}"

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **sampling: Any
    ) -> dict[str, Any]:
        import openai

        params = {**self.default_sampling, **sampling}
        if tools:
            params["tools"] = tools
        retryable = (
            openai.RateLimitError,
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.InternalServerError,
        )
        async with self._sem:
            for attempt in range(self.max_retries + 1):
                try:
                    resp = await self._client.chat.completions.create(
                        model=self.model, messages=messages, **params
                    )
                    break
                except retryable:
                    if attempt == self.max_retries:
                        raise
                    self.usage.retries += 1
                    await asyncio.sleep(self.backoff_s * (2**attempt) * (0.5 + random.random()))
        self.usage.requests += 1
        if resp.usage:
            self.usage.prompt_tokens += resp.usage.prompt_tokens or 0
            self.usage.completion_tokens += resp.usage.completion_tokens or 0
        return message_from_openai(resp.choices[0].message)


def message_from_openai(msg: Any) -> dict[str, Any]:
    """An SDK message to our dict; text-only replies that carry `<tool_call>` blocks are parsed too."""
    if not msg.tool_calls:
        return parse_assistant_text(msg.content or "")
    calls = [
        {
            "id": c.id,
            "type": "function",
            "function": {"name": c.function.name, "arguments": c.function.arguments or "{}"},
        }
        for c in msg.tool_calls
    ]
    return {"role": "assistant", "content": msg.content or "", "tool_calls": calls}


def arguments_dict(arguments: Any) -> dict[str, Any] | None:
    """A call's arguments as a dict, or None when they are not a JSON object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments)
    except (TypeError, json.JSONDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None
