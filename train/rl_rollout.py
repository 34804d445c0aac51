"""Multi-turn episodes of the policy being trained, recorded as the token sequences GRPO learns from.

An episode runs through the same loop as every other rollout here (`envgen.simulate.rollout.run_episode`:
the environment's policy, the user simulator, tool calls executed on the episode's own database), with the
policy as its agent. The agent (:class:`PolicyAgent`) keeps the episode as one token sequence: the prompt
(tool block and the user's first message), then, turn after turn, what the environment and the user said
(mask 0) and what the policy sampled (mask 1, the only tokens with a loss). TRL's ``GRPOTrainer`` takes it
through its ``rollout_func`` hook (`env_mask` marks the policy's tokens) and scores it with the reward
functions of `train.rl_rewards`, from the funnel's verdict on the finished trajectory.

Why tokens and not re-rendered text: the gradient must be taken on exactly the tokens the policy sampled.
The text between two assistant turns is cut from the chat template's own rendering (what follows the end
marker of the last assistant turn), so the sequence is what the template would give, turn for turn. That
needs a view in which a longer conversation renders as a continuation of a shorter one: the whole history
(`compact_window` 0, the default) or full conversations; a windowed view is refused by name.

The episodes of one step decode together: each asks for its next turn, and one batched, KV-cached
``generate`` samples them all (`envgen.llm.hf_backend.GreedyBatcher` collects the requests,
`generate_rows` decodes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import LogitsProcessorList

from envgen.environment.programs import EnvironmentDoc
from envgen.funnel.filters import FunnelConfig, judge
from envgen.llm.compact import CompactView
from envgen.llm.guided import TokenStrings, ToolNameGuide, offered_names
from envgen.llm.hf_backend import ChatRenderer, GreedyBatcher, generate_rows, pad_id, stop_token_ids
from envgen.llm.toolcall_parse import parse_assistant_text
from envgen.llm.turn_markers import QWEN_MARKERS, markers_for, single_token_id
from envgen.simulate.rollout import Trajectory, UserSimulator, run_episode, trajectory_row
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import Task
from train.rl_rewards import EpisodeOutcome, episode_outcome


@dataclass(frozen=True)
class RLTask:
    """A training task with its environment: what one GRPO prompt stands for (`key` is the prompt)."""

    key: str
    task: Task
    env: EnvironmentDoc
    snapshot: Path


@dataclass(frozen=True)
class RolloutSettings:
    """How the policy samples its turns and how long an episode may run."""

    max_turns: int = 8
    max_new_tokens: int = 96
    max_episode_tokens: int = 2048
    temperature: float = 1.0
    top_p: float = 1.0
    guided_tool_names: bool = True
    concurrency: int = 64


class ViewNotIncremental(ValueError):
    """The model's view re-renders earlier turns differently as the conversation grows."""


class EpisodeTooLong(RuntimeError):
    """The episode's tokens would not fit the configured maximum; it ends as it stands."""


@dataclass
class EpisodeTokens:
    """One episode as tokens: the prompt, then the completion with its mask (1: sampled by the policy)."""

    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    end_of_last_turn: int = 0  # completion length after the policy's last turn

    def extend(self, ids: list[int], sampled: bool) -> None:
        self.completion_ids += ids
        self.mask += [int(sampled)] * len(ids)

    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)

    def trimmed(self, stop_id: int) -> tuple[list[int], list[int]]:
        """Completion and mask up to the policy's last turn (what the user said after it has no loss and
        no bearing on the policy); an episode the policy never spoke in is one masked stop token."""
        if self.end_of_last_turn == 0:
            return [stop_id], [0]
        return self.completion_ids[: self.end_of_last_turn], self.mask[: self.end_of_last_turn]


class PolicyDecoder:
    """Samples the next assistant turn of many episodes at once from one model (batched `generate`)."""

    def __init__(
        self, model: Any, tokenizer: Any, view: CompactView | None, settings: RolloutSettings
    ) -> None:
        if view is not None and view.window > 0:
            raise ViewNotIncremental(
                f"RL episodes need the whole-history view, but the model was trained with compact_window "
                f"{view.window}: train the SFT phases with compact_window 0 (or compact off) to use RL"
            )
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.renderer = ChatRenderer(tokenizer, view)
        self.end_marker = (markers_for(tokenizer) or QWEN_MARKERS).end
        stop = single_token_id(tokenizer, self.end_marker)
        if stop is None:
            raise ValueError(
                f"the tokenizer has no single token for the end-of-turn marker {self.end_marker!r}"
            )
        self.stop_id = stop
        self.stop_ids = stop_token_ids(tokenizer)  # the same stops as evaluation's decoding
        self.pad = pad_id(tokenizer, self.stop_ids)
        self._token_strings = TokenStrings(tokenizer) if settings.guided_tool_names else None
        self.batcher = GreedyBatcher(self._decode, max_batch=settings.concurrency)
        self.sampled_tokens = 0

    def tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _guide(self, tools_per_row: list[list[dict]], width: int) -> LogitsProcessorList:
        if self._token_strings is None:
            return LogitsProcessorList()
        names = [offered_names(tools) for tools in tools_per_row]
        return LogitsProcessorList([ToolNameGuide(self._token_strings, names, width)])

    def _decode(self, requests: list[tuple[list[int], list[dict]]]) -> list[list[int]]:
        s = self.settings
        sampling = (
            {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p}
            if s.temperature > 0
            else {"do_sample": False}
        )
        new = generate_rows(
            self.model,
            [ids for ids, _ in requests],
            s.max_new_tokens,
            self.stop_ids,
            self.pad,
            lambda width: self._guide([tools for _, tools in requests], width),
            **sampling,
        )
        self.sampled_tokens += sum(len(n) for n in new)
        return new

    async def sample(self, ids: list[int], tools: list[dict]) -> list[int]:
        return await asyncio.wrap_future(self.batcher.submit((ids, tools)))


