"""`run_tau2`: score an agent on tau2-bench's airline, retail and telecom tasks with tau2's own
environments, orchestrator and evaluator.

tau2's `run_task` only builds agents from its registry and breaks for any agent that is not one of its
`LLMAgent` classes, and `run_tasks` asks on stdin whether to resume when its results file exists; so this
module drives tau2's `Orchestrator` directly, one simulation per (task, trial), writes nothing to disk, and
mirrors tau2's run loop where it matters for the numbers: one seed per trial drawn from `seed` as tau2
draws them, tau2's task loaders and splits, solo-mode task filtering, `evaluate_simulation` for the reward,
tau2's success threshold. A run that an agent or user breaks (an empty reply, unparsable call arguments)
is recorded as tau2's `agent_error` / `user_error` termination with reward 0, as tau2's
skip-failed-samples mode does; any other exception (an unreachable endpoint) propagates.

Modes: airline and retail need a user simulator (`user=` one of our `ChatBackend`s; without one the
result says so instead of scoring). Telecom without a user runs in tau2's solo mode: the agent gets the
ticket and the user's device tools, no user, fully offline. Every trajectory is also scored by
`evals.tau2.harness.harness_reward`, our own reading of tau2's rules, and the two must agree.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from envgen.llm.backends import ChatBackend
from evals.synthetic import Score, pass_hat_k, wilson_interval
from evals.tau2.agents import (
    GOLD_AGENT,
    SCRIPTED_USER,
    BackendAgent,
    BackendSoloAgent,
    BackendUser,
    GoldReplayAgent,
    GoldReplaySoloAgent,
    LoopThread,
    ScriptedUser,
)
from evals.tau2.compat import load_tau2
from evals.tau2.harness import (
    failure_category,
    harness_reward,
    trajectory_calls,
)

load_tau2()

from tau2.agent.base import AgentError, BaseAgent  # noqa: E402
from tau2.agent.llm_agent import LLMSoloAgent  # noqa: E402
from tau2.config import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS, DEFAULT_MAX_STEPS, DEFAULT_SEED  # noqa: E402
from tau2.data_model.message import ToolMessage  # noqa: E402
from tau2.data_model.simulation import RewardInfo, SimulationRun, TerminationReason  # noqa: E402
from tau2.data_model.tasks import RewardType, Task  # noqa: E402
from tau2.environment.environment import Environment  # noqa: E402
from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation  # noqa: E402
from tau2.metrics.agent_metrics import is_successful  # noqa: E402
from tau2.orchestrator.orchestrator import Orchestrator  # noqa: E402
from tau2.registry import registry  # noqa: E402
from tau2.user.base import BaseUser, UserError  # noqa: E402
from tau2.user.user_simulator import DummyUser  # noqa: E402
from tau2.utils.utils import get_now  # noqa: E402

DOMAINS = ("airline", "retail", "telecom")
GOLD = "gold"  # agent: replay the task's gold actions (the ceiling; for tests and harness checks)
STOP_AT_ONCE = "stop"  # agent, solo mode only: declare the ticket solved without acting (the solo floor)
SCRIPTED = "scripted"  # user: state the instructions once, then stop (tests and gold replay only)
SCORED = "scored"
NEEDS_USER = "needs_user_simulator"

AgentSpec = ChatBackend | Literal["gold", "stop"]
UserSpec = ChatBackend | Literal["scripted"] | None


@dataclass
class SimulationRecord:
    """One (task, trial): tau2's reward and breakdown, our harness's reward, and what happened.

    `simulation` is tau2's own `SimulationRun` (messages, reward info) for whoever wants to keep it; it is
    left out of `to_dict`.
    """

    task_id: str
    trial: int
    seed: int
    reward: float
    success: bool
    termination: str
    breakdown: dict[str, float]
    db_match: bool | None
    env_assertions: tuple[int, int]  # (met, checked)
    actions: tuple[int, int]  # (matched, gold)
    communicate: tuple[int, int]  # (said, required)
    nl_assertions_skipped: int  # NL assertions on the task, never evaluated (they need an LLM judge)
    nl_in_basis: bool  # the reward basis includes NL assertions: `reward` leaves them out
    harness_reward: float | None
    agrees: bool | None
    failure: str | None
    n_messages: int
    n_tool_calls: int
    n_tool_errors: int
    duration_s: float
    error: str | None = None
    simulation: SimulationRun | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The plain fields (not `simulation`: copying every trajectory would dominate the cost)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "simulation"}


@dataclass
class Tau2Result:
    """A tau2 run: per-simulation records and the summary a benchmark table needs.

    `status` is `scored`, or `needs_user_simulator` (airline / retail asked for without a user backend:
    no score, `note` says what to configure). `score` counts simulations (tasks x trials) with tau2's
    success rule (reward 1), with a Wilson interval; `pass_hat_k` is tau2's pass^k for k = 1..num_trials.
    """

    domain: str
    split: str
    mode: str  # "conversational" | "solo"
    agent: str
    user: str
    status: str
    num_trials: int
    task_ids: list[str]
    note: str = ""
    records: list[SimulationRecord] = field(default_factory=list)
    score: Score | None = None
    pass_hat_k: dict[int, float] = field(default_factory=dict)
    agreement: tuple[int, int] = (0, 0)  # (trajectories where harness and tau2 agree, trajectories checked)
    skipped_tasks: list[str] = field(default_factory=list)  # split tasks tau2 cannot run in this mode
    nl_assertion_tasks: list[str] = field(default_factory=list)  # tasks with NL assertions, not evaluated
    nl_required_tasks: list[str] = field(default_factory=list)  # ... whose reward basis includes them
    wall_s: float = 0.0

    @property
    def rewards(self) -> dict[str, list[float]]:
        """tau2's reward of every trial, by task."""
        out: dict[str, list[float]] = defaultdict(list)
        for r in sorted(self.records, key=lambda r: r.trial):
            out[r.task_id].append(r.reward)
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary and records (for `benchmarks/<name>/scores.json` and asset metadata)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("records", "score")}
        out["score"] = asdict(self.score) if self.score is not None else None
        out["pass_hat_k"] = {str(k): v for k, v in self.pass_hat_k.items()}
        out["rewards"] = self.rewards
        out["records"] = [r.to_dict() for r in self.records]
        return out


