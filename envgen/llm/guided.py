"""Guided tool names: while a model writes a call's name, only names of the tools it was offered can follow.

Serving stacks offer the same thing (vLLM's and SGLang's guided decoding for `tool_choice`, xgrammar,
outlines): the model still decides whether to call a tool, which one, and every argument; the guide only
removes the tokens that would spell a tool that does not exist. That gives a model the same action space
as the baselines it is compared with (`evals.tool_calls`: both pick among the offered tools), and makes a
small model's choice among the offered tools measurable before it has learned to spell each name.

`ToolNameGuide` is a transformers `LogitsProcessor` over a left-padded batch: for each row, once the text
generated so far ends inside `{"name": "<partial>`, tokens that cannot continue `<partial>` towards
`<offered name>"` get -inf. A token may also run past the closing quote (`",`), as BPE often merges them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

NAME_OPENING = '{"name": "'


class TokenStrings:
    """Each token's text, grouped by first character, decoded once per tokenizer (a 262k vocabulary
    takes a second or two)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.by_first: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for token_id in range(len(tokenizer)):
            text = tokenizer.decode([token_id])
            if text:
                self.by_first[text[0]].append((token_id, text))

    def continuing(self, remainders: list[str]) -> list[int]:
        """Tokens whose text is a prefix of a remainder, or starts with a whole one."""
        allowed: set[int] = set()
        for rest in remainders:
            for token_id, text in self.by_first.get(rest[0], ()):
                if rest.startswith(text) or text.startswith(rest):
                    allowed.add(token_id)
        return sorted(allowed)


def partial_name(text: str) -> str | None:
    """The name being written at the end of `text`, or None when the text is not inside a call's name."""
    at = text.rfind(NAME_OPENING)
    if at < 0:
        return None
    partial = text[at + len(NAME_OPENING) :]
    return None if '"' in partial else partial


class ToolNameGuide:
    """Masks, row by row, the tokens that would spell a tool name the row was not offered."""

    def __init__(self, strings: TokenStrings, names: list[list[str]], prompt_width: int) -> None:
        self.strings = strings
        self.names = names
        self.prompt_width = prompt_width
        self.guided_rows = 0  # rows x steps the guide restricted, for reports

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, offered in enumerate(self.names):
            if not offered:
                continue
            text = self.strings.tokenizer.decode(input_ids[row, self.prompt_width :])
            partial = partial_name(text)
            if partial is None:
                continue
            remainders = [f'{n}"'[len(partial) :] for n in offered if n.startswith(partial)]
            allowed = self.strings.continuing(remainders) if remainders else []
            if not allowed:  # the name already left every offered one: nothing to guide towards
                continue
            keep = scores[row, allowed].clone()
            scores[row, :] = float("-inf")
            scores[row, allowed] = keep
            self.guided_rows += 1
        return scores


def offered_names(tools: list[dict[str, Any]]) -> list[str]:
    return [str(t.get("function", t).get("name", "")) for t in tools if t.get("function", t).get("name")]
