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

from envgen.llm.toolcall_parse import parse_assistant_text


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
    api_key: str | None = field(default=None, repr=False)
    max_concurrency: int = 16
    max_retries: int = 5
    timeout_s: float = 120.0
    backoff_s: float = 1.0
    default_sampling: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.name = f"openai:{self.model}"
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session(self) -> tuple[Any, asyncio.Semaphore]:
        """The client and concurrency bound of the running event loop.

        An asyncio client and semaphore belong to the loop they were first used in, and an asset may call
        `asyncio.run` several times with one backend; so both are made anew when the loop changes.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            from openai import AsyncOpenAI, DefaultAioHttpClient

            key = self.api_key or os.environ.get(self.api_key_env) or "not-needed"
            # Retries are ours (so they are counted and jittered); the client must not retry on its own.
            self._client = AsyncOpenAI(
                base_url=self.base_url,
                api_key=key,
                timeout=self.timeout_s,
                max_retries=0,
                http_client=DefaultAioHttpClient(timeout=self.timeout_s),
            )
            self._sem = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        return self._client, self._sem

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **sampling: Any
    ) -> dict[str, Any]:
        import openai

        body = {"model": self.model, "messages": messages, **self.default_sampling, **sampling}
        if tools:
            body["tools"] = tools
        retryable = (
            openai.RateLimitError,
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.InternalServerError,
            MalformedReply,
        )
        client, sem = self._session()
        async with sem:
            for attempt in range(self.max_retries + 1):
                try:
                    # The SDK's documented raw `post`, read as bytes, rather than `chat.completions.create`:
                    # our messages and tools are already plain JSON, and `create` walks them through its
                    # TypedDict transform and builds pydantic models of the reply on every call, which cost
                    # two thirds of the client's CPU at 64 episodes in flight.
                    raw = await client.post("/chat/completions", body=body, cast_to=bytes)
                    message, usage = parse_completion(raw)
                    break
                except retryable:
                    if attempt == self.max_retries:
                        raise
                    self.usage.retries += 1
                    await asyncio.sleep(self.backoff_s * (2**attempt) * (0.5 + random.random()))
        self.usage.requests += 1
        self.usage.prompt_tokens += usage.get("prompt_tokens") or 0
        self.usage.completion_tokens += usage.get("completion_tokens") or 0
        return message_from_openai(message)

    async def aclose(self) -> None:
        """Close the connection pool inside its own loop (else it is torn down after the loop has closed)."""
        if self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._loop = None


class MalformedReply(ValueError):
    """An endpoint answered 200 with a body that is not a chat completion (a proxy's HTML page, a cut-off
    body). Retried like a 5xx: such bodies come from overloaded or restarting servers."""


def parse_completion(raw: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first choice's message and the usage block of a chat-completion body."""
    try:
        body = json.loads(raw)
        message = body["choices"][0]["message"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as exc:
        raise MalformedReply(f"not a chat completion ({type(exc).__name__}): {raw[:120]!r}") from exc
    if not isinstance(message, dict):
        raise MalformedReply(f"choices[0].message is not an object: {raw[:120]!r}")
    return message, body.get("usage") or {}


def message_from_openai(msg: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-format message to our dict; never raises. Text-only replies that carry `<tool_call>` blocks
    are parsed; odd shapes some servers send (arguments as an object, missing ids) are normalised, and
    shapes that cannot be calls are kept under `parse_errors`, so the funnel rejects them by name."""
    content = msg.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content)
    raw_calls = msg.get("tool_calls")
    if not raw_calls:
        return parse_assistant_text(content)
    if not isinstance(raw_calls, list):
        parsed = parse_assistant_text(content)
        errors = [*parsed.get("parse_errors", []), f"tool_calls is a {type(raw_calls).__name__}, not a list"]
        return {**parsed, "parse_errors": errors}
    calls = []
    for i, c in enumerate(raw_calls):
        c = c if isinstance(c, dict) else {}
        fn = c.get("function") if isinstance(c.get("function"), dict) else {}
        arguments = fn.get("arguments")
        if arguments is None or arguments == "":
            arguments = "{}"
        elif not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        name = fn.get("name") if isinstance(fn.get("name"), str) else ""
        calls.append(
            {
                "id": str(c.get("id") or f"call_{i}"),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return {"role": "assistant", "content": content, "tool_calls": calls}


def arguments_dict(arguments: Any) -> dict[str, Any] | None:
    """A call's arguments as a dict, or None when they are not a JSON object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments)
    except (TypeError, json.JSONDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None
