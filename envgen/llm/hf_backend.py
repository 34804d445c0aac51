"""An in-process chat backend over a local Hugging Face model folder (the tiny model or a fine-tuned one).

It lets the simulator and the evaluations run the project's own trained models through the same
``complete(messages, tools)`` interface as API-backed models, without a server. The output is the raw text
parsed by :func:`envgen.llm.toolcall_parse.parse_assistant_text`, so a malformed generation comes back
as an assistant message with ``parse_errors`` instead of an exception.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from envgen.llm.backends import Usage
from envgen.llm.compact import CompactView, compact_messages, token_counter
from envgen.llm.guided import TokenStrings, ToolNameGuide, offered_names
from envgen.llm.toolcall_parse import arguments_as_objects, parse_assistant_text
from envgen.llm.turn_markers import end_of_turn_ids

logger = logging.getLogger(__name__)

Prompt = tuple[list[dict], list[dict]]


class GreedyBatcher:
    """Decodes concurrent greedy requests together: episodes in flight (rollouts, tau2 threads) each ask
    for one turn at a time, and one batched, KV-cached ``generate`` over all of them costs little more than
    one of them alone on a CPU, where per-step overhead dominates a tiny model's decoding.

    A worker thread takes the first waiting request, then keeps collecting until no new one arrived for
    ``settle_s`` (the other episodes are still executing their tool calls) or ``max_batch`` are waiting,
    and decodes them in one call. It works across threads and event loops (plain futures), and exits when
    idle, so a backend that is dropped leaves no thread behind.
    """

    def __init__(
        self,
        decode: Callable[[list[Prompt]], list[dict[str, Any]]],
        max_batch: int = 32,
        settle_s: float = 0.02,
        idle_s: float = 1.0,
    ) -> None:
        self.decode = decode
        self.max_batch = max_batch
        self.settle_s = settle_s
        self.idle_s = idle_s
        self.batches: list[int] = []  # sizes of the batches decoded, for throughput reports and tests
        self._queue: queue.Queue[tuple[Prompt, Future]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, prompt: Prompt) -> Future:
        future: Future = Future()
        self._queue.put((prompt, future))
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="greedy-batcher", daemon=True)
                self._worker.start()
        return future

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self.idle_s)]
            except queue.Empty:
                with self._start_lock:  # a request submitted meanwhile restarts a worker after this one ends
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            deadline = time.monotonic() + self.settle_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0.0)))
                    deadline = time.monotonic() + self.settle_s
                except queue.Empty:
                    break
            self.batches.append(len(batch))
            try:
                replies = self.decode([prompt for prompt, _ in batch])
            except Exception as exc:  # every waiting episode sees the failure, none hangs
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                future.set_result(reply)


class ChatRenderer:
    """A conversation as a model reads it: in the compact view when the model was trained on it (the view
    is in the model folder, `envgen.llm.compact`), rendered by the model's chat template. Decoding here and
    the RL rollouts (`train.rl_rollout`) render through it, so both see what training saw."""

    def __init__(self, tokenizer: Any, view: CompactView | None) -> None:
        self.tokenizer = tokenizer
        self.view = view
        self._count_tokens = token_counter(tokenizer)

    def text(self, messages: list[dict], tools: list[dict], add_generation_prompt: bool = True) -> str:
        """The rendered conversation, with the assistant's generation prompt unless told otherwise."""
        messages = arguments_as_objects(messages)
        if self.view is not None:
            messages, _ = compact_messages(messages, tools, self.view, self._count_tokens)
            tools = []
        return self.tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=add_generation_prompt, tokenize=False
        )


