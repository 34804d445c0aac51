"""A user simulator played by a language model through any `ChatBackend` (the endpoint profile's user).

The model sees the task intent in its system prompt and the conversation with roles flipped (the agent's
words arrive as `user`, its own earlier words as `assistant`); it ends the conversation with the stop token.
"""

from __future__ import annotations

from typing import Any

from envgen.llm.backends import ChatBackend
from envgen.simulate.scripted import STOP
from envgen.tasks.chains import Task

_INSTRUCTIONS = (
    "You are a customer talking to a customer-service agent. Your goal, which you pursue one step at a "
    "time without revealing everything at once:\n{intent}\n\nSpeak naturally and briefly, give the ids and "
    "values from your goal when the agent needs them, never invent other values, and never mention tools. "
    f"When everything in your goal is done, or cannot be done, reply with {STOP} at the end of your message."
)


class LLMUser:
    def __init__(self, task: Task, backend: ChatBackend, **sampling: Any):
        self.task, self.backend, self.sampling = task, backend, sampling
        self.name = f"llm-user:{backend.name}"

    def first_message(self) -> str:
        # Opening with the first part keeps the conversation anchored even for a weak user model.
        return self.task.intent_parts[0]

    async def respond(self, messages: list[dict[str, Any]]) -> str:
        flipped: list[dict[str, Any]] = [
            {"role": "system", "content": _INSTRUCTIONS.format(intent=self.task.intent)}
        ]
        for m in messages[1:]:
            if m["role"] == "user":
                flipped.append({"role": "assistant", "content": m["content"]})
            elif m["role"] == "assistant" and m.get("content"):
                flipped.append({"role": "user", "content": m["content"]})
        reply = await self.backend.complete(flipped, [], **self.sampling)
        return reply.get("content") or STOP
