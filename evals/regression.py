"""Score regressions between two materialisations of a benchmark: drops that the intervals cannot explain.

Scores on a few dozen held-out tasks move by several points from one re-synthesis to the next by chance
alone, so a drop counts as a regression only when it is larger than both runs' uncertainty: the new 95%
interval lies entirely below the old one (the two intervals do not even touch). Smaller drops are listed
but not flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The do-nothing agent's score measures the task suite (how many tasks need no write), not a model, so a
# change of it is reported but never called a regression.
FLOOR = "floor"


def score_changes(
    previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per model scored in both runs: old and new rate with intervals, and whether it regressed.

    Rows are `Score` dicts as `benchmark_scores` writes them to `scores.json` (`agent`, `rate`, `ci_low`,
    `ci_high`, ...). Models present in only one of the runs, or not scored in one of them (a benchmark
    that needed a user simulator it did not have), are left out: nothing to compare.
    """
    before = {s["agent"]: s for s in previous if "rate" in s}
    rows = []
    for now in current:
        old = before.get(now["agent"])
        if old is None or "rate" not in now:
            continue
        regressed = now["agent"] != FLOOR and now["rate"] < old["rate"] and now["ci_high"] < old["ci_low"]
        rows.append(
            {
                "model": now["agent"],
                "previous": round(old["rate"], 3),
                "previous_ci95": f"[{old['ci_low']:.3f}, {old['ci_high']:.3f}]",
                "current": round(now["rate"], 3),
                "current_ci95": f"[{now['ci_low']:.3f}, {now['ci_high']:.3f}]",
                "change": round(now["rate"] - old["rate"], 3),
                "regressed": regressed,
            }
        )
    return rows
