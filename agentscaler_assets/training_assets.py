"""Group `training`: the base model, phase 1 (general domains), phase 2 (vertical, from phase 1) and the
vertical-only ablation (vertical, from the base, same token budget)."""

import hashlib
import json
import logging
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import polars as pl
import torch
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from agentscaler_assets.artefacts import Artefact
from agentscaler_assets.catalog_assets import api_catalog
from agentscaler_assets.experience_assets import sft_phase1_dataset, sft_phase2_dataset
from agentscaler_assets.resources import StorageRoot, TrainingSettings
from agentscaler_assets.tables import markdown_table, png_markdown
from agentscaler_assets.versions import code_version, content_version
from train.base_sources import resolve_base
from train.launch import accelerate_command, phase_rows, read_phase_result, run_phase_from_files
from train.model import ModelShape, TinyModelConfig, build_tiny_base, load_hf_base
from train.plots import loss_curve_png
from train.sft import PhaseConfig, PhaseResult, assistant_token_loss, compact_view


def _corpus(storage: StorageRoot) -> list[str]:
    """Text the tokenizer learns from: the catalog and every SFT conversation (contents, calls, tools)."""
    catalog = pl.read_parquet(storage.artefact(Artefact.CATALOG))
    texts = [
        f"{n}\n{d}\n{p}\n{r}"
        for n, d, p, r in catalog.select("name", "description", "parameters", "returns").iter_rows()
    ]
    for sft_set in (Artefact.SFT_PHASE1, Artefact.SFT_PHASE2):
        frame = pl.read_parquet(storage.artefact(sft_set))
        texts += frame["messages"].to_list() + frame["tools"].unique().to_list()
    return texts


TRAINING_CODE = code_version(__name__, "train", "envgen.llm")


def model_version(*folders: Path) -> DataVersion:
    """A model folder's data version: its weights, config and tokenizer, not its checkpoints or run records
    (a re-evaluation that rewrites the wall time leaves the version, and what was trained from it, alone)."""
    return content_version(
        *folders,
        skip=lambda rel: rel.name in RUN_RECORDS or any(p.startswith("checkpoint-") for p in rel.parts),
    )


@asset(
    group_name="training",
    deps=[api_catalog, sft_phase1_dataset, sft_phase2_dataset],
    code_version=TRAINING_CODE,
)
def base_model(
    context: AssetExecutionContext, storage: StorageRoot, training: TrainingSettings
) -> MaterializeResult:
    """A tiny from-scratch Qwen3 with a locally trained tokenizer, or the configured real model (a Hugging
    Face id, a folder, a GGUF file or an installed GGUF package: train.base_sources) as a plain Hugging Face
    folder. The new folder is built beside the old one and replaces it only when complete, so a model that
    cannot be used (bad hash, unreadable architecture, too large) leaves the last base in place."""
    out = storage.artefact(Artefact.MODELS, "base")
    building = out.with_name("base.building")
    shutil.rmtree(building, ignore_errors=True)
    provenance: dict = {"source": "tiny from-scratch Qwen3"}
    if training.base_model:
        source = resolve_base(
            training.base_model, storage.artefact(Artefact.BASE_SOURCES), training.base_model_sha256
        )
        provenance = source.as_metadata()
        context.log.info(f"base model from {source.path} ({source.kind})")
        facts = load_hf_base(source, building)
    else:
        shape = training.model_dump(include=set(ModelShape.model_fields))
        cfg = TinyModelConfig(**shape, max_position_embeddings=max(2048, training.max_length))
        facts = build_tiny_base(_corpus(storage), building, cfg, seed=training.seed)
    if training.compact:  # the base is scored in the view its phases train in, like them
        compact_view(phase_config(training, 1)).save(building)
    shutil.rmtree(out, ignore_errors=True)
    building.rename(out)
    facts["out_dir"] = str(out)
    context.log.info(f"base model at {out}: {facts.get('parameters')} parameters")
    return MaterializeResult(
        data_version=model_version(out),
        metadata={
            "path": MetadataValue.path(str(out)),
            **{k: v for k, v in provenance.items() if isinstance(v, str | bool | int)},
            "parameters": int(facts.get("parameters", 0)),
            "vocab_size": int(facts.get("vocab_size", 0)),
            "chat_template": str(facts.get("chat_template", "project's")),
            "facts": MetadataValue.json(json.loads(json.dumps(facts, default=str))),
        },
    )


