"""The compact view of a conversation that a small model is trained on and decodes from.

A full rendering of a domain's tools as JSON schemas is ~2,400 tokens, and a whole dialogue ~800 more: a
small model cannot attend across that, and most of its training tokens would be a tool list it sees again
and again. The compact view keeps what the next assistant turn depends on:

- the tools of the conversation's own environment as one line each, `name(arg: type, opt?: type) : first
  sentence of the description`, inside a fixed token budget (descriptions are shortened first, then the
  signature's types dropped, then tools; every cut is counted);
- the messages before the turn (all, or the last `window`; the system policy is dropped: it is the same
  text in every conversation), with tool results cut to `result_chars` characters.

Training (`train.sft`: with the whole history, one example per conversation with every assistant turn in
the loss; with a window, one example per assistant turn) and decoding (`envgen.llm.hf_backend`, when the
model folder carries `compact.json`) call the same `compact_messages`, so a model sees at inference exactly
the shape it was trained on. The view is plain chat messages, so any chat template renders it. What it
cut is returned as counts (`conversations`, `descriptions_shortened`, `types_dropped`, `tools_dropped`,
`messages_dropped`, `results_cut`) that callers sum and report: nothing is dropped silently.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SETTINGS_FILE = "compact.json"  # in a model folder: the view the model was trained on


@dataclass(frozen=True)
class CompactView:
    """How much of a conversation the model sees: messages kept, result length, tool-block budget."""

    window: int = 0  # messages before the turn that the model sees; 0: all of them
    result_chars: int = 80
    tool_budget: int = 320  # tokens of the tool block, counted with the model's tokenizer
    description_words: int = 12  # a description's first sentence, cut to this many words

    def save(self, model_dir: Path) -> None:
        (Path(model_dir) / SETTINGS_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, model_dir: Path) -> CompactView | None:
        """The view a model folder was trained on, or None for a model trained on full conversations."""
        path = Path(model_dir) / SETTINGS_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


def first_sentence(text: str, words: int) -> str:
    """The description's first sentence, at most `words` words."""
    sentence = text.strip().split(". ")[0].rstrip(".").strip()
    parts = sentence.split()
    return " ".join(parts[:words])


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def signature(tool: dict[str, Any], typed: bool = True) -> str:
    """`name(arg: type, opt?: type)`: required arguments first, optional ones marked with `?`."""
    fn = _function(tool)
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    required = set(params.get("required") or [])
    names = [n for n in props if n in required] + [n for n in props if n not in required]
    args = []
    for n in names:
        mark = "" if n in required else "?"
        kind = props[n].get("type", "any") if isinstance(props[n], dict) else "any"
        args.append(f"{n}{mark}: {kind}" if typed else f"{n}{mark}")
    return f"{fn.get('name', '?')}({', '.join(args)})"


def tool_block(
    tools: list[dict[str, Any]], view: CompactView, count: Callable[[str], int]
) -> tuple[str, Counter[str]]:
    """The tools as lines within `view.tool_budget` tokens (as `count` measures), and what was cut: first
    descriptions are shortened to five words, then types dropped, then tools dropped from the end."""
    stats: Counter[str] = Counter()

    def lines(words: int, typed: bool) -> list[str]:
        return [
            f"{signature(t, typed)} : {first_sentence(_function(t).get('description', ''), words)}"
            for t in tools
        ]

    shown = lines(view.description_words, typed=True)
    for cut, words, typed in (("descriptions_shortened", 5, True), ("types_dropped", 5, False)):
        if count("\n".join(shown)) <= view.tool_budget:
            break
        shown = lines(words, typed)
        stats[cut] = len(tools)
    while count("\n".join(shown)) > view.tool_budget and len(shown) > 1:
        shown.pop()
        stats["tools_dropped"] += 1
    return "\n".join(shown), stats


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Token count of a text by a Hugging Face tokenizer, cached: a domain's tool block is measured once,
    not once per turn."""

    @functools.lru_cache(maxsize=4096)
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


SYSTEM_HEAD = "Tools:"


def compact_messages(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    view: CompactView,
    count: Callable[[str], int],
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The compact view of `messages` (everything before the turn to predict): a system message with the
    tool block, then the last `view.window` non-system messages with long tool results cut."""
    block, stats = tool_block(tools, view, count)
    stats["conversations"] = 1
    history = [m for m in messages if m.get("role") != "system"]
    kept = history[-view.window :] if view.window > 0 else history
    stats["messages_dropped"] = len(history) - len(kept)
    shown = []
    for m in kept:
        if (
            m.get("role") == "tool"
            and isinstance(m.get("content"), str)
            and len(m["content"]) > view.result_chars
        ):
            m = {**m, "content": m["content"][: view.result_chars]}
            stats["results_cut"] += 1
        shown.append(m)
    return [{"role": "system", "content": f"{SYSTEM_HEAD}\n{block}"}, *shown], stats
