"""Phase 3 (RL): rewards from verified outcomes on hand-made episodes, the episode's token record, one
GRPO step on a tiny model in a real environment, and held-out tasks kept out."""

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentscaler_assets.resources import TrainingSettings
from agentscaler_assets.rl_assets import RLPhaseConfig
from envgen.funnel.filters import FunnelConfig, judge
from envgen.llm.compact import CompactView
from envgen.llm.toolcall_parse import parse_assistant_text
from envgen.simulate.rollout import run_episode
from envgen.simulate.scripted import ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks
from train.rl import JOURNAL_FILE, RESULT_FILE, RLConfig, read_rl_result, train_rl_phase
from train.rl_rewards import REWARD_FUNCTIONS, RewardWeights, episode_outcome, total_reward
from train.rl_rollout import (
    PolicyDecoder,
    RLTask,
    RolloutSettings,
    ViewNotIncremental,
    policy_episodes,
    rollout_output,
)


class Playbook:
    """An agent that says the given assistant messages in order, then ends its turns politely."""

    name = "playbook"

    def __init__(self, turns: list[dict]):
        self.turns = list(turns)

    async def complete(self, messages, tools, **_):
        return self.turns.pop(0) if self.turns else {"role": "assistant", "content": "Done. Anything else?"}


def call(name: str, arguments: dict) -> dict:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": function}],
    }


def gold_plan(task) -> list[dict]:
    """Each gold call after the user asked for it, then a word to the user (who then reveals the next)."""
    turns = []
    for g in task.gold_calls:
        turns += [call(g["name"], g["arguments"]), {"role": "assistant", "content": "Done."}]
    return turns


@pytest.fixture(scope="module")
def tasks(airline):
    return sample_tasks(airline.env, airline.path, airline.edges, TaskConfig(n_chains=30, max_length=3)).tasks


def _kind(airline, name: str) -> str:
    return airline.env.program(name).kind


@pytest.fixture(scope="module")
def write_task(tasks, airline):
    return next(t for t in tasks if t.writes and _kind(airline, t.gold_calls[0]["name"]) == "write")


def outcome_of(airline, task, turns):
    traj = asyncio.run(run_episode(task, airline.env, airline.path, Playbook(turns), ScriptedUser(task)))
    return episode_outcome(traj, task, airline.env, judge(traj, task, airline.env, FunnelConfig()))


def test_a_solved_episode_earns_every_term(airline, write_task):
    o = outcome_of(airline, write_task, gold_plan(write_task))
    assert o.solved and o.state_match and o.calls_match
    assert (o.gold_calls_made, o.right_tool, o.well_formed) == (1.0, 1.0, 1.0)
    assert (o.invalid_calls, o.policy_violations) == (0, 0)
    assert total_reward(o, RewardWeights()) == pytest.approx(1.0 + 0.5 + 0.25 + 0.1)
    assert total_reward(o, RewardWeights(gold_calls=0, right_tool=0, well_formed=0)) == 1.0


def test_a_wrong_argument_leaves_the_wrong_state_and_earns_less(airline, write_task):
    first, *rest = write_task.gold_calls
    wrong = {k: (f"{v}X" if isinstance(v, str) else v) for k, v in first["arguments"].items()}
    assert wrong != first["arguments"]
    turns = [call(first["name"], wrong), {"role": "assistant", "content": "Done."}]
    for g in rest:
        turns += [call(g["name"], g["arguments"]), {"role": "assistant", "content": "Done."}]
    o = outcome_of(airline, write_task, turns)
    solved = outcome_of(airline, write_task, gold_plan(write_task))
    assert not o.solved and not o.state_match
    assert o.gold_calls_made < 1.0 and o.right_tool == 1.0  # the right tool, the wrong record
    assert total_reward(o, RewardWeights()) < total_reward(solved, RewardWeights())


