"""ACEBench (tool-use benchmark: normal, special and agent categories) scored by its own rules.

    data = load_acebench("/path/to/ACEBench", language="en")
    result = run_acebench(data, "normal", agent)          # agent: a ChatBackend, or "gold"
    result.to_dict()

See `runner` for the result, `checker` for the judging rules, `agent` and `apps` for the agent category.
"""

from evals.acebench.data import (
    AceBenchData,
    AceBenchDataNotFound,
    AceBenchFormatError,
    AceBenchItem,
    load_acebench,
)
from evals.acebench.runner import (
    FAILURE_CATEGORIES,
    NEEDS_USER,
    SCORED,
    AceBenchResult,
    ItemRecord,
    arun_acebench,
    run_acebench,
)
from evals.acebench.schema import acebench_tool_schemas

__all__ = [
    "FAILURE_CATEGORIES",
    "NEEDS_USER",
    "SCORED",
    "AceBenchData",
    "AceBenchDataNotFound",
    "AceBenchFormatError",
    "AceBenchItem",
    "AceBenchResult",
    "ItemRecord",
    "acebench_tool_schemas",
    "arun_acebench",
    "load_acebench",
    "run_acebench",
]
