"""Group `training`, phase 3: GRPO on the synthesized environments, continuing from phase 2
(`train.rl`), rewarded by the funnel's verified outcomes (`train.rl_rewards`), on training tasks only."""

import json
import random
from pathlib import Path

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from agentscaler_assets.artefacts import TASKS_FILE, Artefact
from agentscaler_assets.catalog_assets import read_domains
from agentscaler_assets.environment_assets import domain_tasks
from agentscaler_assets.experience_assets import training_domains
from agentscaler_assets.resources import LanguageModels, StorageRoot, TrainingSettings
from agentscaler_assets.tables import markdown_table, png_markdown
from agentscaler_assets.training_assets import (
    TRAINING_CODE,
    _fresh_out_dir,
    forward_logs,
    model_version,
    phase2_model,
)
from envgen.environment.build import load_environment
from envgen.tasks.chains import frame_to_tasks
from train.plots import loss_curve_png
from train.rl import RLConfig, RLResult, train_rl_phase
from train.rl_rewards import RewardWeights
from train.rl_rollout import RLTask, RolloutSettings, UserFor, scripted_user

RL_MODEL = "phase3_rl"  # the folder under models/ and the agent's name in the benchmarks


class RLPhaseConfig(Config):
    """The RL phase's recipe (`train.rl.RLConfig`): the defaults are the laptop run's, a few minutes on 2
    CPU cores; `agentscaler_assets/presets/rl-long.yaml` trains longer."""

    max_steps: int = Field(default=8, ge=1)
    tasks_per_step: int = Field(default=4, ge=1)
    group_size: int = Field(default=4, ge=2)
    learning_rate: float = Field(default=2e-4, gt=0)
    beta: float = Field(default=0.02, ge=0)  # KL penalty to phase 2
    max_turns: int = Field(default=8, ge=1)
    max_new_tokens: int = Field(default=96, ge=1)
    max_episode_tokens: int = Field(default=2048, ge=64)
    temperature: float = Field(default=0.7, ge=0)
    guided_tool_names: bool = True  # as the benchmarks decode
    save_steps: int = Field(default=4, ge=1)
    # Domains whose training tasks RL samples: `vertical` (phase 2's) or `all` (vertical and general,
    # never a held-out domain), at most `max_tasks_per_domain` each (a seeded sample; 0 = all).
    domains: str = "vertical"
    max_tasks_per_domain: int = Field(default=0, ge=0)
    # Reward weights (train.rl_rewards): the verified objective, shaped terms, penalties (0 = off).
    reward_solved: float = 1.0
    reward_gold_calls: float = 0.5
    reward_right_tool: float = 0.25
    reward_well_formed: float = 0.1
    penalty_invalid_call: float = 0.2
    penalty_policy_violation: float = 0.5

    def rl_config(self, training: TrainingSettings) -> RLConfig:
        return RLConfig(
            max_steps=self.max_steps,
            tasks_per_step=self.tasks_per_step,
            group_size=self.group_size,
            learning_rate=self.learning_rate,
            beta=self.beta,
            rollout=RolloutSettings(
                max_turns=self.max_turns,
                max_new_tokens=self.max_new_tokens,
                max_episode_tokens=self.max_episode_tokens,
                temperature=self.temperature,
                guided_tool_names=self.guided_tool_names,
            ),
            seed=training.seed,
            save_steps=self.save_steps,
            use_lora=training.use_lora,
            lora_r=training.lora_r,
            lora_alpha=training.lora_alpha,
            lora_target_modules=training.lora_target_modules,
            gradient_checkpointing=training.gradient_checkpointing,
            rewards=RewardWeights(
                solved=self.reward_solved,
                gold_calls=self.reward_gold_calls,
                right_tool=self.reward_right_tool,
                well_formed=self.reward_well_formed,
                invalid_calls=self.penalty_invalid_call,
                policy_violations=self.penalty_policy_violation,
            ),
        )