def load_tasks(domain: str, split: str = "test", task_ids: list[str] | None = None) -> list[Task]:
    """tau2's tasks of a domain's split (tau2 ships `base`, `train` and `test`; telecom also `small`,
    `full`), optionally only `task_ids` (in the split's order; an unknown id is an error, as in tau2)."""
    tasks = registry.get_tasks_loader(domain)(task_split_name=split)
    if task_ids is None:
        return tasks
    wanted = set(task_ids)
    missing = wanted - {t.id for t in tasks}
    if missing:
        raise ValueError(f"tasks not in tau2 {domain}/{split}: {sorted(missing)}")
    return [t for t in tasks if t.id in wanted]


def sample_task_ids(domain: str, split: str, n: int, seed: int = 0) -> list[str]:
    """A seeded subset of a split's task ids (all of them when the split has at most `n`)."""
    return seeded_subset([t.id for t in load_tasks(domain, split)], n, seed)


def seeded_subset(ids: list[str], n: int, seed: int = 0) -> list[str]:
    """`n` of `ids` drawn with `seed`, in their original order (all of them when there are at most `n`).

    Shared by every benchmark runner here so that a seed names the same subset whichever picks it."""
    return ids if len(ids) <= n else sorted(random.Random(seed).sample(ids, n), key=ids.index)


def trial_seeds(seed: int, num_trials: int) -> list[int]:
    """One seed per trial, the sequence tau2's `run_tasks` draws after `random.seed(seed)`."""
    rng = random.Random(seed)
    return [rng.randint(0, 1000000) for _ in range(num_trials)]


def supports_solo(domain: str) -> bool:
    """Whether tau2 can run the domain in solo mode (airline and retail refuse to build a solo env)."""
    try:
        registry.get_env_constructor(domain)(solo_mode=True)
    except ValueError:
        return False
    return True


