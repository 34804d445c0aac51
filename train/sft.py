"""One SFT phase (AgentScaler trains two: general tool use, then domain-specific) with TRL's ``SFTTrainer``.

Design decisions, and why:

* **Pre-tokenised data.** Rows carry per-row ``tools`` JSON schemas that differ from row to row; Arrow cannot
  store such heterogeneous nested dicts. So rows are rendered here with the tokenizer's chat template
  (``return_assistant_tokens_mask=True``) into a ``datasets.Dataset`` with the columns ``input_ids`` and
  ``assistant_masks``. TRL recognises a dataset with ``input_ids`` as already processed and turns
  ``assistant_masks`` into ``labels`` (-100 outside assistant turns), which gives assistant-only loss.
  ``SFTConfig.assistant_only_loss`` must then stay ``False``: TRL rejects it for non-conversational datasets,
  and the mask column already does its job.
* **Over-long rows are dropped, not truncated.** A truncated trajectory loses its final answer (and often
  the end-of-turn token), teaching the model to stop mid-conversation. Drops are counted in
  :class:`PhaseResult` and logged.
* **Resumable.** Checkpoints go to ``out_dir/checkpoint-N`` (with optimizer and scheduler state); a new call
  with the same ``out_dir`` resumes from the newest one. The final model is saved at the top of ``out_dir``
  (LoRA merged) so the next phase or :class:`envgen.llm.hf_backend.HFChatBackend` can load it.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from envgen.llm.compact import CompactView, compact_messages, token_counter
from envgen.llm.toolcall_parse import arguments_as_objects

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass
class PhaseConfig:
    """Hyper-parameters of one phase; defaults suit the tiny model on 2 CPU cores (a few hundred short rows
    in about a minute). For a real model on a GPU lower ``learning_rate`` (e.g. 2e-5, or 2e-4 with LoRA)."""

    learning_rate: float = 1e-3
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    warmup_ratio: float = 0.05
    lr_scheduler_type: str = "cosine"
    seed: int = 0
    packing: bool = False
    use_lora: bool = False
    bf16: bool | Literal["auto"] = "auto"
    logging_steps: int = 5
    save_steps: int = 50
    max_steps: int = -1
    eval_steps: int | None = None  # None: evaluate whenever a checkpoint is saved
    per_device_eval_batch_size: int = 8
    lora_r: int = 16
    lora_alpha: int = 32
    # peft's `target_modules`: "all-linear", or module names separated by commas ("q_proj,k_proj,v_proj").
    lora_target_modules: str = "all-linear"
    gradient_checkpointing: bool = False
    # Train on the compact view (envgen.llm.compact) rather than on whole conversations with JSON tool
    # schemas; `max_examples` caps the examples used (seeded sample, 0 = all).
    compact: bool = False
    compact_window: int = 0
    compact_tool_budget: int = 320
    max_examples: int = 0
    # Training tokens (non-padding) to spend, 0 = off. When set it decides ``max_steps`` from the mean
    # tokens per optimizer step of this phase's data, so an ablation can match another run's budget.
    token_budget: int = 0

    def __post_init__(self) -> None:
        """Reject values whose meaning would change silently downstream (``warmup_steps`` >= 1 is steps)."""
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_length < 8:
            raise ValueError(f"max_length is too small: {self.max_length}")
        if self.token_budget < 0:
            raise ValueError(f"token_budget must be >= 0 (0 = off), got {self.token_budget}")


@dataclass
class PhaseResult:
    """What a phase did, for asset metadata, plots and the report.

    ``total_tokens_seen``, ``assistant_tokens_seen`` and ``wall_seconds`` cover the training loop of this
    call only (after a resume, the steps done before the interruption are not re-counted), so tokens/s is
    honest; ``cumulative_tokens_seen`` and the loss histories come from the trainer state and so include
    them. Token counts are summed over all processes of a multi-GPU run.
    """

    out_dir: str
    train_loss_history: list[tuple[int, float]]
    val_loss_history: list[tuple[int, float]]
    val_assistant_loss_before: float | None
    val_assistant_loss_after: float | None
    assistant_tokens_seen: int
    total_tokens_seen: int
    wall_seconds: float
    tokens_per_second: float
    parameter_count: int
    num_train_rows: int
    num_val_rows: int
    rows_dropped_too_long: int
    rows_dropped_no_assistant: int
    global_step: int
    cumulative_tokens_seen: int = 0
    resumed_from: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    compact: dict[str, Any] = field(default_factory=dict)  # what the compact view used and cut

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (tuples become lists)."""
        return asdict(self)