class PolicyAgent:
    """The agent of one episode (a `ChatBackend` for `run_episode`), recording the episode's tokens."""

    name = "policy"

    def __init__(self, decoder: PolicyDecoder) -> None:
        self.decoder = decoder
        self.record = EpisodeTokens()

    def _between_turns(self, messages: list[dict], tools: list[dict]) -> list[int]:
        """The tokens the environment and the user added since the policy's last turn, cut from the
        template's rendering after that turn's end marker."""
        last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
        render = self.decoder.renderer.text
        before, full = render(messages[: last + 1], tools, False), render(messages, tools, True)
        if not full.startswith(before):
            raise ViewNotIncremental(
                "the chat template renders earlier turns differently as the conversation grows; RL episodes "
                "need a template whose longer conversations continue the shorter ones"
            )
        cut = before.rfind(self.decoder.end_marker) + len(self.decoder.end_marker)
        return self.decoder.tokens(full[cut:])

    async def complete(self, messages: list[dict], tools: list[dict], **_: Any) -> dict[str, Any]:
        d, record = self.decoder, self.record
        if not record.prompt_ids:
            record.prompt_ids = d.tokens(d.renderer.text(messages, tools, True))
        else:
            record.extend(self._between_turns(messages, tools), sampled=False)
        if record.length() + d.settings.max_new_tokens > d.settings.max_episode_tokens:
            raise EpisodeTooLong(f"{record.length()} tokens before the next turn")
        new = await d.sample(record.prompt_ids + record.completion_ids, tools)
        record.extend(new, sampled=True)
        if not new or new[-1] not in d.stop_ids:  # cut off at max_new_tokens: close the turn unsampled
            record.extend([d.stop_id], sampled=False)
        record.end_of_last_turn = len(record.completion_ids)
        text = d.tokenizer.decode([t for t in new if t not in d.stop_ids], skip_special_tokens=True)
        return parse_assistant_text(text)


@dataclass
class PolicyEpisode:
    """A finished episode: its tokens, trajectory and verified outcome."""

    task: RLTask
    tokens: EpisodeTokens
    trajectory: Trajectory
    outcome: EpisodeOutcome


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """The model in eval mode (no dropout) while sampling, back in its previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


UserFor = Callable[[Task, int], UserSimulator]


def scripted_user(task: Task, rollout: int) -> UserSimulator:
    return ScriptedUser(task)


def policy_episodes(
    tasks: list[RLTask],
    decoder: PolicyDecoder,
    settings: RolloutSettings,
    user_for: UserFor = scripted_user,
) -> list[PolicyEpisode]:
    """One episode per entry of `tasks` (a task repeated k times gives k episodes), all in flight at once,
    each judged by the funnel."""

    async def run_all() -> list[tuple[PolicyAgent, Trajectory]]:
        sem = asyncio.Semaphore(settings.concurrency)

        async def one(index: int, t: RLTask) -> tuple[PolicyAgent, Trajectory]:
            agent = PolicyAgent(decoder)
            async with sem:
                traj = await run_episode(
                    t.task, t.env, t.snapshot, agent, user_for(t.task, index), index, settings.max_turns
                )
            return agent, traj

        return await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks)))

    with evaluating(decoder.model):  # generate_rows samples without gradients
        finished = asyncio.run(run_all())
    episodes = []
    for t, (agent, traj) in zip(tasks, finished, strict=True):
        verdict = judge(traj, t.task, t.env, FunnelConfig())
        episodes.append(PolicyEpisode(t, agent.record, traj, episode_outcome(traj, t.task, t.env, verdict)))
    return episodes


def rollout_output(episodes: list[PolicyEpisode], stop_id: int) -> dict[str, Any]:
    """The episodes in the shape TRL's `rollout_func` returns: token lists, the policy mask as `env_mask`,
    no sampling log-probabilities (the trainer computes its own), and each outcome for the rewards."""
    completions, masks = zip(*(e.tokens.trimmed(stop_id) for e in episodes), strict=True)
    return {
        "prompt_ids": [e.tokens.prompt_ids for e in episodes],
        "completion_ids": list(completions),
        "env_mask": list(masks),
        "logprobs": None,
        "outcome": [e.outcome.to_dict() for e in episodes],
    }


def journal_episodes(path: Path, step: int, episodes: list[PolicyEpisode]) -> None:
    """Append the step's trajectories and outcomes to a JSON Lines journal, for inspection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for e in episodes:
            row = {"step": step, **trajectory_row(e.trajectory), "outcome": e.outcome.to_dict()}
            fh.write(json.dumps(row) + "\n")
