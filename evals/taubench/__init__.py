"""tau-bench v1 (sierra-research/tau-bench) retail and airline, from a checkout the caller points at,
scored with v1's reward rule through tau2's orchestrator and evaluator (`evals.tau2`).

`run_taubench` is the entry point (`evals.taubench.runner`); `load_taubench` turns a checkout's domain
and split into tau2 tasks and a tau2 environment (`evals.taubench.suite`), reading v1's task files with
`ast` (`evals.taubench.tasks`) and its JSON data into tau2's database models (`evals.taubench.db`);
`evals.taubench.layout` knows where a checkout keeps what, and defines the errors. No tau-bench code is
imported or run, and no tau-bench data is shipped here. Importing this package does not import tau2;
the names below that need it load it on first use.
"""

from __future__ import annotations

from typing import Any

from evals.taubench.layout import DOMAINS, TauBenchDataError, TauBenchDataNotFound, TauBenchFormatError

_LAZY = {
    "run_taubench": "runner",
    "sample_task_ids": "runner",
    "load_taubench": "suite",
    "taubench_tool_schemas": "suite",
    "TauBenchSuite": "suite",
}

__all__ = ["DOMAINS", "TauBenchDataError", "TauBenchDataNotFound", "TauBenchFormatError", *_LAZY]


def __getattr__(name: str) -> Any:
    """`from evals.taubench import run_taubench` imports the module (and tau2) only then."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"evals.taubench.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'evals.taubench' has no attribute {name!r}")
