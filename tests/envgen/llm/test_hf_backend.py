"""The in-process backend's batching: concurrent greedy turns share one decode and give the same answers."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from envgen.llm.guided import TokenStrings, ToolNameGuide, partial_name
from envgen.llm.hf_backend import GreedyBatcher, HFChatBackend


def _echo(prompts):
    return [{"role": "assistant", "content": str(messages[0]["content"])} for messages, _tools in prompts]


def test_concurrent_requests_are_decoded_together_and_answered_in_their_own_order():
    batcher = GreedyBatcher(_echo, max_batch=8, settle_s=0.05)

    async def ask_all():
        return await asyncio.gather(
            *(asyncio.wrap_future(batcher.submit(([{"content": i}], []))) for i in range(20))
        )

    replies = asyncio.run(ask_all())
    assert [r["content"] for r in replies] == [str(i) for i in range(20)]
    assert sum(batcher.batches) == 20 and max(batcher.batches) == 8 and len(batcher.batches) < 20


def test_requests_from_threads_and_after_an_idle_worker_exited_are_served():
    batcher = GreedyBatcher(_echo, settle_s=0.01, idle_s=0.05)
    first = batcher.submit(([{"content": "a"}], [])).result(timeout=5)
    threading.Event().wait(0.2)  # the worker has gone idle and exited
    results = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(batcher.submit(([{"content": i}], [])).result(5)))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first["content"] == "a" and sorted(r["content"] for r in results) == ["0", "1", "2", "3"]


def test_a_decode_failure_reaches_every_waiting_request_and_the_next_batch_still_runs():
    calls = []

    def flaky(prompts):
        calls.append(len(prompts))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return _echo(prompts)

    batcher = GreedyBatcher(flaky, settle_s=0.05)
    futures = [batcher.submit(([{"content": i}], [])) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            f.result(timeout=5)
    assert batcher.submit(([{"content": "next"}], [])).result(timeout=5)["content"] == "next"


def test_batched_greedy_turns_equal_one_at_a_time_decoding(tiny_checkpoint, airline):
    """Left padding must not change a greedy answer: the batch is the same model, not an approximation."""
    backend = HFChatBackend(tiny_checkpoint, max_new_tokens=12)
    tools = airline.env.openai_tools()
    prompts = [
        [{"role": "user", "content": "Hi! I need to change my flight."}],
        [{"role": "user", "content": "Cancel reservation RES-1004 please, it was booked by mistake."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is my balance?"}],
    ]
    alone = [backend._complete_blocking(m, tools, {}) for m in prompts]

    async def together():
        return await asyncio.gather(*(backend.complete(m, tools) for m in prompts))

    assert asyncio.run(together()) == alone
    assert backend.batcher.batches and max(backend.batcher.batches) > 1


def test_partial_name_is_read_only_inside_an_open_name():
    assert partial_name('<tool_call>\n{"name": "get_or') == "get_or"
    assert partial_name('<tool_call>\n{"name": "') == ""
    assert partial_name('{"name": "get_order", "arguments": {') is None
    assert partial_name("Sure, which order?") is None


def test_the_guide_lets_only_offered_names_be_spelt(tiny_checkpoint):
    """Whatever the model prefers, a guided name can only continue towards an offered tool, and may close."""
    backend = HFChatBackend(tiny_checkpoint, max_new_tokens=4)
    tokenizer = backend.tokenizer
    strings = TokenStrings(tokenizer)
    offered = ["get_reservation_details", "get_user_details", "cancel_reservation"]
    prompt = tokenizer.encode("Hi")
    written = tokenizer.encode('<tool_call>\n{"name": "get_')
    text = (tokenizer.encode("I can help you with that. ") * len(written))[: len(written)]
    ids = torch.tensor([prompt + written, prompt + text])
    guide = ToolNameGuide(strings, [offered, offered], prompt_width=len(prompt))
    scores = guide(ids, torch.zeros((2, len(tokenizer))))
    allowed = [tokenizer.decode([i]) for i in torch.nonzero(scores[0] > float("-inf")).flatten().tolist()]
    assert allowed and all(
        any(f'{n}"'[4:].startswith(a) or a.startswith(f'{n}"'[4:]) for n in offered[:2]) for a in allowed
    )
    assert not any("cancel".startswith(a) for a in allowed)
    assert torch.all(scores[1] == 0)  # a row writing text is left alone
    assert guide.guided_rows == 1
    done = torch.tensor([prompt + tokenizer.encode('<tool_call>\n{"name": "cancel_reservation')])
    closing = ToolNameGuide(strings, [offered], len(prompt))(done, torch.zeros((1, len(tokenizer))))
    assert all(
        tokenizer.decode([i]).startswith('"') for i in torch.nonzero(closing[0] > float("-inf")).flatten()
    )
