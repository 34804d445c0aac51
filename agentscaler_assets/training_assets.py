"""Group `training`: the base model, phase 1 (general domains) and phase 2 (vertical, from phase 1)."""

import base64
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from agentscaler_assets.catalog_assets import api_catalog
from agentscaler_assets.experience_assets import sft_phase1_dataset, sft_phase2_dataset
from agentscaler_assets.resources import StorageRoot, TrainingSettings
from envgen.sft import load_rows
from train.model import TinyModelConfig, build_tiny_base, load_hf_base
from train.plots import loss_curve_png
from train.sft import PhaseConfig, PhaseResult, train_phase


def _corpus(storage: StorageRoot) -> list[str]:
    """Text the tokenizer learns from: the catalog and every SFT conversation (contents, calls, tools)."""
    catalog = pl.read_parquet(storage.path("catalog", "api_catalog.parquet"))
    texts = [
        f"{n}\n{d}\n{p}\n{r}"
        for n, d, p, r in catalog.select("name", "description", "parameters", "returns").iter_rows()
    ]
    for name in ("sft_phase1", "sft_phase2"):
        frame = pl.read_parquet(storage.path("sft", f"{name}.parquet"))
        texts += frame["messages"].to_list() + frame["tools"].unique().to_list()
    return texts


@asset(group_name="training", deps=[api_catalog, sft_phase1_dataset, sft_phase2_dataset])
def base_model(
    context: AssetExecutionContext, storage: StorageRoot, training: TrainingSettings
) -> MaterializeResult:
    """A tiny from-scratch Qwen3 with a locally trained tokenizer, or the configured Hugging Face model."""
    out = storage.path("models", "base")
    shutil.rmtree(out, ignore_errors=True)
    if training.base_model:
        facts = load_hf_base(training.base_model, out)
    else:
        cfg = TinyModelConfig(
            hidden_size=training.hidden_size,
            num_hidden_layers=training.num_hidden_layers,
            num_attention_heads=training.num_attention_heads,
            num_key_value_heads=training.num_key_value_heads,
            intermediate_size=training.intermediate_size,
            vocab_size=training.vocab_size,
            max_position_embeddings=max(2048, training.max_length),
        )
        facts = build_tiny_base(_corpus(storage), out, cfg, seed=training.seed)
    context.log.info(f"base model at {out}: {facts.get('parameters')} parameters")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "source": training.base_model or "tiny from-scratch Qwen3",
            "parameters": int(facts.get("parameters", 0)),
            "vocab_size": int(facts.get("vocab_size", 0)),
            "facts": MetadataValue.json(json.loads(json.dumps(facts, default=str))),
        }
    )


def _phase_config(training: TrainingSettings, phase: int) -> PhaseConfig:
    return PhaseConfig(
        learning_rate=training.phase1_learning_rate if phase == 1 else training.phase2_learning_rate,
        num_train_epochs=training.phase1_epochs if phase == 1 else training.phase2_epochs,
        max_steps=training.phase1_max_steps if phase == 1 else training.phase2_max_steps,
        per_device_train_batch_size=training.per_device_train_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        max_length=training.max_length,
        seed=training.seed,
        packing=training.packing,
        use_lora=training.use_lora,
    )


def _fresh_out_dir(out: Path, inputs: list[Path], cfg: PhaseConfig) -> None:
    """Keep `out` (and its checkpoints, for resuming) only if it was trained on the same inputs and recipe."""
    h = hashlib.sha1(json.dumps(cfg.__dict__, sort_keys=True, default=str).encode())
    for p in inputs:
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file() and "checkpoint-" not in str(f):
                h.update(f.name.encode() + f.read_bytes())
    stamp = out / "inputs.sha1"
    if stamp.exists() and stamp.read_text() == h.hexdigest():
        return
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stamp.write_text(h.hexdigest())


@contextmanager
def forward_logs(logger_name: str, context: AssetExecutionContext) -> Iterator[None]:
    """Show a library's log lines (training progress) in the Dagster run log while the block runs."""

    class ToDagster(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            context.log.info(self.format(record))

    handler, logger = ToDagster(), logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _png_markdown(path: Path) -> str:
    return f"![loss curve](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


def _train(
    context: AssetExecutionContext,
    storage: StorageRoot,
    training: TrainingSettings,
    phase: int,
    init: Path,
    data: str,
) -> MaterializeResult:
    sft_path = storage.path("sft", f"{data}.parquet")
    out = storage.path("models", f"phase{phase}")
    cfg = _phase_config(training, phase)
    _fresh_out_dir(out, [init, sft_path], cfg)
    train_rows, val_rows = load_rows(sft_path, "train"), load_rows(sft_path, "validation")
    cap = training.max_validation_rows
    if 0 <= cap < len(val_rows):
        val_rows = [val_rows[i * len(val_rows) // cap] for i in range(cap)]  # evenly spread: every domain
    context.log.info(f"phase {phase}: {len(train_rows)} train / {len(val_rows)} validation rows from {data}")
    with forward_logs("train", context):
        result: PhaseResult = train_phase(init, train_rows, val_rows, out, cfg)
    plot = loss_curve_png(
        {
            f"phase{phase}/train": result.train_loss_history,
            f"phase{phase}/validation": result.val_loss_history,
        },
        out / "loss_curve.png",
    )
    (out / "phase_result.json").write_text(json.dumps(result.to_dict(), indent=1, default=str))
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "initialised_from": MetadataValue.path(str(init)),
            "parameters": result.parameter_count,
            "train_rows": result.num_train_rows,
            "validation_rows": result.num_val_rows,
            "rows_dropped_too_long": result.rows_dropped_too_long,
            "steps": result.global_step,
            "tokens_seen": result.total_tokens_seen,
            "assistant_tokens_seen": result.assistant_tokens_seen,
            "wall_seconds": round(result.wall_seconds, 1),
            "tokens_per_second": round(result.tokens_per_second, 1),
            "val_assistant_loss_before": result.val_assistant_loss_before,
            "val_assistant_loss_after": result.val_assistant_loss_after,
            "final_train_loss": result.train_loss_history[-1][1] if result.train_loss_history else None,
            "loss_curve": MetadataValue.md(_png_markdown(plot)),
        }
    )


@asset(group_name="training", deps=[base_model, sft_phase1_dataset])
def phase1_model(
    context: AssetExecutionContext, storage: StorageRoot, training: TrainingSettings
) -> MaterializeResult:
    """Phase 1: general function calling, trained on the general domains' SFT set (assistant tokens only)."""
    return _train(context, storage, training, 1, storage.path("models", "base"), "sft_phase1")


@asset(group_name="training", deps=[phase1_model, sft_phase2_dataset])
def phase2_model(
    context: AssetExecutionContext, storage: StorageRoot, training: TrainingSettings
) -> MaterializeResult:
    """Phase 2: continues from phase 1's weights on the vertical domains' SFT set."""
    return _train(context, storage, training, 2, storage.path("models", "phase1"), "sft_phase2")