def test_an_unrequested_change_is_a_policy_violation(airline, tasks, write_task):
    other = next(
        t
        for t in tasks
        if t.gold_calls[0]["name"] not in {g["name"] for g in write_task.gold_calls}
        and _kind(airline, t.gold_calls[0]["name"]) == "write"
    )
    extra = other.gold_calls[0]  # succeeds on the initial database: it opened its own chain
    o = outcome_of(airline, write_task, [call(extra["name"], extra["arguments"]), *gold_plan(write_task)])
    assert not o.solved and not o.state_match
    assert o.policy_violations >= 1
    assert total_reward(o, RewardWeights()) < 1.0


def test_invalid_calls_are_penalised_and_not_well_formed(airline, write_task):
    broken = parse_assistant_text('<tool_call>\n{"name": "x", "arguments": {oops}\n</tool_call>')
    assert broken["parse_errors"]
    o = outcome_of(
        airline,
        write_task,
        [
            broken,
            call("no_such_tool", {}),
            {"role": "assistant", "content": "Sorry."},
            *gold_plan(write_task),
        ],
    )
    assert o.invalid_calls == 2 and o.well_formed < 1.0
    assert not o.solved  # the broken turn makes the trajectory invalid for the funnel
    weights = RewardWeights()
    penalised = total_reward(o, weights)
    assert penalised < total_reward(o, RewardWeights(invalid_calls=0))
    # Each term is its own reward function over a batch, as TRL calls them.
    batch = {"outcome": [o.to_dict(), outcome_of(airline, write_task, gold_plan(write_task)).to_dict()]}
    values = {f.__name__: f([], [], **batch) for f in REWARD_FUNCTIONS}
    assert values["solved"] == [0.0, 1.0]
    assert values["invalid_calls"] == [-2 / o.call_attempts, 0.0]  # a share of the attempts


def _biased_checkpoint(src, dst):
    """The tiny checkpoint, its output layer untied and made to end a turn at about half the positions:
    sampled turns then differ (empty or not), so rewards differ within a group and GRPO has a gradient."""
    shutil.copytree(src, dst)
    tokenizer = AutoTokenizer.from_pretrained(dst)
    model = AutoModelForCausalLM.from_pretrained(dst)
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=False)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[stop] = 8.0 * torch.randn(
            model.config.hidden_size, generator=torch.Generator().manual_seed(0)
        )
    model.config.tie_word_embeddings = False
    model.lm_head = head
    model.save_pretrained(dst)
    CompactView(tool_budget=120).save(dst)
    return model


def test_one_grpo_step_changes_the_weights_and_logs_rewards(tiny_checkpoint, airline, tasks, tmp_path):
    init = tmp_path / "init"
    _biased_checkpoint(tiny_checkpoint, init)
    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(init).state_dict().items()}
    train = [t for t in tasks if t.split == "train"][:2]
    rl_tasks = [RLTask(f"airline/{t.task_id}", t, airline.env, airline.path) for t in train]
    cfg = RLConfig(
        max_steps=1,
        tasks_per_step=2,
        group_size=4,
        learning_rate=0.05,
        save_steps=1,
        rollout=RolloutSettings(max_turns=2, max_new_tokens=8),
    )
    out = tmp_path / "rl"
    result = train_rl_phase(init, rl_tasks, out, cfg)
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert result.steps == 1 and result.episodes == 8 and len(result.reward_history) == 1
    assert set(result.term_histories) == {f.__name__ for f in REWARD_FUNCTIONS}
    assert read_rl_result(out) == result and (out / RESULT_FILE).exists()
    assert CompactView.load(out) == CompactView(tool_budget=120)  # it decodes in the view it trained in
    rows = [json.loads(line) for line in (out / JOURNAL_FILE).read_text().splitlines()]
    assert len(rows) == 8 and {r["task_id"] for r in rows} == {t.task_id for t in train}


def test_held_out_tasks_are_refused_by_name(tiny_checkpoint, airline, tasks, tmp_path):
    held = next(t for t in tasks if t.split == "heldout")
    with pytest.raises(ValueError, match=f"held-out tasks.*airline/{held.task_id}"):
        train_rl_phase(
            tiny_checkpoint,
            [RLTask(f"airline/{held.task_id}", held, airline.env, airline.path)],
            tmp_path,
            RLConfig(),
        )