@dataclass(frozen=True)
class TokenizedRows:
    """Rows rendered and tokenised for training, plus how many were dropped and why."""

    input_ids: list[list[int]]
    assistant_masks: list[list[int]]
    dropped_too_long: int = 0
    dropped_no_assistant: int = 0

    def to_dataset(self) -> Dataset:
        """The pre-tokenised form ``SFTTrainer`` accepts (it builds ``labels`` from ``assistant_masks``)."""
        return Dataset.from_dict({"input_ids": self.input_ids, "assistant_masks": self.assistant_masks})


def tokenize_rows(tokenizer: PreTrainedTokenizerBase, rows: Iterable[dict], max_length: int) -> TokenizedRows:
    """Render each ``{"messages", "tools"}`` row with the chat template; drop rows that cannot be trained on.

    A row is dropped when it is longer than ``max_length`` tokens or has no assistant token at all.
    """

    def encoded() -> Iterable[tuple[list[int], list[int]]]:
        for row in rows:
            out = tokenizer.apply_chat_template(
                arguments_as_objects(row["messages"]),
                tools=row.get("tools") or None,
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
            )
            yield list(out["input_ids"]), list(out["assistant_masks"])

    return _trainable(encoded(), max_length)


def _trainable(encoded: Iterable[tuple[list[int], list[int]]], max_length: int) -> TokenizedRows:
    """The (ids, assistant mask) examples that fit ``max_length`` and train on something; the others are
    counted by reason."""
    ids_out: list[list[int]] = []
    masks_out: list[list[int]] = []
    too_long = no_assistant = 0
    for ids, mask in encoded:
        if len(ids) > max_length:
            too_long += 1
        elif not any(mask):
            no_assistant += 1
        else:
            ids_out.append(ids)
            masks_out.append(mask)
    return TokenizedRows(ids_out, masks_out, too_long, no_assistant)


def compact_view(cfg: PhaseConfig) -> CompactView:
    """The view a phase trains on when `cfg.compact` is set."""
    return CompactView(window=cfg.compact_window, tool_budget=cfg.compact_tool_budget)


def compact_examples(
    rows: Iterable[dict], view: CompactView, count: Callable[[str], int], stats: Counter[str]
) -> Iterable[tuple[list[dict], bool]]:
    """(messages in the compact view, whether only the last one is trained on) for every row: the whole
    conversation once when the view keeps every message (each assistant turn then sees exactly what it
    sees at inference), else one example per assistant turn with the window before it. What the view cut
    is added to `stats`."""
    for row in rows:
        messages = arguments_as_objects(row["messages"])
        tools = row.get("tools") or []
        if view.window == 0:
            shown, cut = compact_messages(messages, tools, view, count)
            stats.update(cut)
            yield shown, False
            continue
        for i, message in enumerate(messages):
            if message.get("role") == "assistant":
                shown, cut = compact_messages(messages[:i], tools, view, count)
                stats.update(cut)
                yield [*shown, message], True


