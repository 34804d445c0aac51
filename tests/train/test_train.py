"""Tokenizer, chat template, tiny base model, SFT phases (incl. resume and LoRA) and the in-process backend.

Everything runs offline on CPU with a ~0.5M-parameter model trained for a handful of steps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl.chat_template_utils import has_generation_markers, qwen2_5_chat_template

from envgen.llm.compact import CompactView
from envgen.llm.hf_backend import HFChatBackend
from envgen.llm.toolcall_parse import arguments_as_objects
from tests.train.dialogues import TOOLS, dialogue_row
from train.base_sources import BaseSource
from train.chat_template import CHAT_TEMPLATE
from train.launch import accelerate_command, read_phase_result, run_phase_from_files
from train.model import TinyModelConfig, build_tiny_base, load_hf_base
from train.plots import loss_curve_png
from train.sft import (
    PhaseConfig,
    PhaseResult,
    _pad_batch,
    assistant_loss_sum,
    assistant_token_loss,
    tokenize_compact,
    tokenize_rows,
    train_phase,
)
from train.tokenizer import TOOL_TAG_TOKENS, train_tokenizer

FAST = {"per_device_train_batch_size": 4, "learning_rate": 3e-3, "logging_steps": 2, "save_steps": 100}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The tiny model gains nothing from intra-op threads, and on a shared 2-core machine two threads per
    process oversubscribe the CPU (observed: 5x slower); restore the setting for other test modules."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def rows() -> list[dict]:
    rng = random.Random(0)
    return [dialogue_row(rng, i) for i in range(24)]


@pytest.fixture(scope="session")
def corpus(rows: list[dict]) -> list[str]:
    return [json.dumps(t) for t in TOOLS] + [json.dumps(r["messages"]) for r in rows]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("base")
    return out, build_tiny_base(corpus, out, TinyModelConfig(), seed=0)


@pytest.fixture(scope="session")
def phase1(
    tmp_path_factory: pytest.TempPathFactory, tiny_base: tuple[Path, dict], rows: list[dict]
) -> PhaseResult:
    out = tmp_path_factory.mktemp("phase1")
    return train_phase(tiny_base[0], rows[:20], rows[20:], out, PhaseConfig(max_steps=12, **FAST))


def test_tokenizer_round_trips_and_keeps_tags(corpus: list[str]) -> None:
    tokenizer = train_tokenizer(corpus, vocab_size=512)
    text = 'Grüße aus Paris ✓ {"city": "Oslo"} \t\n end'
    assert tokenizer.decode(tokenizer.encode(text)) == text
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", *TOOL_TAG_TOKENS):
        assert len(tokenizer.encode(token)) == 1, token
    ids = tokenizer.encode("<tool_call>\n{}\n</tool_call><|im_end|>")
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<tool_call>\n{}\n</tool_call>"
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert train_tokenizer(corpus, vocab_size=512).get_vocab() == tokenizer.get_vocab()


def test_word_tokens_make_a_word_one_token_in_prose_names_and_arguments(corpus: list[str]) -> None:
    """With spaces as tokens, `weather` in the request is the token the call's name and argument use."""
    words = train_tokenizer([*corpus, "get the weather for get_weather with weather_city"] * 3, 512, True)
    glued = train_tokenizer([*corpus, "get the weather for get_weather with weather_city"] * 3, 512, False)
    request, name = "What is the weather in Oslo?", '{"name": "get_weather", "arguments": {}}'
    weather = words.convert_tokens_to_ids("weather")
    assert weather in words.encode(request) and weather in words.encode(name)
    assert not set(glued.encode(request)) & set(glued.encode(name)) - set(glued.encode('{"": "", : {}}'))
    text = 'Grüße aus Paris ✓ {"city": "Oslo"} \t\n  end'
    assert words.decode(words.encode(text)) == text
    assert len(words.encode(request)) > len(glued.encode(request))  # the price: more tokens