def phase_config(training: TrainingSettings, phase: int, token_budget: int = 0) -> PhaseConfig:
    """Phase 1's recipe (also the vertical-only ablation's, which starts from the base too) or phase 2's:
    the settings PhaseConfig shares by name, plus the phase's own learning rate, epochs and step cap."""
    shared = {
        f.name: getattr(training, f.name)
        for f in fields(PhaseConfig)
        if f.name in type(training).model_fields
    }
    return PhaseConfig(
        **shared,
        learning_rate=getattr(training, f"phase{phase}_learning_rate"),
        num_train_epochs=getattr(training, f"phase{phase}_epochs"),
        max_steps=getattr(training, f"phase{phase}_max_steps"),
        token_budget=token_budget,
    )


# What a training run writes beside the model: its record, not what the next phase starts from. A re-run that
# only re-evaluates a finished phase rewrites these (wall time, plot), which must not make the phases
# trained from it start again.
RUN_RECORDS = {
    "phase_result.json",
    "loss_curve.png",
    "inputs.sha1",
    "README.md",
    "rl_result.json",
    "reward_curve.png",
    "episodes.jsonl",
}


def _fresh_out_dir(out: Path, inputs: list[Path], cfg: PhaseConfig) -> None:
    """Keep `out` (and its checkpoints, for resuming) only if it was trained on the same inputs and recipe:
    the same data file and the same starting model (weights, config, tokenizer; not its run records)."""
    recipe = json.dumps(cfg.__dict__, sort_keys=True, default=str)
    digest = hashlib.sha1((recipe + model_version(*inputs).value).encode()).hexdigest()
    stamp = out / "inputs.sha1"
    if stamp.exists() and stamp.read_text() == digest:
        return
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stamp.write_text(digest)


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


def _run_phase(
    context: AssetExecutionContext,
    training: TrainingSettings,
    init: Path,
    sft_path: Path,
    out: Path,
    cfg: PhaseConfig,
    max_validation_rows: int,
) -> PhaseResult:
    """Train in this process, or through `accelerate launch` (multi-GPU) when the settings say so."""
    if training.launcher == "inprocess":
        with forward_logs("train", context):
            return run_phase_from_files(init, sft_path, out, cfg, max_validation_rows)
    if training.launcher != "accelerate":
        raise ValueError(f"unknown launcher {training.launcher!r} (inprocess | accelerate)")
    cmd = accelerate_command(
        init,
        sft_path,
        out,
        cfg,
        max_validation_rows,
        num_processes=training.num_processes or max(1, torch.cuda.device_count()),
        config_file=training.accelerate_config_file,
        cpu=not torch.cuda.is_available(),
    )
    context.log.info("launching: " + " ".join(shlex.quote(c) for c in cmd))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout or []:
            context.log.info(line.rstrip())
    if proc.returncode:
        raise RuntimeError(f"accelerate launch exited with {proc.returncode}; the run log has its output")
    return read_phase_result(out)


def train_model(
    context: AssetExecutionContext,
    training: TrainingSettings,
    init: Path,
    sft_path: Path,
    out: Path,
    cfg: PhaseConfig,
    max_validation_rows: int | None = None,
) -> tuple[PhaseResult, dict]:
    """Train the model folder `out` from `init` on an SFT set (resuming when `out` holds checkpoints of the
    same inputs and recipe); returns its result and metadata. `max_validation_rows` defaults to the
    training settings'."""
    _fresh_out_dir(out, [init, sft_path], cfg)
    context.log.info(f"{out.name}: training from {init} on {sft_path.name}")
    rows = training.max_validation_rows if max_validation_rows is None else max_validation_rows
    result = _run_phase(context, training, init, sft_path, out, cfg, rows)
    plot = loss_curve_png(
        {f"{out.name}/train": result.train_loss_history, f"{out.name}/validation": result.val_loss_history},
        out / "loss_curve.png",
    )
    metadata = {
        "path": MetadataValue.path(str(out)),
        "initialised_from": MetadataValue.path(str(init)),
        "parameters": result.parameter_count,
        "train_rows": result.num_train_rows,
        "validation_rows": result.num_val_rows,
        "rows_dropped_too_long": result.rows_dropped_too_long,
        "compact_view": MetadataValue.json(result.compact) if result.compact else "off",
        "steps": result.global_step,
        "tokens_seen": result.cumulative_tokens_seen,
        "assistant_tokens_seen": result.assistant_tokens_seen,
        "wall_seconds": round(result.wall_seconds, 1),
        "tokens_per_second": round(result.tokens_per_second, 1),
        "val_assistant_loss_before": result.val_assistant_loss_before,
        "val_assistant_loss_after": result.val_assistant_loss_after,
        "final_train_loss": result.train_loss_history[-1][1] if result.train_loss_history else None,
        "launcher": training.launcher,
        "loss_curve": MetadataValue.md(png_markdown(plot, "loss curve")),
    }
    return result, metadata


