"""The tokens that open and close a chat turn, for the models this project renders conversations for.

The chat template (`train.chat_template`) writes them and the decoder (`envgen.llm.hf_backend`) stops at
the closing one, so both read them from here. A model keeps its own markers when its vocabulary has them
as single tokens (Gemma's ``<start_of_turn>``), else it uses Qwen's, added as special tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TurnMarkers:
    """The tokens that open and close a turn; `end` is also the stop token at inference."""

    start: str
    end: str


QWEN_MARKERS = TurnMarkers("<|im_start|>", "<|im_end|>")
GEMMA_MARKERS = TurnMarkers("<start_of_turn>", "<end_of_turn>")
KNOWN_MARKERS = (QWEN_MARKERS, GEMMA_MARKERS)


def single_token_id(tokenizer: Any, text: str) -> int | None:
    """The id of `text` when the vocabulary holds it as one token (not the unknown token), else None."""
    token_id = tokenizer.convert_tokens_to_ids(text)
    if not isinstance(token_id, int) or token_id == tokenizer.unk_token_id:
        return None
    return token_id


def markers_for(tokenizer: Any) -> TurnMarkers | None:
    """The first known pair of markers the tokenizer has as single tokens, or None."""
    for markers in KNOWN_MARKERS:
        ids = (single_token_id(tokenizer, markers.start), single_token_id(tokenizer, markers.end))
        if None not in ids:
            return markers
    return None


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Ids of every known end-of-turn marker in the vocabulary: generation stops at the first one."""
    ids = (single_token_id(tokenizer, m.end) for m in KNOWN_MARKERS)
    return [i for i in ids if i is not None]
