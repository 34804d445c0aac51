"""Phase 3: reinforcement learning with GRPO on the synthesized environments, after the two SFT phases.

TRL's ``GRPOTrainer`` does the optimisation (group-relative advantages, clipped ratio, KL to the starting
model through ``beta``); the episodes come from `train.rl_rollout` through its ``rollout_func`` hook:
multi-turn, in the project's own environments, with the scripted user by default or any user simulator
given, on training tasks only. Rewards are the verified outcomes of `train.rl_rewards`.

Each optimizer step rolls out ``tasks_per_step`` tasks ``group_size`` times each (GRPO's group: the same
task, different samples), so ``per_device_train_batch_size`` is one group and the step accumulates over the
tasks. Checkpoints go to ``out_dir/checkpoint-N``; a new call with the same ``out_dir`` resumes from the
newest one. The final model is saved at the top of ``out_dir`` (LoRA merged), with the view it decodes in,
like the SFT phases, and ``rl_result.json`` beside it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer

from envgen.llm.compact import SETTINGS_FILE, CompactView
from train.rl_rewards import RewardWeights, reward_functions
from train.rl_rollout import (
    PolicyDecoder,
    RLTask,
    RolloutSettings,
    UserFor,
    journal_episodes,
    policy_episodes,
    rollout_output,
    scripted_user,
)
from train.sft import _device, _lora_config, _save_final, _use_bf16

logger = logging.getLogger(__name__)

RESULT_FILE = "rl_result.json"
JOURNAL_FILE = "episodes.jsonl"


@dataclass
class RLConfig:
    """The RL phase's recipe; defaults suit the tiny model on 2 CPU cores (a few minutes)."""

    max_steps: int = 8
    tasks_per_step: int = 4
    group_size: int = 4
    learning_rate: float = 2e-4
    beta: float = 0.02  # KL penalty to the starting model (0: no reference model is kept)
    epsilon: float = 0.2  # PPO-style clipping of the probability ratio
    rollout: RolloutSettings = field(default_factory=RolloutSettings)  # turns, lengths, sampling
    seed: int = 0
    save_steps: int = 4
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_target_modules: str = "all-linear"
    gradient_checkpointing: bool = False
    bf16: bool | str = "auto"
    rewards: RewardWeights = field(default_factory=RewardWeights)

    def __post_init__(self) -> None:
        if isinstance(self.rewards, dict):
            self.rewards = RewardWeights(**self.rewards)
        if isinstance(self.rollout, dict):
            self.rollout = RolloutSettings(**self.rollout)
        if self.group_size < 2:
            raise ValueError(
                f"group_size must be at least 2 (GRPO compares samples of one task), got {self.group_size}"
            )
        if self.tasks_per_step < 1 or self.max_steps < 1:
            raise ValueError("tasks_per_step and max_steps must be at least 1")

    def rollout_settings(self) -> RolloutSettings:
        """The rollout settings, with every episode of a step in flight at once."""
        return replace(self.rollout, concurrency=self.tasks_per_step * self.group_size)


@dataclass
class RLResult:
    """What the RL phase did, for asset metadata, the reward curve and the report. Histories are per
    optimizer step from the trainer's log (so they include steps before a resume); the token counts and
    the wall time cover this call only."""

    out_dir: str
    steps: int
    training_tasks: int
    episodes: int
    reward_history: list[tuple[int, float]]
    term_histories: dict[str, list[tuple[int, float]]]
    kl_history: list[tuple[int, float]]
    solved_rate: float  # share of this call's episodes the funnel kept
    mean_reward_first: float | None
    mean_reward_last: float | None
    sampled_tokens: int
    wall_seconds: float
    tokens_per_second: float
    parameter_count: int
    resumed_from: str | None
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_rl_result(out_dir: Path) -> RLResult:
    """The result a finished RL phase left beside its model."""
    path = Path(out_dir) / RESULT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no RL result (the phase did not finish)")
    data = json.loads(path.read_text())
    for key in ("reward_history", "kl_history"):
        data[key] = [tuple(p) for p in data[key]]
    data["term_histories"] = {k: [tuple(p) for p in v] for k, v in data["term_histories"].items()}
    return RLResult(**data)


@dataclass
class _EpisodeTally:
    """The episodes this call rolled out and how many the funnel kept."""

    episodes: int = 0
    solved: int = 0


