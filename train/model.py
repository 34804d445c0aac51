"""Base models for SFT: a tiny from-scratch Qwen3 (offline, CPU-friendly) or a real Hugging Face checkpoint.

Both functions write a plain Hugging Face folder (model + tokenizer with a chat template carrying
``{% generation %}`` markers), which is the only thing :func:`train.sft.train_phase` and
:class:`envgen.llm.hf_backend.HFChatBackend` consume. That keeps the pipeline identical whether it runs
on the tiny model in CI or on a real model on a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen3Config,
    Qwen3ForCausalLM,
)
from trl.chat_template_utils import get_training_chat_template, has_generation_markers

from envgen.llm.turn_markers import QWEN_MARKERS, markers_for
from train.base_sources import BaseModelError, BaseSource, check_memory, gguf_facts
from train.chat_template import chat_template
from train.tokenizer import train_tokenizer

logger = logging.getLogger(__name__)


class ModelShape(BaseModel):
    """The from-scratch model's shape as a user sets it; the training settings resource inherits these
    fields, so its config keys and defaults are declared here once. Default: 4.2M parameters (hidden 256,
    4 layers), a shape that learns tool selection within minutes on 2 CPU cores (docs/learning.md)."""

    hidden_size: int = Field(default=256, ge=1)
    num_hidden_layers: int = Field(default=4, ge=1)
    num_attention_heads: int = Field(default=4, ge=1)
    num_key_value_heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=768, ge=1)
    vocab_size: int = Field(default=4096, ge=1)
    # Spaces as tokens of their own, so a word is one token in prose, tool names and arguments alike
    # (train.tokenizer.train_tokenizer).
    word_tokens: bool = True


class TinyModelConfig(ModelShape):
    """A shape plus the context it is built for."""

    model_config = ConfigDict(frozen=True)

    max_position_embeddings: int = Field(default=2048, ge=8)


DEFAULT_CONFIG = TinyModelConfig()

# The smallest shape that still trains and generates: for tests and smoke runs, where only the plumbing
# around the model is under test.
SMOKE_TEST_CONFIG = TinyModelConfig(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    intermediate_size=64,
    vocab_size=600,
)


def build_tiny_base(
    texts: Iterable[str], out_dir: Path, cfg: TinyModelConfig = DEFAULT_CONFIG, seed: int = 0
) -> dict[str, Any]:
    """Train a tokenizer on ``texts``, initialise a seeded random Qwen3 and save both to ``out_dir``.

    The embedding size is the tokenizer's actual length (the BPE may stop below ``cfg.vocab_size`` on a small
    corpus). Embeddings are tied to keep the parameter count, and so CPU time, low. Returns JSON-able facts.
    """
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size=cfg.vocab_size, word_tokens=cfg.word_tokens)
    tokenizer.model_max_length = cfg.max_position_embeddings
    model_config = _qwen3_config(cfg, tokenizer)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(model_config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    _save(model, tokenizer, out_dir)
    facts = _facts(model, tokenizer)
    facts.update({"tiny_config": cfg.model_dump(), "seed": seed, "out_dir": str(out_dir)})
    logger.info("tiny base: %d parameters, vocab %d -> %s", facts["parameters"], facts["vocab_size"], out_dir)
    return facts


def _qwen3_config(cfg: TinyModelConfig, tokenizer: PreTrainedTokenizerBase) -> Qwen3Config:
    """Map the tiny shape onto a Qwen3 config wired to the tokenizer's eos/pad ids."""
    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        head_dim=cfg.hidden_size // cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )


def load_hf_base(source: BaseSource, out_dir: Path) -> dict[str, Any]:
    """Write a real causal LM into ``out_dir`` as a plain Hugging Face folder (float32 safetensors,
    tokenizer, a chat template that marks assistant turns for the loss), whatever ``source`` is.

    A GGUF is checked before anything is loaded (the `gguf` reader present, the architecture one
    transformers reads, the memory it needs), dequantised once, and copied into a plain model of the same
    config: a GGUF-loaded model keeps its quantiser and refuses to be saved. Its template: see
    :func:`install_chat_template`. Downloads happen only if ``source`` is a Hub id.
    """
    out_dir = Path(out_dir)
    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    if source.gguf_file:
        facts = gguf_facts(source.path)
        readable = gguf_architectures()
        if facts["architecture"].replace("_", "") not in readable:
            raise BaseModelError(
                f"{source.path}: architecture {facts['architecture']!r} cannot be read from GGUF by "
                f"transformers (it reads {', '.join(sorted(readable))}); convert the checkpoint to a "
                "Hugging Face folder and name the folder instead"
            )
        check_memory(str(source.path), facts["parameters"])
    tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch.float32, **kwargs)
    if source.gguf_file:
        model = _dequantised_copy(model)
    template = install_chat_template(tokenizer, model, str(source.path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _save(model, tokenizer, out_dir)
    facts = _facts(model, tokenizer)
    facts.update({"chat_template": template, "out_dir": str(out_dir), **source.as_metadata()})
    return facts


def gguf_architectures() -> set[str]:
    """The GGUF architectures this transformers version dequantises (its own table; names without `_`)."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return {name.replace("_", "") for name in GGUF_CONFIG_MAPPING} - {"general", "tokenizer"}


def _dequantised_copy(model: PreTrainedModel) -> PreTrainedModel:
    """The same weights in a model without the GGUF quantiser attached, so that it can be saved."""
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.generation_config = model.generation_config
    return plain


def install_chat_template(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, model_name: str) -> str:
    """Give ``tokenizer`` a template that renders tools and marks assistant turns; say which it got.

    A template that already renders tools keeps its layout (a Qwen3 keeps its own), given generation
    markers when it lacks them (:func:`_ensure_generation_markers`). A model with no template, or one
    without tools (a base checkpoint), gets the project's (:mod:`train.chat_template`) with its own turn
    tokens when its vocabulary has them, else with Qwen's added as special tokens (and the embeddings grown).
    """
    if tokenizer.chat_template and "tools" in tokenizer.chat_template:
        patched = _ensure_generation_markers(tokenizer, model_name)
        return "own, generation markers added" if patched else "own"
    markers = markers_for(tokenizer)
    if markers is None:
        markers = QWEN_MARKERS
        tokenizer.add_special_tokens({"additional_special_tokens": [markers.start, markers.end]})
        model.resize_token_embeddings(len(tokenizer))
    tokenizer.chat_template = chat_template(markers)
    return f"project's, turns {markers.start} ... {markers.end}"


def _ensure_generation_markers(tokenizer: PreTrainedTokenizerBase, model_name: str) -> bool:
    """Give ``tokenizer`` a template with generation markers; return whether it had to be replaced."""
    template = tokenizer.chat_template
    if not template:
        raise ValueError(
            f"{model_name}: the tokenizer has no chat template, so assistant turns cannot be masked"
        )
    if has_generation_markers(template):
        return False
    try:
        training_template = get_training_chat_template(tokenizer)
    except ValueError as exc:
        raise ValueError(
            f"{model_name}: its chat template has no {{% generation %}} markers and TRL knows no training "
            "variant for it; add the markers around the assistant turn (content, tool calls and end-of-turn "
            "token) by hand"
        ) from exc
    if training_template is None:
        return False
    tokenizer.chat_template = training_template
    return True


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    """Write the model and tokenizer side by side, as ``from_pretrained`` expects."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _facts(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """Facts worth recording as asset metadata."""
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "model_type": model.config.model_type,
        "model_config": model.config.to_diff_dict(),
    }