def tokenize_compact(
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict],
    view: CompactView,
    max_length: int,
    max_examples: int = 0,
    seed: int = 0,
) -> tuple[TokenizedRows, Counter[str], int]:
    """Examples in the compact view (see `compact_examples`), loss on assistant tokens.

    Returns the tokenised examples, what the view cut, and how many examples there were in all (a seeded
    sample of `max_examples` is tokenised when that is smaller; the caller reports both numbers).
    """
    stats: Counter[str] = Counter()
    count = token_counter(tokenizer)
    examples = list(compact_examples(rows, view, count, stats))
    available = len(examples)
    if max_examples and available > max_examples:
        examples = random.Random(seed).sample(examples, max_examples)

    def encoded() -> Iterable[tuple[list[int], list[int]]]:
        for messages, last_only in examples:
            full = tokenizer.apply_chat_template(
                messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            mask = list(full["assistant_masks"])
            if last_only:  # only the turn after the window: the earlier ones in it are context
                prompt = tokenizer.apply_chat_template(
                    messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=True
                )
                head = len(prompt["input_ids"])
                mask = [m if i >= head else 0 for i, m in enumerate(mask)]
            yield list(full["input_ids"]), mask

    return _trainable(encoded(), max_length), stats, available


def assistant_token_loss(
    model_dir: Path, rows: list[dict], max_length: int | None = None, batch_size: int = 8
) -> float:
    """Mean cross-entropy over assistant tokens of ``rows`` (token-weighted, batched, no grad).

    Rows longer than ``max_length`` (default: the model's context size) are skipped, like in training.
    """
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(_device())
    limit = max_length or model.config.max_position_embeddings
    view = CompactView.load(model_dir)  # a model trained on the compact view is measured in it
    if view is not None:
        data = tokenize_compact(tokenizer, rows, view, limit)[0]
    else:
        data = tokenize_rows(tokenizer, rows, limit)
    return _mean_assistant_loss(model, tokenizer, data, batch_size)


def assistant_loss_sum(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    labels: torch.Tensor,
    position_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the positions whose target is an assistant token, and their count.

    Only those positions are projected onto the vocabulary (transformers' boolean ``logits_to_keep``): with
    Gemma's 262k-token vocabulary the output layer over every position cost more than the rest of the model,
    and the loss reads about one position in ten. A model that ignores ``logits_to_keep`` returns every
    position's logits, and the same positions are picked from them.
    """
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE_INDEX
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, use_cache=False
    ).logits
    if logits.dim() == 3:
        logits = logits[keep]
    loss = torch.nn.functional.cross_entropy(logits.float(), targets[keep[:, :-1]], reduction="sum")
    return loss, int(keep.sum())


@torch.no_grad()
def _mean_assistant_loss(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, data: TokenizedRows, batch_size: int
) -> float:
    """Sum the per-token CE over assistant positions across length-sorted batches, divide by their count."""
    if not data.input_ids:
        raise ValueError("no row with assistant tokens to evaluate")
    was_training = model.training
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0  # masked: any id works
    order = sorted(range(len(data.input_ids)), key=lambda i: len(data.input_ids[i]))
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        input_ids, attention, labels = _pad_batch(data, batch, pad_id, model.device)
        loss, n = assistant_loss_sum(model, input_ids, attention, labels)
        total, count = total + loss.item(), count + n
    model.train(was_training)
    return total / max(count, 1)


def _pad_batch(
    data: TokenizedRows, indices: list[int], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad the selected rows; labels are the ids on assistant tokens and -100 elsewhere."""
    width = max(len(data.input_ids[i]) for i in indices)
    input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(indices), width), dtype=torch.long)
    labels = torch.full((len(indices), width), IGNORE_INDEX, dtype=torch.long)
    for row, i in enumerate(indices):
        ids = torch.tensor(data.input_ids[i])
        mask = torch.tensor(data.assistant_masks[i], dtype=torch.bool)
        input_ids[row, : len(ids)] = ids
        attention[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.where(mask, ids, IGNORE_INDEX)
    return input_ids.to(device), attention.to(device), labels.to(device)


def _device() -> torch.device:
    """CUDA when present, else CPU (what ``Trainer`` would pick too)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _use_bf16(setting: bool | Literal["auto"]) -> bool:
    """bf16 mixed precision only where the hardware supports it; TRL would otherwise default it to on."""
    if setting == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(setting)


class _TokenCountingSFTTrainer(SFTTrainer):
    """``SFTTrainer`` that counts the tokens it trains on (all non-padding, and assistant-only)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.assistant_tokens_seen = 0
        self.total_tokens_seen = 0

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """Count (summed over the processes of a multi-GPU run), then take the loss on assistant positions
        only (:func:`assistant_loss_sum`), normalised as the model's own loss would be: by the assistant
        tokens of the whole accumulated batch when the trainer counts on the model to do so, else per token
        (the trainer then divides by the accumulation steps). Evaluation (``return_outputs``) and packed rows
        (position ids without an attention mask) defer to TRL's loss."""
        if model.training:
            attention = inputs.get("attention_mask")
            counts = torch.stack(
                [
                    (inputs["labels"] != IGNORE_INDEX).sum(),
                    attention.sum() if attention is not None else torch.tensor(inputs["input_ids"].numel()),
                ]
            ).to(inputs["labels"].device)
            assistant, total = self.accelerator.gather(counts).reshape(-1, 2).sum(0).tolist()
            self.assistant_tokens_seen += int(assistant)
            self.total_tokens_seen += int(total)
        packed = "position_ids" in inputs and "attention_mask" not in inputs
        if return_outputs or packed:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, count = assistant_loss_sum(
            model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"]
        )
        if num_items_in_batch is None or not self.model_accepts_loss_kwargs:
            return loss / max(count, 1)
        if (
            self.args.average_tokens_across_devices
        ):  # the count is every process's, as in Trainer.compute_loss
            loss = loss * self.accelerator.num_processes
        return loss / num_items_in_batch


class _ProgressLogger(TrainerCallback):
    """Send the trainer's periodic metrics to ``logging`` (the default printer writes to stdout)."""

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log step, loss and learning rate as they arrive."""
        shown = {k: round(v, 5) if isinstance(v, float) else v for k, v in (logs or {}).items()}
        logger.info("step %d/%d %s", state.global_step, state.max_steps, shown)


def _sft_config(cfg: PhaseConfig, out_dir: Path, has_eval: bool) -> SFTConfig:
    """Translate :class:`PhaseConfig` into TRL/transformers arguments."""
    return SFTConfig(
        output_dir=str(out_dir),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=_use_bf16(cfg.bf16),
        activation_checkpointing=cfg.gradient_checkpointing,
        max_length=cfg.max_length,
        packing=cfg.packing,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(cfg.eval_steps or cfg.save_steps) if has_eval else None,
        report_to="none",
        include_num_input_tokens_seen="non_padding",  # kept in the trainer state: survives a resume
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=True,
    )


def _lora_config(cfg: PhaseConfig) -> Any:
    """LoRA on the configured layers; imported lazily because peft is an optional extra."""
    from peft import LoraConfig

    targets = cfg.lora_target_modules
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.05,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
        task_type="CAUSAL_LM",
    )


def _histories(log_history: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Split the trainer's log into (step, train loss) and (step, eval loss) series."""
    train = [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e]
    val = [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e]
    return train, val


def _tokenize_for_phase(
    tokenizer: PreTrainedTokenizerBase, train_rows: list[dict], val_rows: list[dict], cfg: PhaseConfig
) -> tuple[TokenizedRows, TokenizedRows, dict[str, Any]]:
    """Tokenise both splits (whole conversations, or compact per-turn examples), log what was dropped or
    cut, and refuse to train on nothing. The third value says what the compact view did (empty without)."""
    facts: dict[str, Any] = {}
    if cfg.compact:
        view = compact_view(cfg)
        train, stats, available = tokenize_compact(
            tokenizer, train_rows, view, cfg.max_length, cfg.max_examples, cfg.seed
        )
        val, _, _ = tokenize_compact(tokenizer, val_rows, view, cfg.max_length)
        facts = {"examples_available": available, "examples_used": len(train.input_ids), **stats}
        logger.info("compact view: %s", facts)
    else:
        train = tokenize_rows(tokenizer, train_rows, cfg.max_length)
        val = tokenize_rows(tokenizer, val_rows, cfg.max_length)
    for name, data, total in (("train", train, len(train_rows)), ("val", val, len(val_rows))):
        if data.dropped_too_long or data.dropped_no_assistant:
            logger.warning(
                "%s: dropped %d/%d examples longer than %d tokens and %d without assistant tokens",
                name,
                data.dropped_too_long,
                total,
                cfg.max_length,
                data.dropped_no_assistant,
            )
    if not train.input_ids:
        raise ValueError(f"no trainable row left out of {len(train_rows)} (max_length={cfg.max_length})")
    return train, val, facts


def train_phase(
    init_dir: Path, train_rows: list[dict], val_rows: list[dict], out_dir: Path, cfg: PhaseConfig
) -> PhaseResult:
    """Fine-tune the HF folder ``init_dir`` on ``train_rows`` (assistant tokens only) and save to ``out_dir``.

    Resumes from the newest ``out_dir/checkpoint-*`` when there is one. Validation rows, when given, are
    evaluated every ``eval_steps`` and, with :func:`_mean_assistant_loss`, before and after training.
    """
    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = AutoModelForCausalLM.from_pretrained(init_dir, dtype=torch.float32).to(_device())
    train, val, compact_facts = _tokenize_for_phase(tokenizer, train_rows, val_rows, cfg)
    if cfg.token_budget:
        cfg = replace(cfg, max_steps=steps_for_token_budget(train, cfg))
        logger.info("token budget %d: %d optimizer steps", cfg.token_budget, cfg.max_steps)
    loss_before = _val_loss(model, tokenizer, val, cfg)
    trainer = _TokenCountingSFTTrainer(
        model=model,
        args=_sft_config(cfg, out_dir, has_eval=bool(val.input_ids)),
        train_dataset=train.to_dataset(),
        eval_dataset=val.to_dataset() if val.input_ids else None,
        processing_class=tokenizer,
        peft_config=_lora_config(cfg) if cfg.use_lora else None,
        callbacks=[_ProgressLogger()],
    )
    trainer.remove_callback(PrinterCallback)
    resume = get_last_checkpoint(str(out_dir)) if out_dir.is_dir() else None
    if resume:
        logger.info("resuming from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - started
    final = _save_final(trainer, tokenizer, out_dir, merge=cfg.use_lora)
    if cfg.compact and trainer.is_world_process_zero():
        compact_view(cfg).save(out_dir)
    train_hist, val_hist = _histories(trainer.state.log_history)
    return PhaseResult(
        out_dir=str(out_dir),
        train_loss_history=train_hist,
        val_loss_history=val_hist,
        val_assistant_loss_before=loss_before,
        val_assistant_loss_after=_val_loss(final, tokenizer, val, cfg),
        assistant_tokens_seen=trainer.assistant_tokens_seen,
        total_tokens_seen=trainer.total_tokens_seen,
        wall_seconds=wall,
        tokens_per_second=trainer.total_tokens_seen / wall if wall > 0 else math.nan,
        parameter_count=sum(p.numel() for p in final.parameters()),
        num_train_rows=len(train.input_ids),
        num_val_rows=len(val.input_ids),
        rows_dropped_too_long=train.dropped_too_long + val.dropped_too_long,
        rows_dropped_no_assistant=train.dropped_no_assistant + val.dropped_no_assistant,
        global_step=trainer.state.global_step,
        cumulative_tokens_seen=int(trainer.state.num_input_tokens_seen),
        resumed_from=resume,
        config=asdict(cfg),
        compact=compact_facts,
    )


def steps_for_token_budget(train: TokenizedRows, cfg: PhaseConfig) -> int:
    """Optimizer steps that spend ``cfg.token_budget`` tokens at this data's mean tokens per step (the
    budget is met on average, not to the token: batches are whole rows)."""
    rows_per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * _world_size()
    mean_row = sum(len(ids) for ids in train.input_ids) / len(train.input_ids)
    return max(1, round(cfg.token_budget / (mean_row * rows_per_step)))


def _world_size() -> int:
    """Processes of this run (``accelerate launch`` / ``torchrun`` set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _val_loss(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, val: TokenizedRows, cfg: PhaseConfig
) -> float | None:
    """Assistant-token validation loss, or ``None`` without validation rows."""
    if not val.input_ids:
        return None
    return _mean_assistant_loss(model, tokenizer, val, cfg.per_device_eval_batch_size)


def _save_final(
    trainer: SFTTrainer, tokenizer: PreTrainedTokenizerBase, out_dir: Path, merge: bool
) -> PreTrainedModel:
    """Save the trained model (LoRA merged into the base weights) and tokenizer as a plain HF folder; in a
    multi-process run only the main process writes, and the others wait for it."""
    model = trainer.model.merge_and_unload() if merge else trainer.model
    if trainer.is_world_process_zero():
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        logger.info("saved final model to %s", out_dir)
    trainer.accelerator.wait_for_everyone()
    return model