def test_chat_template_renders_tools_calls_and_results(corpus: list[str], rows: list[dict]) -> None:
    tokenizer = train_tokenizer(corpus, vocab_size=512)
    row = rows[2]
    text = tokenizer.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a helpful travel assistant.\n\n# Tools")
    assert "<tools>\n" + json.dumps(TOOLS[0]) in text and '"name": "convert_currency"' in text
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": ' in text
    assert "<|im_start|>user\n<tool_response>\n{" in text
    assert "<think>" not in text
    prompt = tokenizer.apply_chat_template(row["messages"][:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n") and "<tools>" not in prompt
    as_objects = tokenizer.apply_chat_template(
        arguments_as_objects(row["messages"]), tools=row["tools"], tokenize=False
    )
    assert as_objects == text


def test_consecutive_tool_results_share_one_user_turn(corpus: list[str]) -> None:
    tokenizer = train_tokenizer(corpus, vocab_size=512)
    messages = [
        {"role": "user", "content": "Two cities?"},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{}"},
        {"role": "tool", "tool_call_id": "call_2", "name": "get_weather", "content": "[]"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\n{}\n</tool_response>\n"
        "<tool_response>\n[]\n</tool_response><|im_end|>\n"
    )


def test_assistant_mask_covers_exactly_the_assistant_turns(corpus: list[str], rows: list[dict]) -> None:
    tokenizer = train_tokenizer(corpus, vocab_size=512)
    row = rows[0]
    city = json.loads(row["messages"][2]["tool_calls"][0]["function"]["arguments"])["city"]
    data = tokenize_rows(tokenizer, [row], max_length=4096)
    ids, mask = data.input_ids[0], data.assistant_masks[0]
    selected = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
    expected = (
        f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}\n</tool_call><|im_end|>'
        + row["messages"][4]["content"]
        + "<|im_end|>"
    )
    assert selected == expected
    unselected = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    assert "What is the weather" in unselected and "What is the weather" not in selected


def test_tokenize_rows_drops_and_counts(corpus: list[str], rows: list[dict]) -> None:
    tokenizer = train_tokenizer(corpus, vocab_size=512)
    no_assistant = {"messages": rows[0]["messages"][:2], "tools": []}
    data = tokenize_rows(tokenizer, [rows[0], no_assistant], max_length=40)
    assert (len(data.input_ids), data.dropped_too_long, data.dropped_no_assistant) == (0, 1, 1)


def test_tiny_base_is_a_loadable_hf_folder(tiny_base: tuple[Path, dict]) -> None:
    out, facts = tiny_base
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "qwen3"
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == facts["vocab_size"]
    assert facts["parameters"] == sum(p.numel() for p in model.parameters())
    assert tokenizer.chat_template == CHAT_TEMPLATE
    json.dumps(facts)


def test_load_hf_base_keeps_a_tool_template_and_refuses_an_unknown_one(
    tiny_base: tuple[Path, dict], tmp_path: Path
) -> None:
    facts = load_hf_base(BaseSource("folder", str(tiny_base[0])), tmp_path / "copy")
    assert facts["chat_template"] == "own"
    assert AutoTokenizer.from_pretrained(tmp_path / "copy").chat_template == CHAT_TEMPLATE
    unmarked = tmp_path / "unmarked"
    tokenizer = AutoTokenizer.from_pretrained(tiny_base[0])
    tokenizer.chat_template = "{% for m in messages %}{{ m.role }}: {{ m.content }}{{ tools }}\n{% endfor %}"
    tokenizer.save_pretrained(unmarked)
    with pytest.raises(ValueError, match="unmarked"):
        load_hf_base(BaseSource("folder", str(unmarked)), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_load_hf_base_gives_a_model_without_a_tool_template_the_projects(
    tiny_base: tuple[Path, dict], tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_base[0], plain)
    tokenizer = AutoTokenizer.from_pretrained(plain)
    tokenizer.chat_template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    tokenizer.save_pretrained(plain)
    facts = load_hf_base(BaseSource("folder", str(plain)), tmp_path / "templated")
    assert facts["chat_template"] == "project's, turns <|im_start|> ... <|im_end|>"
    assert AutoTokenizer.from_pretrained(tmp_path / "templated").chat_template == CHAT_TEMPLATE


def test_load_hf_base_patches_a_known_template(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    qwen_like = tmp_path / "qwen_like"
    shutil.copytree(tiny_base[0], qwen_like)
    tokenizer = AutoTokenizer.from_pretrained(qwen_like)
    tokenizer.chat_template = qwen2_5_chat_template
    tokenizer.save_pretrained(qwen_like)
    facts = load_hf_base(BaseSource("folder", str(qwen_like)), tmp_path / "patched")
    assert facts["chat_template"] == "own, generation markers added"
    patched = AutoTokenizer.from_pretrained(tmp_path / "patched")
    assert has_generation_markers(patched.chat_template)
    assert any(tokenize_rows(patched, rows[:1], max_length=4096).assistant_masks[0])


def test_the_assistant_only_loss_equals_the_models_own(
    tiny_base: tuple[Path, dict], rows: list[dict]
) -> None:
    """The training loss projects only assistant positions onto the vocabulary; the value must not change."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base[0])
    model = AutoModelForCausalLM.from_pretrained(tiny_base[0])
    data = tokenize_rows(tokenizer, rows[:3], max_length=4096)
    ids, attention, labels = _pad_batch(data, [0, 1, 2], tokenizer.pad_token_id, model.device)
    with torch.no_grad():
        total, count = assistant_loss_sum(model, ids, attention, labels)
        own = model(input_ids=ids, attention_mask=attention, labels=labels).loss
    assert count == int((labels[:, 1:] != -100).sum()) > 0
    assert torch.allclose(total / count, own, atol=1e-5), (total / count, own)


def test_train_phase_lowers_assistant_loss(
    phase1: PhaseResult, tiny_base: tuple[Path, dict], rows: list[dict]
) -> None:
    out = Path(phase1.out_dir)
    before = assistant_token_loss(tiny_base[0], rows[:20])
    after = assistant_token_loss(out, rows[:20])
    assert after < before - 0.5, (before, after)
    assert phase1.val_assistant_loss_after < phase1.val_assistant_loss_before
    assert phase1.global_step == 12 and phase1.train_loss_history[0][0] == 1
    assert 0 < phase1.assistant_tokens_seen < phase1.total_tokens_seen
    assert (phase1.num_train_rows, phase1.num_val_rows, phase1.rows_dropped_too_long) == (20, 4, 0)
    assert phase1.parameter_count == tiny_base[1]["parameters"]
    assert AutoModelForCausalLM.from_pretrained(out) is not None and AutoTokenizer.from_pretrained(out)
    json.dumps(phase1.to_dict())


def test_phase2_starts_from_phase1(
    phase1: PhaseResult, rows: list[dict], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="train.sft"):
        result = train_phase(Path(phase1.out_dir), rows[4:12], [], tmp_path, PhaseConfig(max_steps=3, **FAST))
    assert result.global_step == 3 and result.resumed_from is None
    assert result.val_assistant_loss_before is None and result.val_loss_history == []
    assert any("step 3/3" in r.getMessage() for r in caplog.records)
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.model_type == "qwen3"


def test_interrupted_phase_resumes_from_last_checkpoint(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    settings = {**FAST, "save_steps": 2}
    first = train_phase(tiny_base[0], rows[:16], [], tmp_path, PhaseConfig(max_steps=4, **settings))
    assert first.global_step == 4 and (tmp_path / "checkpoint-4").is_dir()
    second = train_phase(tiny_base[0], rows[:16], [], tmp_path, PhaseConfig(max_steps=6, **settings))
    assert second.resumed_from is not None and Path(second.resumed_from).name == "checkpoint-4"
    assert second.global_step == 6
    assert [s for s, _ in second.train_loss_history][:2] == [1, 2]
    # Tokens/s counts this call's steps only; the cumulative count (the ablation's budget) all six.
    assert first.cumulative_tokens_seen == first.total_tokens_seen > 0
    assert second.cumulative_tokens_seen == first.cumulative_tokens_seen + second.total_tokens_seen


def test_token_budget_decides_the_steps(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    """The vertical-only ablation's mechanism: a budget in tokens becomes optimizer steps."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base[0])
    mean_row = sum(map(len, tokenize_rows(tokenizer, rows[:16], 1024).input_ids)) / 16
    budget = round(5 * 4 * mean_row)  # five steps of batch 4
    cfg = PhaseConfig(token_budget=budget, num_train_epochs=100, **FAST)
    result = train_phase(tiny_base[0], rows[:16], [], tmp_path, cfg)
    assert result.global_step == 5
    assert abs(result.cumulative_tokens_seen - budget) / budget < 0.25
    with pytest.raises(ValueError, match="token_budget"):
        PhaseConfig(token_budget=-1)


def _sft_parquet(rows: list[dict], path: Path) -> Path:
    """Rows in the SFT set's on-disk form (JSON text columns and a split)."""
    pl.DataFrame(
        {
            "messages": [json.dumps(r["messages"]) for r in rows],
            "tools": [json.dumps(r["tools"]) for r in rows],
            "split": ["train"] * (len(rows) - 2) + ["validation"] * 2,
        }
    ).write_parquet(path)
    return path


def test_accelerate_launch_trains_a_phase_on_cpu(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    """The multi-GPU path's command, run for real with one CPU process: same trainer, same result file."""
    data = _sft_parquet(rows[:10], tmp_path / "sft.parquet")
    out = tmp_path / "phase"
    cfg = PhaseConfig(max_steps=2, **FAST)
    cmd = accelerate_command(tiny_base[0], data, out, cfg, max_validation_rows=1, num_processes=1, cpu=True)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = read_phase_result(out)
    assert result.global_step == 2 and result.num_train_rows == 8 and result.num_val_rows == 1
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "qwen3"
    multi = accelerate_command(tiny_base[0], data, out, cfg, 1, num_processes=8)
    assert (
        multi[multi.index("--num_processes") + 1] == "8" and "--multi_gpu" in multi and "--cpu" not in multi
    )
    with_config = accelerate_command(tiny_base[0], data, out, cfg, 1, 8, config_file="fsdp.yaml")
    assert "--config_file" in with_config and "--multi_gpu" not in with_config


def test_lora_phase_saves_merged_model(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    result = train_phase(
        tiny_base[0], rows[:8], [], tmp_path, PhaseConfig(max_steps=2, use_lora=True, lora_r=4, **FAST)
    )
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert result.parameter_count == tiny_base[1]["parameters"]


def test_too_long_rows_are_reported_or_refused(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no trainable row"):
        train_phase(tiny_base[0], rows[:4], [], tmp_path, PhaseConfig(max_steps=1, max_length=16, **FAST))


def test_hf_backend_returns_well_formed_messages(phase1: PhaseResult, rows: list[dict]) -> None:
    backend = HFChatBackend(phase1.out_dir, max_new_tokens=48)
    assert backend.name == f"hf:{Path(phase1.out_dir).name}"

    async def both() -> list[dict]:
        return await asyncio.gather(
            backend.complete(rows[0]["messages"][:2], TOOLS),
            backend.complete(rows[1]["messages"][:4], TOOLS, temperature=0.7, max_tokens=16),
        )

    for message in asyncio.run(both()):
        assert message["role"] == "assistant" and isinstance(message["content"], str)
        for call in message.get("tool_calls", []):
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert backend.usage.requests == 2 and backend.usage.prompt_tokens > 0
    assert backend.usage.completion_tokens <= 48 + 16


def test_loss_curve_png(phase1: PhaseResult, tmp_path: Path) -> None:
    path = loss_curve_png(
        {"phase1/train": phase1.train_loss_history, "phase1/val": phase1.val_loss_history, "empty": []},
        tmp_path / "plots" / "loss.png",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_killed_midway_resumes_from_its_last_checkpoint(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    """SIGKILL the phase process after its second checkpoint; the re-run continues from the newest one."""
    data = _sft_parquet(rows[:18], tmp_path / "sft.parquet")
    out = tmp_path / "phase"
    cfg = PhaseConfig(max_steps=40, **{**FAST, "save_steps": 2})
    args = ["--init", str(tiny_base[0]), "--data", str(data), "--out", str(out)]
    child = subprocess.Popen(
        [sys.executable, "-m", "train.launch", *args, "--config", json.dumps(asdict(cfg))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (out / "checkpoint-4" / "trainer_state.json").exists():
        time.sleep(0.1)
    time.sleep(0.5)  # let checkpoint-4 finish writing
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (out / "phase_result.json").exists(), "killed before it finished"
    saved = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert saved and saved[-1] < 40
    result = run_phase_from_files(tiny_base[0], data, out, cfg, max_validation_rows=-1)
    assert result.resumed_from is not None and int(result.resumed_from.rsplit("-", 1)[1]) >= saved[-1] - 2
    assert result.global_step == 40
    steps = [s for s, _ in result.train_loss_history]
    assert steps == sorted(set(steps))  # no step logged twice


def test_compact_examples_mask_every_turn_or_only_the_last(corpus: list[str], rows: list[dict]) -> None:
    tokenizer = train_tokenizer(corpus, vocab_size=512)
    row = rows[0]
    whole, stats, available = tokenize_compact(tokenizer, [row], CompactView(window=0), max_length=4096)
    assert available == 1 and len(whole.input_ids) == 1 and stats["conversations"] == 1
    text = tokenizer.decode(whole.input_ids[0])
    assert "Tools:\nget_weather(" in text and '"type": "function"' not in text  # signatures, not JSON
    selected = tokenizer.decode(
        [t for t, m in zip(whole.input_ids[0], whole.assistant_masks[0], strict=True) if m]
    )
    assert selected.count("<|im_end|>") == 2  # both assistant turns are trained on
    per_turn, _, available = tokenize_compact(tokenizer, [row], CompactView(window=2), max_length=4096)
    assert available == 2 and len(per_turn.input_ids) == 2
    last = tokenizer.decode(
        [t for t, m in zip(per_turn.input_ids[1], per_turn.assistant_masks[1], strict=True) if m]
    )
    assert last == row["messages"][4]["content"] + "<|im_end|>"  # only the turn after the window
    sampled, _, available = tokenize_compact(tokenizer, rows[:6], CompactView(window=2), 4096, max_examples=3)
    assert available == 12 and len(sampled.input_ids) == 3


def test_compact_phase_saves_its_view_and_the_backend_decodes_in_it(
    tiny_base: tuple[Path, dict], rows: list[dict], tmp_path: Path
) -> None:
    cfg = PhaseConfig(max_steps=2, compact=True, **{**FAST, "per_device_train_batch_size": 2})
    result = train_phase(tiny_base[0], rows[:8], rows[8:10], tmp_path / "compact", cfg)
    assert CompactView.load(tmp_path / "compact") == CompactView()
    assert result.compact["examples_used"] == 8 and result.compact["conversations"] == 8
    backend = HFChatBackend(tmp_path / "compact", max_new_tokens=16)
    replies = backend.greedy_batch([(rows[0]["messages"][:2], TOOLS), (rows[1]["messages"][:4], TOOLS)])
    assert len(replies) == 2 and all(r["role"] == "assistant" for r in replies)
    assert assistant_token_loss(tmp_path / "compact", rows[:4]) > 0