def without_turn_bodies(text: str) -> str:
    return re.sub(r"(<\|im_start\|>assistant\n).*?(<\|im_end\|>)", r"\1\2", text, flags=re.DOTALL)


def test_an_episode_is_recorded_as_the_templates_own_tokens(tiny_checkpoint, airline, tasks, tmp_path):
    init = tmp_path / "init"
    _biased_checkpoint(tiny_checkpoint, init)
    tokenizer = AutoTokenizer.from_pretrained(init)
    settings = RolloutSettings(max_turns=3, max_new_tokens=12)
    decoder = PolicyDecoder(
        AutoModelForCausalLM.from_pretrained(init), tokenizer, CompactView.load(init), settings
    )
    task = next(t for t in tasks if t.split == "train")
    episodes = policy_episodes([RLTask("airline/t", task, airline.env, airline.path)] * 2, decoder, settings)
    for e in episodes:
        rendered = decoder.renderer.text(
            e.trajectory.messages, e.trajectory.tools, add_generation_prompt=False
        )
        recorded = tokenizer.decode(e.tokens.prompt_ids + e.tokens.completion_ids)
        # Between the policy's turns, the template's own text; the turns themselves are what was sampled
        # (the parsed message may differ in whitespace), and the user's closing words come after the last.
        assert without_turn_bodies(rendered).startswith(without_turn_bodies(recorded))
        assert len(e.tokens.mask) == len(e.tokens.completion_ids) and 1 in e.tokens.mask
        sampled = [t for t, m in zip(e.tokens.completion_ids, e.tokens.mask, strict=True) if m]
        said = [m for m in e.trajectory.messages if m["role"] == "assistant"]
        assert sampled.count(decoder.stop_id) == len(said)  # every policy turn ends on its own stop token
    out = rollout_output(episodes, decoder.stop_id)
    assert [len(c) for c in out["completion_ids"]] == [len(m) for m in out["env_mask"]]
    assert out["logprobs"] is None and len(out["outcome"]) == 2


def test_a_windowed_view_is_refused_by_name(tiny_checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    with pytest.raises(ViewNotIncremental, match="compact_window 4"):
        PolicyDecoder(None, tokenizer, CompactView(window=4), RolloutSettings())


def test_the_long_rl_preset_is_a_valid_recipe():
    preset = Path(__file__).resolve().parents[2] / "agentscaler_assets" / "presets" / "rl-long.yaml"
    fields = yaml.safe_load(preset.read_text())["ops"]["phase3_rl_model"]["config"]
    recipe = RLPhaseConfig(**fields).rl_config(TrainingSettings())
    assert recipe.max_steps == 200 and recipe.group_size == 8 and recipe.rewards == RewardWeights()


def test_an_interrupted_phase_resumes_from_its_newest_checkpoint(tiny_checkpoint, airline, tasks, tmp_path):
    init = tmp_path / "init"
    _biased_checkpoint(tiny_checkpoint, init)
    train = [
        RLTask(f"airline/{t.task_id}", t, airline.env, airline.path) for t in tasks if t.split == "train"
    ]
    rollout = RolloutSettings(max_turns=1, max_new_tokens=4)
    first = train_rl_phase(
        init,
        train[:2],
        tmp_path / "rl",
        RLConfig(max_steps=1, tasks_per_step=1, group_size=2, save_steps=1, rollout=rollout),
    )
    assert first.resumed_from is None and (tmp_path / "rl" / "checkpoint-1").is_dir()
    # The same folder asked for two steps: the first is not redone, only the second runs.
    again = train_rl_phase(
        init,
        train[:2],
        tmp_path / "rl",
        RLConfig(max_steps=2, tasks_per_step=1, group_size=2, save_steps=1, rollout=rollout),
    )
    assert again.resumed_from.endswith("checkpoint-1") and again.steps == 2 and again.episodes == 2
    assert [s for s, _ in again.reward_history] == [1, 2]