def _grpo_config(cfg: RLConfig, out_dir: Path, weights: list[float]) -> GRPOConfig:
    return GRPOConfig(
        output_dir=str(out_dir),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.group_size,
        gradient_accumulation_steps=cfg.tasks_per_step,
        num_generations=cfg.group_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        reward_weights=weights,
        max_completion_length=cfg.rollout.max_episode_tokens,
        temperature=max(cfg.rollout.temperature, 1e-3),
        logging_steps=1,
        save_steps=cfg.save_steps,
        save_strategy="steps",
        report_to=[],
        seed=cfg.seed,
        bf16=_use_bf16(cfg.bf16),
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=_device().type == "cpu",
        disable_tqdm=True,
        shuffle_dataset=True,
    )


def _histories(log: list[dict[str, Any]], names: list[str]) -> tuple[list, dict[str, list], list]:
    """Mean reward, each term's mean and the KL per logged step."""
    reward, kl, terms = [], [], defaultdict(list)
    for entry in log:
        step = entry.get("step")
        if step is None or "reward" not in entry:
            continue
        reward.append((step, float(entry["reward"])))
        if "kl" in entry:
            kl.append((step, float(entry["kl"])))
        for name in names:
            if f"rewards/{name}/mean" in entry:
                terms[name].append((step, float(entry[f"rewards/{name}/mean"])))
    return reward, dict(terms), kl


def train_rl_phase(
    init_dir: Path,
    tasks: list[RLTask],
    out_dir: Path,
    cfg: RLConfig,
    user_for: UserFor = scripted_user,
) -> RLResult:
    """GRPO from the HF folder ``init_dir`` on ``tasks`` (training tasks only: a held-out one is refused
    by name), saved to ``out_dir``; resumes from the newest ``out_dir/checkpoint-*``."""
    heldout = [t.key for t in tasks if t.task.split != "train"]
    if heldout:
        raise ValueError(f"RL must never see held-out tasks; given {len(heldout)}, e.g. {heldout[0]}")
    if not tasks:
        raise ValueError("no training tasks to run RL on")
    if not (Path(init_dir) / "config.json").exists():
        raise FileNotFoundError(
            f"no model at {init_dir}: materialise the model RL starts from (phase2_model) first"
        )
    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(init_dir, dtype=torch.float32).to(_device())
    view = CompactView.load(init_dir)
    decoder = PolicyDecoder(model, tokenizer, view, cfg.rollout_settings())
    if tokenizer.pad_token is None:
        tokenizer.pad_token_id = decoder.pad
    by_key = {t.key: t for t in tasks}
    tally = _EpisodeTally()
    journal = out_dir / JOURNAL_FILE

    def rollout(prompts: list[str], trainer: GRPOTrainer) -> dict[str, Any]:
        decoder.model = trainer.model
        episodes = policy_episodes([by_key[p] for p in prompts], decoder, decoder.settings, user_for)
        tally.episodes += len(episodes)
        tally.solved += sum(e.outcome.solved for e in episodes)
        if trainer.is_world_process_zero():
            journal_episodes(journal, trainer.state.global_step + 1, episodes)
        return rollout_output(episodes, decoder.stop_id)

    funcs, weights = reward_functions(cfg.rewards)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=_grpo_config(cfg, out_dir, weights),
        train_dataset=Dataset.from_list([{"prompt": key} for key in sorted(by_key)]),
        processing_class=tokenizer,
        peft_config=_lora_config(cfg) if cfg.use_lora else None,
        rollout_func=rollout,
    )
    resume = get_last_checkpoint(str(out_dir)) if out_dir.is_dir() else None
    if resume:
        logger.info("resuming RL from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - started
    final = _save_final(trainer, tokenizer, out_dir, merge=cfg.use_lora)
    if view is not None and trainer.is_world_process_zero():
        shutil.copy(Path(init_dir) / SETTINGS_FILE, out_dir / SETTINGS_FILE)
    reward, terms, kl = _histories(trainer.state.log_history, [f.__name__ for f in funcs])
    result = RLResult(
        out_dir=str(out_dir),
        steps=trainer.state.global_step,
        training_tasks=len(tasks),
        episodes=tally.episodes,
        reward_history=reward,
        term_histories=terms,
        kl_history=kl,
        solved_rate=tally.solved / tally.episodes if tally.episodes else 0.0,
        mean_reward_first=reward[0][1] if reward else None,
        mean_reward_last=reward[-1][1] if reward else None,
        sampled_tokens=decoder.sampled_tokens,
        wall_seconds=wall,
        tokens_per_second=decoder.sampled_tokens / wall if wall > 0 else math.nan,
        parameter_count=sum(p.numel() for p in final.parameters()),
        resumed_from=resume,
        config=asdict(cfg),
    )
    if int(os.environ.get("RANK", "0")) == 0:
        (out_dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=1, default=str))
    return result
