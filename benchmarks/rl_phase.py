"""Phase 3 (RL) against phase 2, side by side, on a finished run: what GRPO adds, with intervals.

Trains the RL phase from the run's phase-2 model exactly as `phase3_rl_model` does (its training tasks,
its default recipe unless `--config` overrides fields of `RLPhaseConfig`) into a scratch folder, then
scores phase 2 and the RL model on the run's held-out synthetic suite with `benchmark_scores`'s own
defaults (whole tasks with the scripted user, and the graded next-turn metric), and prints the reward curve
and one table: whole-task success on vertical and general held-out tasks and the graded tool-name and
name + arguments accuracy, each with its Wilson 95% interval. The run's own folders are only read.

    .venv/bin/python benchmarks/rl_phase.py --storage .dagster_home/agentscaler
    .venv/bin/python benchmarks/rl_phase.py --storage ... --config '{"max_steps": 16}'
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from agentscaler_assets.evaluation_assets import BenchmarkConfig, synthetic_suite
from agentscaler_assets.resources import StorageRoot, TrainingSettings
from agentscaler_assets.rl_assets import RLPhaseConfig, train_rl_model
from envgen.llm.hf_backend import HFChatBackend
from evals.suites import SuiteOptions, run_suite


def _interval(solved: int, n: int, low: float, high: float) -> str:
    return f"{solved}/{n} = {solved / n if n else 0:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--storage", type=Path, required=True, help="AGENTSCALER_HOME of a finished run")
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--config", default="{}", help="RLPhaseConfig fields as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    storage = StorageRoot(root=str(args.storage))
    out = args.out or Path(tempfile.mkdtemp(prefix="rl_phase_"))
    config = RLPhaseConfig(**json.loads(args.config))
    training = TrainingSettings()
    phase2 = storage.path("models", "phase2")
    started = time.perf_counter()
    result = train_rl_model(storage, training, config, phase2, out / "phase3_rl")
    print(
        f"RL: {result.steps} steps, {result.episodes} episodes on {result.training_tasks} training tasks, "
        f"{time.perf_counter() - started:.0f} s, {result.tokens_per_second:.0f} sampled tokens/s"
    )
    for step, reward in result.reward_history:
        terms = {name: round(dict(h).get(step, float("nan")), 3) for name, h in result.term_histories.items()}
        print(f"  step {step:3d}: reward {reward:+.3f}  {terms}")
    bench = BenchmarkConfig()
    agents = {
        name: HFChatBackend(
            folder, max_new_tokens=bench.max_new_tokens, guided_tool_names=bench.guided_tool_names
        )
        for name, folder in (("phase2", phase2), ("phase3_rl", out / "phase3_rl"))
    }
    options = SuiteOptions(
        seed=bench.seed,
        max_agent_turns=bench.max_agent_turns,
        graded_turns_per_group=bench.graded_turns_per_group,
    )
    started = time.perf_counter()
    report = run_suite(
        "synthetic_heldout",
        agents,
        out / "synthetic_heldout",
        options,
        synthetic=synthetic_suite(storage, bench),
    )
    print(f"synthetic_heldout scored in {time.perf_counter() - started:.0f} s")
    whole = {(r["model"], r["group"]): r for r in report.tables["vertical_vs_general"]}
    graded = report.json["tool_call_accuracy"]
    print(
        "| agent | vertical whole tasks | general whole tasks | vertical: tool name | vertical: name + args |"
        " general: tool name |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("floor", *agents):
        cells = []
        for group in ("vertical", "general"):
            r = whole.get((name, group))
            cells.append(_interval(r["solved"], r["n"], r["ci95_low"], r["ci95_high"]) if r else "-")
        for group, metric in (("vertical", "name"), ("vertical", "name_arguments"), ("general", "name")):
            m = graded.get(name, {}).get(group, {}).get(metric)
            cells.append(f"{m['rate']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]" if m else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
