"""`run_taubench`: score an agent on tau-bench v1's retail or airline tasks, from a checkout of
sierra-research/tau-bench, with v1's reward rule, through tau2's orchestrator and evaluator.

The run itself is `evals.tau2.runner.run_tau2` on the suite `load_taubench` registers, so everything
that holds for tau2 runs holds here: the gold replay (`agent="gold"` with `user="scripted"`), the
do-nothing floor (`DoNothingAgent()`), the harness cross-check on every trajectory, failure categories,
pass^k over trials, and `NEEDS_USER` without a user backend (v1's retail and airline are conversational:
a model must play the user). The result is a `Tau2Result` whose `domain` is `taubench_<domain>`.

Where the protocol around the reward differs from v1's own runner (the reward rule itself does not):
the agent and user prompts are tau2's (v1's wiki.md is the policy inside tau2's agent prompt; v1's
instruction is the scenario inside tau2's user-simulator guidelines); the tools offered are tau2's ports
(same names and arguments, tau2's descriptions; no `think`); v1 ends an episode as soon as the agent calls
`transfer_to_human_agents`, tau2 when the user simulator stops; `max_steps` counts tau2 orchestrator
steps (each message, about two per v1 agent action; v1's runner allowed 30 agent actions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.tau2.runner import (
    DEFAULT_MAX_STEPS,
    AgentSpec,
    Tau2Result,
    UserSpec,
    run_tau2,
    seeded_subset,
)
from evals.taubench.layout import check_domain
from evals.taubench.suite import load_taubench, load_v1_tasks


def _ids(task_ids: list[str | int] | None, known: list[str], domain: str, split: str) -> list[str] | None:
    """v1's task ids are indices; accept them as ints or strings and refuse unknown ones up front."""
    if task_ids is None:
        return None
    ids = [str(i) for i in task_ids]
    missing = sorted(set(ids) - set(known), key=lambda i: (len(i), i))
    if missing:
        raise ValueError(f"task ids not in tau-bench {domain}/{split} ({len(known)} tasks): {missing}")
    return ids


def run_taubench(
    root: Path | str,
    domain: str,
    agent: AgentSpec,
    user: UserSpec = None,
    *,
    split: str = "test",
    num_trials: int = 1,
    max_steps: int = DEFAULT_MAX_STEPS,
    seed: int = 0,
    task_ids: list[str | int] | None = None,
    **options: Any,
) -> Tau2Result:
    """Run `agent` on tau-bench v1's `domain` (`retail` / `airline`) tasks of `split`, from the checkout
    at `root`, `num_trials` times each, scored with v1's reward rule by tau2's evaluator.

    `agent`: a `ChatBackend` or `"gold"`; `user`: a `ChatBackend` playing the user, `"scripted"` (tests and
    the gold replay only), or None (then nothing is run: status `needs_user_simulator`). `task_ids`: v1
    task indices. `options` go to `run_tau2` as they are (`max_errors`, `concurrency`, `agent_sampling`,
    `user_sampling`, `cross_check`; tau2's defaults). The result's `note` names the source and lists the
    data fix-ups applied to v1's JSON (`evals.taubench.db`).
    """
    suite = load_taubench(root, domain, split)
    ids = _ids(task_ids, suite.task_ids, domain, split)
    result = run_tau2(
        suite.name,
        agent,
        user,
        split=split,
        num_trials=num_trials,
        max_steps=max_steps,
        seed=seed,
        task_ids=ids,
        solo=False,
        label=f"taubench_{domain}",
        **options,
    )
    source = f"tau-bench v1 {domain}/{split} from {suite.root} (tau2 registry name {suite.name})"
    conversions = "; ".join(suite.notes) or "none needed"
    result.note = " ".join(p for p in (result.note, f"{source}; data conversions: {conversions}.") if p)
    return result


def sample_task_ids(
    root: Path | str, domain: str, split: str = "test", n: int = 20, seed: int = 0
) -> list[str]:
    """A seeded subset of `n` of the split's task ids (all when it has at most `n`), read from the task
    file alone; the same seed picks the same subset as `evals.tau2.runner.sample_task_ids` would."""
    check_domain(domain)
    return seeded_subset([t.id for t in load_v1_tasks(root, domain, split)], n, seed)
