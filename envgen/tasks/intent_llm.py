"""Optional: let a language model reword templated intents, and keep its words only if they are safe.

The templated intent is always written first. A model (any `ChatBackend`) may rewrite each part as a
customer would say it; the rewrite is accepted only if it is a JSON list of the same length, every part
still carries every value the agent needs (verbatim), and no part names a tool. Otherwise the template
stays, and the refusal is counted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envgen.llm.backends import ChatBackend
from envgen.tasks.chains import Task

_PROMPT = (
    "Rewrite each numbered request below as one natural message a customer would type to a support agent. "
    "Keep every id, name, number, date and quoted value exactly as written (drop the quotes if you like), "
    "do not add new facts, do not mention functions or tools. Answer with a JSON list of strings, one per "
    "request, in the same order, and nothing else.\n\n{parts}"
)


def values_stated(task: Task) -> list[list[str]]:
    """For each intent part, the argument values the template stated (those the agent must be told)."""
    out = []
    for part, call in zip(task.intent_parts, task.gold_calls, strict=True):
        out.append([str(v) for v in call["arguments"].values() if str(v) in part])
    return out


def accept_rewrite(task: Task, text: str, tool_names: set[str]) -> list[str] | str:
    """The rewritten parts, or the reason the rewrite is refused."""
    match = re.search(r"\[.*\]", text, re.S)
    try:
        parts: Any = json.loads(match.group()) if match else None
    except json.JSONDecodeError:
        parts = None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        return "not a JSON list of strings"
    if len(parts) != len(task.intent_parts):
        return f"expected {len(task.intent_parts)} parts, got {len(parts)}"
    for i, (part, needed) in enumerate(zip(parts, values_stated(task), strict=True)):
        lost = [v for v in needed if v not in part]
        if lost:
            return f"part {i} lost the values {lost}"
        if any(name in part for name in tool_names):
            return f"part {i} names a tool"
    return parts


async def rewrite_intent(task: Task, backend: ChatBackend, tool_names: set[str]) -> tuple[Task, str | None]:
    """The task with the model's wording, or unchanged with the reason the rewrite was refused."""
    numbered = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(task.intent_parts))
    reply = await backend.complete([{"role": "user", "content": _PROMPT.format(parts=numbered)}], [])
    verdict = accept_rewrite(task, reply.get("content") or "", tool_names)
    if isinstance(verdict, str):
        return task, verdict
    task.intent_parts = verdict
    task.intent = " ".join(verdict)
    return task, None