def rl_tasks(storage: StorageRoot, config: RLPhaseConfig, seed: int = 0) -> list[RLTask]:
    """The training tasks of the chosen domains (never a held-out domain, never a held-out task), each
    with its environment; keyed `<domain>/<task id>`."""
    if config.domains not in ("vertical", "all"):
        raise ValueError(f"phase3_rl_model: domains must be `vertical` or `all`, got {config.domains!r}")
    table = read_domains(storage)
    chosen = training_domains(table, vertical=True)
    if config.domains == "all":
        chosen = pl.concat([chosen, training_domains(table, vertical=False)])
    tasks = []
    for slug in chosen["slug"].to_list():
        folder = storage.domain_dir(slug)
        env, snapshot = load_environment(folder)
        train = [t for t in frame_to_tasks(pl.read_parquet(folder / TASKS_FILE)) if t.split == "train"]
        if 0 < config.max_tasks_per_domain < len(train):
            train = random.Random(f"{seed}:{slug}").sample(train, config.max_tasks_per_domain)
        tasks += [RLTask(f"{slug}/{t.task_id}", t, env, snapshot) for t in train]
    return tasks


def train_rl_model(
    storage: StorageRoot,
    training: TrainingSettings,
    config: RLPhaseConfig,
    init: Path,
    out: Path,
    user_for: UserFor = scripted_user,
) -> RLResult:
    """The RL phase from `init` into `out` on the configured training tasks: `out` and its checkpoints are
    kept (to resume) only while the starting model, the tasks files and the recipe are unchanged."""
    tasks = rl_tasks(storage, config, training.seed)
    cfg = config.rl_config(training)
    task_files = sorted({storage.domain_dir(t.key.split("/")[0]) / TASKS_FILE for t in tasks})
    _fresh_out_dir(out, [init, *task_files], cfg)
    return train_rl_phase(init, tasks, out, cfg, user_for)


def rl_metadata(result: RLResult, plot_markdown: str) -> dict:
    """The RL phase's numbers as Dagster metadata: reward at the start and end, each term apart, KL, speed."""
    terms = [
        {
            "term": name,
            "first_step": round(history[0][1], 4) if history else None,
            "last_step": round(history[-1][1], 4) if history else None,
        }
        for name, history in result.term_histories.items()
    ]
    return {
        "steps": result.steps,
        "training_tasks": result.training_tasks,
        "episodes": result.episodes,
        "mean_reward_first_step": result.mean_reward_first,
        "mean_reward_last_step": result.mean_reward_last,
        "mean_reward": round(sum(r for _, r in result.reward_history) / len(result.reward_history), 4)
        if result.reward_history
        else None,
        "solved_rate_in_training": round(result.solved_rate, 4),
        "kl_last_step": result.kl_history[-1][1] if result.kl_history else None,
        "sampled_tokens_per_second": round(result.tokens_per_second, 1),
        "wall_seconds": round(result.wall_seconds, 1),
        "parameters": result.parameter_count,
        "resumed_from": result.resumed_from or "none",
        "reward_terms": MetadataValue.md(markdown_table(pl.DataFrame(terms))) if terms else "none",
        "reward_curve": MetadataValue.md(plot_markdown),
        "config": MetadataValue.json(json.loads(json.dumps(result.config, default=str))),
    }


@asset(
    group_name="training",
    deps=[phase2_model, AssetDep(domain_tasks, partition_mapping=AllPartitionMapping())],
    code_version=TRAINING_CODE,
)
def phase3_rl_model(
    context: AssetExecutionContext,
    config: RLPhaseConfig,
    storage: StorageRoot,
    training: TrainingSettings,
    llm: LanguageModels,
) -> MaterializeResult:
    """Phase 3: GRPO from phase 2's weights, multi-turn episodes in the vertical domains' environments with
    the profile's user simulator (scripted by default), on training tasks only; rewarded by the verified
    outcome (the funnel's verdict) plus configurable shaped terms and penalties, each logged apart.
    Resumes from its newest checkpoint when the inputs and recipe are unchanged."""
    models = storage.artefact(Artefact.MODELS)
    out = models / RL_MODEL
    user = llm.describe()["user"]
    context.log.info(f"{RL_MODEL}: GRPO from phase 2, user {user}")
    with forward_logs("train", context):
        result = train_rl_model(storage, training, config, models / "phase2", out, llm.user_for)
    plot = loss_curve_png(
        {"mean reward": result.reward_history, **result.term_histories},
        out / "reward_curve.png",
        ylabel="reward (per term: unweighted mean)",
    )
    metadata = {
        "path": MetadataValue.path(str(out)),
        "initialised_from": MetadataValue.path(str(models / "phase2")),
        "user_simulator": user,
        **rl_metadata(result, png_markdown(plot, "reward curve")),
    }
    return MaterializeResult(data_version=model_version(out), metadata=metadata)
