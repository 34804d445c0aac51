"""Rule-based, seeded stand-ins for the user and the teacher, so the funnel has real work offline.

They are not language models and are named `scripted:*` wherever they appear. The scripted user reveals
the task's intent one part per turn and ends when everything was asked. The scripted teacher follows the
task's gold plan with a configurable error model (wrong argument, skipped step, unknown tool, early stop),
so trajectories fail in the ways real agents fail and the funnel has something to reject.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from envgen.environment.runtime import content_is_error
from envgen.tasks.chains import Task

STOP = "###STOP###"


@dataclass(frozen=True)
class ErrorModel:
    """Per-call probabilities of each mistake, and of recovering after a failed call."""

    wrong_argument: float = 0.08
    skipped_step: float = 0.04
    unknown_tool: float = 0.04
    early_stop: float = 0.03
    recover: float = 0.7


class ScriptedUser:
    """Reveals `task.intent_parts` one per turn; says STOP once all were asked and answered."""

    def __init__(self, task: Task):
        self.parts = task.intent_parts
        self.revealed = 0
        self.name = "scripted:user"

    def first_message(self) -> str:
        self.revealed = 1
        return self.parts[0]

    async def respond(self, messages: list[dict[str, Any]]) -> str:
        if self.revealed < len(self.parts):
            self.revealed += 1
            return self.parts[self.revealed - 1]
        return f"That's everything, thank you! {STOP}"


class ScriptedTeacher:
    """Follows the gold plan of one task, making mistakes at the error model's rates (seeded)."""

    def __init__(self, task: Task, errors: ErrorModel, seed: int):
        self.task = task
        self.errors = errors
        self.rng = random.Random(seed)
        self.next_call = 0
        self.retry: dict[str, Any] | None = None
        self.stopped = False
        self.counter = 0
        self.name = "scripted:teacher"

    def _message(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.counter += 1
        call = {
            "id": f"call_{self.counter}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return {"role": "assistant", "content": "", "tool_calls": [call]}

    def _corrupt(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not arguments:
            return {"unexpected": True}
        key = self.rng.choice(sorted(arguments))
        value = arguments[key]
        if isinstance(value, str):
            bad = value[:-1] + ("9" if not value.endswith("9") else "8")
        elif isinstance(value, bool):
            bad = not value
        elif isinstance(value, int | float):
            bad = value + 1
        else:
            bad = None
        return {**arguments, key: bad}

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **sampling: Any
    ) -> dict[str, Any]:
        revealed_parts = sum(m["role"] == "user" for m in messages)
        last = messages[-1]
        if self.retry is not None and last["role"] == "tool":
            failed = content_is_error(last["content"])
            call, self.retry = self.retry, None
            if failed and self.rng.random() < self.errors.recover:
                return self._message(call["name"], call["arguments"])
        if self.stopped:
            return {"role": "assistant", "content": "I'm afraid that's all I can do right now."}
        # Intent part i asks for gold call i, so call i may be made once i + 1 user turns were seen.
        while self.next_call < min(len(self.task.gold_calls), revealed_parts):
            gold = self.task.gold_calls[self.next_call]
            roll = self.rng.random()
            e = self.errors
            if roll < e.early_stop:
                self.stopped = True
                return {"role": "assistant", "content": "I've done what I can for now."}
            roll -= e.early_stop
            if roll < e.skipped_step:
                self.next_call += 1
                continue
            roll -= e.skipped_step
            self.next_call += 1
            if roll < e.wrong_argument:
                self.retry = gold
                return self._message(gold["name"], self._corrupt(gold["arguments"]))
            roll -= e.wrong_argument
            if roll < e.unknown_tool:
                self.retry = gold
                return self._message(gold["name"] + "_v2", gold["arguments"])
            return self._message(gold["name"], gold["arguments"])
        return {"role": "assistant", "content": "Done. Is there anything else I can help you with?"}