def phase_asset(
    phase: int, init: str, dataset: AssetsDefinition, sft_set: Artefact, upstream: AssetsDefinition, what: str
) -> AssetsDefinition:
    """The asset `phase<phase>_model`: trains models/phase<phase> from models/<init> on `sft_set`."""

    @asset(
        name=f"phase{phase}_model",
        group_name="training",
        deps=[upstream, dataset],
        description=what,
        code_version=TRAINING_CODE,
    )
    def _phase(
        context: AssetExecutionContext, storage: StorageRoot, training: TrainingSettings
    ) -> MaterializeResult:
        models = storage.artefact(Artefact.MODELS)
        cfg = phase_config(training, phase)
        out = models / f"phase{phase}"
        _, metadata = train_model(context, training, models / init, storage.artefact(sft_set), out, cfg)
        return MaterializeResult(data_version=model_version(out), metadata=metadata)

    return _phase


phase1_model = phase_asset(
    1,
    "base",
    sft_phase1_dataset,
    Artefact.SFT_PHASE1,
    base_model,
    "Phase 1: general function calling, trained on the general domains' SFT set (assistant tokens only).",
)
phase2_model = phase_asset(
    2,
    "phase1",
    sft_phase2_dataset,
    Artefact.SFT_PHASE2,
    phase1_model,
    "Phase 2: continues from phase 1's weights on the vertical domains' SFT set.",
)


@asset(
    group_name="training",
    deps=[base_model, sft_phase1_dataset, sft_phase2_dataset, phase2_model],
    code_version=TRAINING_CODE,
)
def vertical_only_model(
    context: AssetExecutionContext, storage: StorageRoot, training: TrainingSettings
) -> MaterializeResult:
    """The paper's ablation: the base trained on the vertical set alone, with phase 1 + phase 2's token
    budget, so any difference to phase 2 comes from the general phase and not from more training.

    Its metadata compares the assistant-token validation loss of base, phase 1, phase 2 and this model on
    both validation sets (general and vertical); `benchmark_scores` compares their task success.
    """
    models = storage.artefact(Artefact.MODELS)
    phases = {p: read_phase_result(models / p) for p in ("phase1", "phase2")}
    budget = sum(r.cumulative_tokens_seen for r in phases.values())
    cfg = phase_config(training, 1, token_budget=budget)
    data = storage.artefact(Artefact.SFT_PHASE2)
    result, metadata = train_model(context, training, models / "base", data, models / "vertical_only", cfg)
    table = validation_loss_table(storage, training, {**phases, "vertical_only": result})
    storage.artefact(Artefact.VALIDATION_LOSSES).write_text(json.dumps(table, indent=1))
    return MaterializeResult(
        data_version=model_version(models / "vertical_only", storage.artefact(Artefact.VALIDATION_LOSSES)),
        metadata={
            **metadata,
            "token_budget": budget,
            "budget_used": round(result.cumulative_tokens_seen / max(1, budget), 3),
            "validation_losses": MetadataValue.md(markdown_table(pl.DataFrame(table))),
        },
    )


def validation_loss_table(
    storage: StorageRoot, training: TrainingSettings, results: dict[str, PhaseResult]
) -> list[dict]:
    """Assistant-token loss of each model on the general (phase-1) and vertical (phase-2) validation rows.

    Six of the eight numbers are the phases' own before/after losses; only phase 2 and vertical-only on
    the general rows (forgetting) are computed here, on the same capped rows the phases used.
    """
    p1, p2, vo = results["phase1"], results["phase2"], results["vertical_only"]
    general = phase_rows(storage.artefact(Artefact.SFT_PHASE1), training.max_validation_rows)[1]
    models = storage.artefact(Artefact.MODELS)

    def on_general(name: str) -> float | None:
        return assistant_token_loss(models / name, general, training.max_length) if general else None

    losses = {
        "base": (p1.val_assistant_loss_before, vo.val_assistant_loss_before),
        "phase1": (p1.val_assistant_loss_after, p2.val_assistant_loss_before),
        "phase2": (on_general("phase2"), p2.val_assistant_loss_after),
        "vertical_only": (on_general("vertical_only"), vo.val_assistant_loss_after),
    }
    return [
        {
            "model": name,
            "general_val_loss": None if g is None else round(g, 4),
            "vertical_val_loss": None if v is None else round(v, 4),
        }
        for name, (g, v) in losses.items()
    ]
