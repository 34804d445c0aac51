"""tau2-bench (airline, retail, telecom) through tau2's own environments, orchestrator and evaluator, with
any of our `ChatBackend`s as the agent and as the user simulator.

`run_tau2` is the entry point (`evals.tau2.runner`); the tau2 agent and user classes are in
`evals.tau2.agents`, our independent reading of tau2's reward and the failure categories in
`evals.tau2.harness`, and the offline, litellm-free import of tau2 in `evals.tau2.compat`. Importing this
package does not import tau2 (so `tau2_missing_reason()` can be asked first where it may be absent); the
runner's names below are loaded, with tau2, on first use.
"""

from __future__ import annotations

from typing import Any

from evals.tau2.compat import tau2_missing_reason

_RUNNER = ("run_tau2", "Tau2Result", "SimulationRecord", "load_tasks", "sample_task_ids", "DOMAINS")
_RUNNER += ("GOLD", "STOP_AT_ONCE", "SCRIPTED", "SCORED", "NEEDS_USER", "supports_solo")

__all__ = ["tau2_missing_reason", *_RUNNER]


def __getattr__(name: str) -> Any:
    """`from evals.tau2 import run_tau2` imports the runner (and tau2) only then."""
    if name in _RUNNER:
        from evals.tau2 import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'evals.tau2' has no attribute {name!r}")