def _label(spec: Any, none: str) -> str:
    if spec is None:
        return none
    if isinstance(spec, str):
        return {GOLD: GOLD_AGENT, STOP_AT_ONCE: "floor:stop-at-once", SCRIPTED: SCRIPTED_USER}[spec]
    return spec.name


def run_tau2(
    domain: str,
    agent: AgentSpec,
    user: UserSpec = None,
    *,
    split: str = "test",
    num_trials: int = 1,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_errors: int = DEFAULT_MAX_ERRORS,
    seed: int = DEFAULT_SEED,
    task_ids: list[str] | None = None,
    concurrency: int = DEFAULT_MAX_CONCURRENCY,
    solo: bool | None = None,
    agent_sampling: dict[str, Any] | None = None,
    user_sampling: dict[str, Any] | None = None,
    cross_check: bool = True,
    label: str | None = None,
) -> Tau2Result:
    """Run `agent` on tau2's `domain` tasks of `split`, `num_trials` times each, scored by tau2.

    `agent`: any `ChatBackend` (an `HFChatBackend` checkpoint, an `OpenAIChatBackend` endpoint,
    `DoNothingAgent` for the floor), `"gold"` (gold replay) or, in solo mode, `"stop"`. `user`: a
    `ChatBackend` playing tau2's user simulator, `"scripted"` (tests and gold replay only), or None.
    `solo`: None picks solo mode exactly when there is no user and the domain supports it (telecom).
    Defaults (`max_steps`, `max_errors`, `seed`, `concurrency`) are tau2's. `cross_check` also scores each
    trajectory with our harness (`agreement`). Nothing is written to disk and nothing reads stdin.
    `domain` may be any domain registered in tau2's registry (an environment constructor and a task
    loader under one name, as `evals.taubench` registers tau-bench v1 data); `label`, when given, is the
    name the result carries instead of that registry name.
    """
    if domain not in registry.get_domains():
        raise ValueError(f"unknown tau2 domain {domain!r}; tau2 has {registry.get_domains()}")
    if num_trials < 1 or max_steps < 1 or max_errors < 1 or concurrency < 1:
        raise ValueError("num_trials, max_steps, max_errors and concurrency must be positive")
    if isinstance(agent, str) and agent not in (GOLD, STOP_AT_ONCE):
        raise ValueError(f"agent must be a ChatBackend, {GOLD!r} or {STOP_AT_ONCE!r}, not {agent!r}")
    if isinstance(user, str) and user != SCRIPTED:
        raise ValueError(f"user must be a ChatBackend, {SCRIPTED!r} or None, not {user!r}")
    if solo is None:
        solo = user is None and supports_solo(domain)
    mode = "solo" if solo else "conversational"
    agent_label, user_label = _label(agent, ""), _label(user, "none (solo)" if solo else "none")
    if agent == STOP_AT_ONCE and not solo:
        raise ValueError('agent="stop" exists in solo mode only (a conversational agent cannot stop)')
    if solo and user is not None:
        raise ValueError("solo mode has no user: pass user=None")
    if solo and not supports_solo(domain):
        raise ValueError(f"tau2 has no solo mode for {domain}")
    tasks = load_tasks(domain, split, task_ids)
    base = Tau2Result(
        label or domain, split, mode, agent_label, user_label, SCORED, num_trials, [t.id for t in tasks]
    )
    if user is None and not solo:
        base.status = NEEDS_USER
        base.note = (
            f"{label or f'tau2 {domain}'} needs a user-simulator endpoint: pass user=<ChatBackend>, e.g. an "
            "OpenAIChatBackend on an OpenAI-compatible server (tau2 has no solo mode for this domain)"
        )
        return base
    if solo:
        base.skipped_tasks = [t.id for t in tasks if not LLMSoloAgent.check_valid_task(t)]
        tasks = [t for t in tasks if LLMSoloAgent.check_valid_task(t)]
        base.task_ids = [t.id for t in tasks]
    for t in tasks:
        criteria = t.evaluation_criteria
        if criteria is not None and criteria.nl_assertions:
            base.nl_assertion_tasks.append(t.id)
            if RewardType.NL_ASSERTION in criteria.reward_basis:
                base.nl_required_tasks.append(t.id)

    start = time.perf_counter()
    backends = [b for b in (agent, user) if b is not None and not isinstance(b, str)]
    bridge = LoopThread() if backends else None
    sim = _Simulator(domain, agent, user, solo, max_steps, max_errors, bridge, agent_sampling, user_sampling)
    jobs = [(task, trial, s) for trial, s in enumerate(trial_seeds(seed, num_trials)) for task in tasks]
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="tau2-sim") as pool:
            records = list(pool.map(lambda job: sim.run(*job, cross_check=cross_check), jobs))
    finally:
        if bridge is not None:
            bridge.close(backends)
    base.records = records
    base.wall_s = round(time.perf_counter() - start, 3)
    _summarise(base)
    return base


