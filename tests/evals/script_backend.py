"""A scripted `ChatBackend` for the tau2 / tau-bench tests: fixed tool calls, then fixed words.

Shared by tests/evals/test_tau2.py and tests/evals/test_taubench.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScriptBackend:
    """A `ChatBackend` that makes fixed calls, one per turn (`call_1` ids every time, as our local backends
    do), then says `closing` or calls `done` (solo). It records the tool names it was offered."""

    calls: list[tuple[str, dict[str, Any]]]
    closing: str = "Done."
    finish_with_done: bool = False
    name: str = "test:script"
    offered: set[str] = field(default_factory=set)

    async def complete(self, messages: list[dict], tools: list[dict], **sampling: Any) -> dict[str, Any]:
        self.offered |= {t["function"]["name"] for t in tools}
        made = sum(1 for m in messages if m["role"] == "assistant" and m.get("tool_calls"))
        calls = self.calls + ([("done", {})] if self.finish_with_done else [])
        if made < len(calls):
            name, arguments = calls[made]
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            return {"role": "assistant", "content": "", "tool_calls": [call]}
        return {"role": "assistant", "content": self.closing}
