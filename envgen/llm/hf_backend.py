"""An in-process chat backend over a local Hugging Face model folder (the tiny model or a fine-tuned one).

It lets the simulator and the evaluations run the project's own trained models through the same
``complete(messages, tools)`` interface as API-backed models, without a server. The output is the raw text
parsed by :func:`envgen.llm.toolcall_parse.parse_assistant_text`, so a malformed generation comes back
as an assistant message with ``parse_errors`` instead of an exception.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from envgen.llm.backends import Usage
from envgen.llm.compact import CompactView, compact_messages, token_counter
from envgen.llm.toolcall_parse import arguments_as_objects, parse_assistant_text

logger = logging.getLogger(__name__)

_END_OF_TURN = "<|im_end|>"


class HFChatBackend:
    """Generate assistant turns with a local causal LM and its chat template.

    One ``generate`` runs at a time (a lock): concurrent rollouts would otherwise contend for the same weights
    and, when sampling, make the seeded random stream depend on scheduling.
    """

    def __init__(
        self,
        model_dir: Path | str,
        max_new_tokens: int = 192,
        temperature: float = 0.0,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.model_dir = Path(model_dir)
        self.name = f"hf:{self.model_dir.name}"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.device = torch.device(_resolve_device(device))
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype="auto").to(self.device).eval()
        self.usage = Usage()
        self._lock = threading.Lock()
        self._stop_ids = _stop_token_ids(self.tokenizer)
        # The compact view the model was trained on (envgen.llm.compact), or None for full conversations.
        self.view = CompactView.load(self.model_dir)
        self._count_tokens = token_counter(self.tokenizer)

    async def complete(self, messages: list[dict], tools: list[dict], **sampling: Any) -> dict[str, Any]:
        """Return the next assistant message (OpenAI format) for ``messages`` with ``tools`` offered.

        ``sampling`` may override ``temperature``, ``top_p`` and ``max_new_tokens`` (alias ``max_tokens``);
        other keys are ignored so callers can pass API-style options unchanged.
        """
        return await asyncio.to_thread(self._complete_blocking, messages, tools, sampling)

    def _complete_blocking(
        self, messages: list[dict], tools: list[dict], sampling: dict[str, Any]
    ) -> dict[str, Any]:
        """Render, generate and parse under the lock."""
        max_new = int(sampling.get("max_new_tokens") or sampling.get("max_tokens") or self.max_new_tokens)
        prompt = self._prompt_ids(messages, tools, max_new)
        with self._lock:
            generation_kwargs = self._sampling_kwargs(sampling)
            with torch.no_grad():
                output = self.model.generate(
                    input_ids=prompt,
                    attention_mask=torch.ones_like(prompt),
                    max_new_tokens=max_new,
                    eos_token_id=self._stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **generation_kwargs,
                )
            new_tokens = _until_stop(output[0, prompt.shape[1] :].tolist(), self._stop_ids)
            self.usage.requests += 1
            self.usage.prompt_tokens += prompt.shape[1]
            self.usage.completion_tokens += len(new_tokens)
        return parse_assistant_text(self.tokenizer.decode(new_tokens, skip_special_tokens=True))

    def _prompt_tokens(self, messages: list[dict], tools: list[dict], max_new: int) -> list[int]:
        """Tokenise the conversation (in the compact view when the model was trained on it) plus generation
        prompt, keeping the most recent tokens if too long."""
        messages = arguments_as_objects(messages)
        if self.view is not None:
            messages, _ = compact_messages(messages, tools, self.view, self._count_tokens)
            tools = []
        ids = self.tokenizer.apply_chat_template(
            messages,
            tools=tools or None,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        budget = max(getattr(self.model.config, "max_position_embeddings", len(ids) + max_new) - max_new, 1)
        if len(ids) > budget:
            logger.warning("%s: prompt of %d tokens cut to the last %d", self.name, len(ids), budget)
            ids = ids[-budget:]
        return list(ids)

    def _prompt_ids(self, messages: list[dict], tools: list[dict], max_new: int) -> torch.Tensor:
        return torch.tensor([self._prompt_tokens(messages, tools, max_new)], device=self.device)

    def greedy_batch(
        self, prompts: list[tuple[list[dict], list[dict]]], batch_size: int = 32
    ) -> list[dict[str, Any]]:
        """The greedy next assistant message for each (messages, tools), decoded in left-padded batches with
        the KV cache: the graded evaluation asks for thousands of single turns, one `generate` each would
        cost most of its time in per-call overhead."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self._stop_ids[0]
        encoded = [self._prompt_tokens(m, t, self.max_new_tokens) for m, t in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        replies: list[dict[str, Any]] = [{} for _ in encoded]
        with self._lock, torch.no_grad():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                width = max(len(encoded[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                    attention[row, width - len(encoded[i]) :] = 1
                output = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=attention.to(self.device),
                    max_new_tokens=self.max_new_tokens,
                    eos_token_id=self._stop_ids,
                    pad_token_id=pad,
                    do_sample=False,
                )
                for row, i in enumerate(chunk):
                    new_tokens = _until_stop(output[row, width:].tolist(), self._stop_ids)
                    self.usage.requests += 1
                    self.usage.prompt_tokens += len(encoded[i])
                    self.usage.completion_tokens += len(new_tokens)
                    text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
                    replies[i] = parse_assistant_text(text)
        return replies

    def _sampling_kwargs(self, sampling: dict[str, Any]) -> dict[str, Any]:
        """Greedy at temperature 0; else sampling seeded with seed + call index, so runs are reproducible."""
        temperature = float(sampling.get("temperature", self.temperature) or 0.0)
        if temperature <= 0.0:
            return {"do_sample": False}
        torch.manual_seed(self.seed + self.usage.requests)
        return {"do_sample": True, "temperature": temperature, "top_p": float(sampling.get("top_p", 1.0))}


def _resolve_device(device: str) -> str:
    """``auto`` picks CUDA when available."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _stop_token_ids(tokenizer: Any) -> list[int]:
    """End-of-turn and end-of-sequence ids: generation must stop at whichever comes first."""
    ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(_END_OF_TURN)}
    return sorted(i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id)


def _until_stop(tokens: list[int], stop_ids: list[int]) -> list[int]:
    """The generated tokens before the first stop token (padding after it is dropped too)."""
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:index]
    return tokens