def _summarise(result: Tau2Result) -> None:
    """Score with Wilson interval, pass^k, terminations, failures and harness agreement."""
    records = result.records
    successes = sum(r.success for r in records)
    n = len(records)
    lo, hi = wilson_interval(successes, n)
    result.score = Score(
        agent=result.agent,
        n=n,
        successes=successes,
        rate=successes / n if n else 0.0,
        ci_low=lo,
        ci_high=hi,
        per_domain={result.domain: (successes, n)},
        terminations=dict(Counter(r.termination for r in records)),
        failures=dict(Counter(r.failure for r in records if r.failure)),
    )
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_task[r.task_id].append(r.success)
    result.pass_hat_k = {k: pass_hat_k(by_task, k) for k in range(1, result.num_trials + 1)}
    checked = [r for r in records if r.agrees is not None]
    result.agreement = (sum(r.agrees for r in checked), len(checked))


class _Simulator:
    """Builds and runs one tau2 simulation (environment, agent, user, orchestrator) and scores it."""

    def __init__(
        self,
        domain: str,
        agent: AgentSpec,
        user: UserSpec,
        solo: bool,
        max_steps: int,
        max_errors: int,
        bridge: LoopThread | None,
        agent_sampling: dict[str, Any] | None,
        user_sampling: dict[str, Any] | None,
    ) -> None:
        self.domain, self.agent, self.user, self.solo = domain, agent, user, solo
        self.max_steps, self.max_errors, self.bridge = max_steps, max_errors, bridge
        self.agent_sampling, self.user_sampling = agent_sampling, user_sampling
        self.make_env: Callable[..., Environment] = registry.get_env_constructor(domain)

    def _environment(self) -> Environment:
        return self.make_env(solo_mode=True) if self.solo else self.make_env()

    def _agent(self, env: Environment, task: Task) -> BaseAgent:
        tools, policy = env.get_tools(), env.get_policy()
        if self.solo:
            tools = tools + (env.get_user_tools() if env.user_tools is not None else [])
            if self.agent == GOLD:
                return GoldReplaySoloAgent(tools, policy, task)
            if self.agent == STOP_AT_ONCE:
                return GoldReplaySoloAgent(tools, policy, task, actions=[])
            return BackendSoloAgent(tools, policy, task, self.agent, self.bridge, self.agent_sampling)
        if self.agent == GOLD:
            return GoldReplayAgent(tools, policy, task)
        return BackendAgent(tools, policy, self.agent, self.bridge, self.agent_sampling)

    def _user(self, env: Environment, task: Task) -> BaseUser:
        if self.solo:
            return DummyUser()
        if self.user == SCRIPTED:
            return ScriptedUser(str(task.user_scenario.instructions))
        user_tools = env.get_user_tools() if env.user_tools is not None else None
        return BackendUser(user_tools, str(task.user_scenario), self.user, self.bridge, self.user_sampling)

    def run(self, task: Task, trial: int, seed: int, cross_check: bool = True) -> SimulationRecord:
        env = self._environment()
        orchestrator = Orchestrator(
            domain=self.domain,
            agent=self._agent(env, task),
            user=self._user(env, task),
            environment=env,
            task=task,
            max_steps=self.max_steps,
            max_errors=self.max_errors,
            seed=seed,
            solo_mode=self.solo,
        )
        error = None
        started = time.perf_counter()
        try:
            simulation = orchestrator.run()
        except (AgentError, UserError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            reason = (
                TerminationReason.AGENT_ERROR if isinstance(exc, AgentError) else TerminationReason.USER_ERROR
            )
            now = get_now()
            simulation = SimulationRun(
                id=f"{task.id}_{trial}_failed",
                task_id=task.id,
                start_time=now,
                end_time=now,
                duration=time.perf_counter() - started,
                termination_reason=reason,
                messages=orchestrator.get_trajectory(),
                seed=seed,
            )
        simulation.trial = trial
        simulation.reward_info = self._tau2_reward(simulation, task)
        return self._record(task, trial, seed, simulation, error, env if cross_check else None)

    def _tau2_reward(self, simulation: SimulationRun, task: Task) -> RewardInfo:
        """tau2's `evaluate_simulation`; for a task whose basis holds NL assertions (tau2 would need its
        LLM judge), the product of tau2's other evaluators over the rest of the basis."""
        criteria = task.evaluation_criteria
        if criteria is None or RewardType.NL_ASSERTION not in criteria.reward_basis:
            return evaluate_simulation(simulation, task, EvaluationType.ALL, self.solo, self.domain)
        kinds = {
            EvaluationType.ENV: {RewardType.DB, RewardType.ENV_ASSERTION},
            EvaluationType.ACTION: {RewardType.ACTION},
            EvaluationType.COMMUNICATE: {RewardType.COMMUNICATE},
        }
        reward, breakdown = 1.0, {}
        for kind, bases in kinds.items():
            if bases & set(criteria.reward_basis):
                part = evaluate_simulation(simulation, task, kind, self.solo, self.domain)
                reward *= part.reward
                breakdown.update(part.reward_breakdown or {})
        return RewardInfo(reward=reward, reward_breakdown=breakdown, info={"note": "NL assertions skipped"})

    def _record(
        self,
        task: Task,
        trial: int,
        seed: int,
        simulation: SimulationRun,
        error: str | None,
        final_env: Environment | None,
    ) -> SimulationRecord:
        """`final_env`: the environment the run left, for our harness's cross-check (None: no check)."""
        info = simulation.reward_info
        termination = TerminationReason(simulation.termination_reason).value
        breakdown = {RewardType(k).value: float(v) for k, v in (info.reward_breakdown or {}).items()}
        criteria = task.evaluation_criteria
        ours = agrees = None
        if final_env is not None:
            mine = harness_reward(self.domain, task, simulation.messages, termination, self.solo, final_env)
            ours, agrees = mine.reward, abs(mine.reward - info.reward) < 1e-9
        success = is_successful(info.reward)
        messages = simulation.messages
        tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
        return SimulationRecord(
            task_id=task.id,
            trial=trial,
            seed=seed,
            reward=float(info.reward),
            success=success,
            termination=termination,
            breakdown=breakdown,
            db_match=info.db_check.db_match if info.db_check is not None else None,
            env_assertions=_tally([c.met for c in info.env_assertions or []]),
            actions=_tally([c.action_match for c in info.action_checks or []]),
            communicate=_tally([c.met for c in info.communicate_checks or []]),
            nl_assertions_skipped=len((criteria.nl_assertions if criteria else None) or []),
            nl_in_basis=criteria is not None and RewardType.NL_ASSERTION in criteria.reward_basis,
            harness_reward=ours,
            agrees=agrees,
            failure=None if success else failure_category(task, messages, termination, breakdown),
            n_messages=len(messages),
            n_tool_calls=len(trajectory_calls(messages)),
            n_tool_errors=sum(m.error for m in tool_messages),
            duration_s=round(float(simulation.duration), 3),
            error=error,
            simulation=simulation,
        )


def _tally(flags: list[bool]) -> tuple[int, int]:
    return sum(flags), len(flags)
