"""Where the main job's time goes: every stage and every asset step, in seconds, from one run.

Runs the main job (`agentscaler run`'s own `run_main_job`) against a fresh Dagster instance in a temporary
folder, or reads the runs already recorded in `--home` (a `DAGSTER_HOME` after `agentscaler run`), and
prints two tables from the instance's own event log: seconds per stage (the domain stage summed over its
partitions, each benchmark partition on its own), and seconds per asset step (training's phases apart).

    .venv/bin/python benchmarks/main_job_stages.py                     # run the main job, then report
    .venv/bin/python benchmarks/main_job_stages.py --home .dagster_home  # report a run already made
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}


def step_seconds(instance: DagsterInstance) -> tuple[dict[str, float], dict[str, float]]:
    """(seconds per stage, seconds per step key), from every run recorded in the instance."""
    per_stage: dict[str, float] = defaultdict(float)
    per_step: dict[str, float] = defaultdict(float)
    for run in instance.get_runs():
        stage = run.tags.get("agentscaler/stage", "other")
        label = (
            stage
            if stage in ("catalog", "domain", "training", "rl", "studies")
            else f"{stage}:{run.tags.get('dagster/partition', '-')}"
        )
        started: dict[str, float] = {}
        first = last = None
        for event in instance.all_logs(run.run_id):
            first = event.timestamp if first is None else first
            last = event.timestamp
            if not event.is_dagster_event or event.dagster_event.event_type not in STEP_EVENTS:
                continue
            key = event.step_key or "-"
            if event.dagster_event.event_type == DagsterEventType.STEP_START:
                started[key] = event.timestamp
            elif key in started:
                per_step[key] += event.timestamp - started.pop(key)
        if first is not None:
            per_stage[label] += last - first
    return dict(per_stage), dict(per_step)


def _table(title: str, seconds: dict[str, float]) -> None:
    total = sum(seconds.values())
    print(f"\n{title:<52} {'seconds':>9} {'share':>7}")
    for key, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{key:<52} {s:9.1f} {s / total:7.1%}")
    print(f"{'total':<52} {total:9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="a DAGSTER_HOME whose recorded runs to report (no new run)")
    args = ap.parse_args()
    if args.home is None:
        home = Path(tempfile.mkdtemp(prefix="agentscaler-stages-"))
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(home)
        from agentscaler_assets.main_job import run_main_job

        start = time.perf_counter()
        with DagsterInstance.get() as instance:
            report = run_main_job(instance)
        took = time.perf_counter() - start
        print(f"main job {'succeeded' if report.ok else 'FAILED'} in {took:.0f}s, instance {home}")
    else:
        os.environ["DAGSTER_HOME"] = str(args.home.resolve())
    with DagsterInstance.get() as instance:
        per_stage, per_step = step_seconds(instance)
    _table("stage (runs; domain = all partitions)", per_stage)
    _table("asset step (summed over partitions)", per_step)


if __name__ == "__main__":
    main()
