"""`agentscaler run`: the main job from the shell, recorded in the Dagster instance (see `dagster dev`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

PRESETS = Path(__file__).parent / "presets"


def _instance_home() -> Path:
    """DAGSTER_HOME, defaulting to `./.dagster_home` so runs persist and `dagster dev` shows them."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # runs offline: no telemetry, and no notice about a missing file
        config.write_text("telemetry:\n  enabled: false\n")
    return home


def with_preset(profile: str, run_config: dict) -> dict:
    """`run_config` over the profile's preset (agentscaler_assets/presets/<profile>.yaml, when there is one):
    per asset, a config key the user gives wins; `main_job` likewise."""
    preset_file = PRESETS / f"{profile}.yaml"
    if not preset_file.is_file():
        return run_config
    preset = yaml.safe_load(preset_file.read_text())
    merged = {**preset, **{k: v for k, v in run_config.items() if k not in ("ops", "main_job")}}
    merged["main_job"] = {**preset.get("main_job", {}), **run_config.get("main_job", {})}
    ops = {name: dict(op) for name, op in preset.get("ops", {}).items()}
    for name, op in run_config.get("ops", {}).items():
        config = {**ops.get(name, {}).get("config", {}), **op.get("config", {})}
        ops[name] = {**ops.get(name, {}), **op, "config": config}
    merged["ops"] = ops
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentscaler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialise the whole lineage: catalog → domains → models → scores")
    run.add_argument("--config", type=Path, help="YAML run config ({ops: {asset_name: {config: ...}}})")
    run.add_argument(
        "--force", action="store_true", help="rebuild every asset, even those that are up to date"
    )
    run.add_argument(
        "--profile",
        choices=["local", "smoke", "large", "pretrained", "endpoint", "cluster"],
        help="overrides AGENTSCALER_PROFILE",
    )
    args = parser.parse_args(argv)

    if args.profile:
        os.environ["AGENTSCALER_PROFILE"] = args.profile
    home = _instance_home()
    run_config = with_preset(
        os.environ.get("AGENTSCALER_PROFILE", "local"),
        yaml.safe_load(args.config.read_text()) if args.config else {},
    )

    from dagster import DagsterInstance

    from agentscaler_assets.freshness import Verdict, verdict_lines
    from agentscaler_assets.main_job import run_main_job
    from agentscaler_assets.resources import default_home

    print(f"Dagster instance: {home}\nAsset storage:    {default_home()}", flush=True)
    start = time.perf_counter()

    def on_run(stage: str, partition: str, ok: bool, seconds: float) -> None:
        print(f"  {stage:<11} {partition:<18} {'ok' if ok else 'FAILED':<7} {seconds:7.1f}s", flush=True)

    def on_verdicts(stage: str, partition: str, verdicts: list[Verdict]) -> None:
        for line in verdict_lines(verdicts):
            print(f"  {stage:<11} {partition:<18} {line}", flush=True)

    try:
        with DagsterInstance.get() as instance:
            report = run_main_job(
                instance, run_config, on_run=on_run, force=args.force, on_verdicts=on_verdicts
            )
    except FileNotFoundError as exc:  # a configured spec source that is not there: nothing was run
        print(f"agentscaler run: {exc}", file=sys.stderr)
        return 2
    total = time.perf_counter() - start
    if report.skipped:
        print(f"skipped, as the run config's main_job.skip says: {', '.join(report.skipped)}")
    if report.failed:
        print(f"failed: {', '.join(report.failed)} (their errors are in the runs above and in dagster dev)")
        went_on = any(stage not in ("catalog", "domain") for stage, *_ in report.runs)
        if went_on and any(f.startswith("domain:") for f in report.failed):
            print(
                "the later stages ran without the failed domains; `agentscaler run` again retries only "
                "those partitions and what depends on them"
            )
    print(
        f"main job {'succeeded' if report.ok else 'FAILED'} in {total:.0f}s: {report.materialised} asset "
        f"materialisations in {len(report.runs)} runs, {report.up_to_date} up to date and skipped; "
        f"browse it with: DAGSTER_HOME={home} dagster dev",
        flush=True,
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