class HFChatBackend:
    """Generate assistant turns with a local causal LM and its chat template.

    Greedy turns from concurrent callers are decoded together (:class:`GreedyBatcher`); sampled turns run
    one ``generate`` at a time under a lock, so the seeded random stream does not depend on scheduling.
    """

    def __init__(
        self,
        model_dir: Path | str,
        max_new_tokens: int = 192,
        temperature: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        guided_tool_names: bool = False,
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
        self._stop_ids = stop_token_ids(self.tokenizer)
        # The compact view the model was trained on (envgen.llm.compact), or None for full conversations.
        self.renderer = ChatRenderer(self.tokenizer, CompactView.load(self.model_dir))
        self.batcher = GreedyBatcher(self.greedy_batch)
        # Guided tool names (envgen.llm.guided): a call's name can only spell an offered tool.
        self.guided_tool_names = guided_tool_names
        self._token_strings: TokenStrings | None = None

    async def complete(self, messages: list[dict], tools: list[dict], **sampling: Any) -> dict[str, Any]:
        """Return the next assistant message (OpenAI format) for ``messages`` with ``tools`` offered.

        ``sampling`` may override ``temperature``, ``top_p`` and ``max_new_tokens`` (alias ``max_tokens``);
        other keys are ignored so callers can pass API-style options unchanged. Greedy turns at the default
        length go through the batcher, so episodes in flight share each ``generate``.
        """
        max_new = sampling.get("max_new_tokens") or sampling.get("max_tokens") or self.max_new_tokens
        greedy = float(sampling.get("temperature", self.temperature) or 0.0) <= 0.0
        if greedy and int(max_new) == self.max_new_tokens:
            return await asyncio.wrap_future(self.batcher.submit((messages, tools)))
        return await asyncio.to_thread(self._complete_blocking, messages, tools, sampling)

    def _complete_blocking(
        self, messages: list[dict], tools: list[dict], sampling: dict[str, Any]
    ) -> dict[str, Any]:
        """Render, generate and parse under the lock."""
        max_new = int(sampling.get("max_new_tokens") or sampling.get("max_tokens") or self.max_new_tokens)
        prompt = self._prompt_tokens(messages, tools, max_new)
        with self._lock:
            generated = generate_rows(
                self.model,
                [prompt],
                max_new,
                self._stop_ids,
                pad_id(self.tokenizer, self._stop_ids),
                lambda width: self._guide([tools], width),
                **self._sampling_kwargs(sampling),
            )
            new_tokens = _until_stop(generated[0], self._stop_ids)
            self.usage.requests += 1
            self.usage.prompt_tokens += len(prompt)
            self.usage.completion_tokens += len(new_tokens)
        return parse_assistant_text(self.tokenizer.decode(new_tokens, skip_special_tokens=True))

    def _prompt_tokens(self, messages: list[dict], tools: list[dict], max_new: int) -> list[int]:
        """Tokenise the rendered conversation (`ChatRenderer`), keeping the most recent tokens if too long."""
        ids = self.tokenizer(self.renderer.text(messages, tools), add_special_tokens=False)["input_ids"]
        budget = max(getattr(self.model.config, "max_position_embeddings", len(ids) + max_new) - max_new, 1)
        if len(ids) > budget:
            logger.warning("%s: prompt of %d tokens cut to the last %d", self.name, len(ids), budget)
            ids = ids[-budget:]
        return list(ids)

    def greedy_batch(self, prompts: list[Prompt], batch_size: int = 32) -> list[dict[str, Any]]:
        """The greedy next assistant message for each (messages, tools), decoded in left-padded batches with
        the KV cache: the graded evaluation asks for thousands of single turns, one `generate` each would
        cost most of its time in per-call overhead."""
        encoded = [self._prompt_tokens(m, t, self.max_new_tokens) for m, t in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        replies: list[dict[str, Any]] = [{} for _ in encoded]
        with self._lock:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                generated = generate_rows(
                    self.model,
                    [encoded[i] for i in chunk],
                    self.max_new_tokens,
                    self._stop_ids,
                    pad_id(self.tokenizer, self._stop_ids),
                    lambda width, chunk=chunk: self._guide([prompts[i][1] for i in chunk], width),
                    do_sample=False,
                )
                for i, new_tokens in zip(chunk, generated, strict=True):
                    new_tokens = _until_stop(new_tokens, self._stop_ids)
                    self.usage.requests += 1
                    self.usage.prompt_tokens += len(encoded[i])
                    self.usage.completion_tokens += len(new_tokens)
                    text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
                    replies[i] = parse_assistant_text(text)
        return replies

    def _guide(self, tools_per_row: list[list[dict]], prompt_width: int) -> LogitsProcessorList:
        """The guided-names processor for these rows, or no processor when guidance is off."""
        if not self.guided_tool_names:
            return LogitsProcessorList()
        if self._token_strings is None:
            self._token_strings = TokenStrings(self.tokenizer)
        names = [offered_names(tools) for tools in tools_per_row]
        return LogitsProcessorList([ToolNameGuide(self._token_strings, names, prompt_width)])

    def _sampling_kwargs(self, sampling: dict[str, Any]) -> dict[str, Any]:
        """Greedy at temperature 0; else sampling seeded with seed + call index, so runs are reproducible."""
        temperature = float(sampling.get("temperature", self.temperature) or 0.0)
        if temperature <= 0.0:
            return {"do_sample": False}
        torch.manual_seed(self.seed + self.usage.requests)
        return {"do_sample": True, "temperature": temperature, "top_p": float(sampling.get("top_p", 1.0))}


def pad_id(tokenizer: Any, stop_ids: list[int]) -> int:
    """The tokenizer's padding id, or its first stop id when it has none."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]


def generate_rows(
    model: Any,
    rows: list[list[int]],
    max_new_tokens: int,
    stop_ids: list[int],
    pad: int,
    guide_for: Callable[[int], LogitsProcessorList],
    **generation: Any,
) -> list[list[int]]:
    """One KV-cached ``generate`` over token rows of different lengths (left-padded), returning each row's
    new tokens up to and including its first stop token (all of them when it never stopped).

    ``guide_for(width)`` gives the logits processors for the padded prompt width; ``generation`` holds the
    sampling arguments (``do_sample``, ``temperature``, ``top_p``). The greedy evaluation batches and the
    RL rollouts (`train.rl_rollout`) decode through this one function."""
    device = next(model.parameters()).device
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, tokens in enumerate(rows):
        ids[row, width - len(tokens) :] = torch.tensor(tokens)
        attention[row, width - len(tokens) :] = 1
    with torch.no_grad():
        output = model.generate(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=pad,
            logits_processor=guide_for(width),
            **generation,
        )
    new = [output[row, width:].tolist() for row in range(len(rows))]
    return [tokens[: len(_until_stop(tokens, stop_ids)) + 1] for tokens in new]


def _resolve_device(device: str) -> str:
    """``auto`` picks CUDA when available."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def stop_token_ids(tokenizer: Any) -> list[int]:
    """End-of-turn and end-of-sequence ids: generation must stop at whichever comes first."""
    ids = {tokenizer.eos_token_id, *end_of_turn_ids(tokenizer)}
    return sorted(i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id)


def _until_stop(tokens: list[int], stop_ids: list[int]) -> list[int]:
    """The generated tokens before the first stop token (padding after it is dropped too)."""
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:index]
    return tokens
