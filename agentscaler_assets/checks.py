"""Asset checks: each re-reads what an asset wrote under the storage root and tests one promise it makes.

The assets already test their output while they build it (tools are probed, gold calls replayed); the
checks test the files as they are now, so a snapshot edited by hand, tasks left over from an older
environment, a held-out task that reached a training set, a phase whose loss went up or a benchmark score
that fell show up in the UI next to the asset, with the evidence in the check's metadata.

Severity says what a failure means: ERROR for data that is wrong (blocking: in a run, the assets
downstream of a failed blocking check are not materialised), WARN for results that are worse than they
should be but still usable. `filtered_trajectories` has its funnel-yield check inside the asset
(`funnel_yield_in_bounds`), because it needs the verdicts the asset computes.
"""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from agentscaler_assets.artefacts import SCORES_FILE, TASKS_FILE, Artefact
from agentscaler_assets.contamination_assets import contamination_report
from agentscaler_assets.environment_assets import domain_environment, domain_tasks
from agentscaler_assets.evaluation_assets import benchmark_scores
from agentscaler_assets.experience_assets import sft_phase1_dataset, sft_phase2_dataset
from agentscaler_assets.partitions import benchmark_partitions, domain_partitions
from agentscaler_assets.resources import StorageRoot
from agentscaler_assets.scaling_assets import scaling_study
from agentscaler_assets.tables import markdown_table
from agentscaler_assets.training_assets import phase1_model, phase2_model, vertical_only_model
from envgen.environment.build import load_environment, prove_tool
from envgen.funnel.sft import heldout_leaks
from envgen.tasks.chains import Task, frame_to_tasks, replay
from evals.regression import score_changes
from train.launch import read_phase_result
from train.sft import PhaseResult

HISTORY_FILE = "scores.history.json"  # beside scores.json: the scores this check has already seen
HISTORY_LENGTH = 20


def _missing(what: Path, severity: AssetCheckSeverity, hint: str) -> AssetCheckResult:
    """A failed result for an input that is not there (rather than a check that crashes)."""
    return AssetCheckResult(
        passed=False,
        severity=severity,
        description=f"{what} does not exist: {hint}",
        metadata={"path": str(what)},
    )


@asset_check(asset=domain_environment, partitions_def=domain_partitions, blocking=True)
def every_tool_executes(context: AssetCheckExecutionContext, storage: StorageRoot) -> AssetCheckResult:
    """Every tool the stored environment offers runs on the stored snapshot: its program passes the static
    check and a probe call succeeds (writes change the state, missing arguments are refused), exactly the
    test the environment was built with (envgen.environment.build.prove_tool), re-run on the files."""
    folder = storage.domain_dir(context.partition_key)
    if not (folder / "environment.json").exists() or not (folder / "snapshot.sqlite").exists():
        return _missing(folder, AssetCheckSeverity.ERROR, "materialise domain_environment for this domain")
    env, snapshot = load_environment(folder)
    reasons = {t["name"]: prove_tool(env, snapshot, t["name"], i)[0] for i, t in enumerate(env.tools)}
    failing = {tool: reason for tool, reason in reasons.items() if reason is not None}
    return AssetCheckResult(
        passed=bool(reasons) and not failing,
        severity=AssetCheckSeverity.ERROR,
        description=None if reasons else "the environment offers no tool",
        metadata={
            "tools": len(reasons),
            "tools_failing": len(failing),
            "failures": MetadataValue.md(
                markdown_table(pl.DataFrame({"tool": list(failing), "reason": list(failing.values())}))
            )
            if failing
            else "none",
        },
    )


@asset_check(asset=domain_tasks, partitions_def=domain_partitions, blocking=True)
def gold_calls_reproduce_gold_state(
    context: AssetCheckExecutionContext, storage: StorageRoot
) -> AssetCheckResult:
    """Replaying each stored task's gold calls on a fresh copy of the stored snapshot ends in the task's
    gold final-state hash. Fails when the environment was re-built after the tasks (stale tasks) or a
    file was changed, since success of every rollout and benchmark is judged against that hash."""
    folder = storage.domain_dir(context.partition_key)
    if not (folder / TASKS_FILE).exists():
        return _missing(folder / TASKS_FILE, AssetCheckSeverity.ERROR, "materialise domain_tasks")
    env, snapshot = load_environment(folder)
    tasks = frame_to_tasks(pl.read_parquet(folder / TASKS_FILE))
    mismatched = [t for t in tasks if replay(env, snapshot, t.gold_calls) != t.gold_hash]
    return AssetCheckResult(
        passed=not mismatched,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "tasks": len(tasks),
            "mismatches": len(mismatched),
            "mismatched_tasks": MetadataValue.json([t.task_id for t in mismatched][:50]),
        },
    )


def heldout_tasks(storage: StorageRoot) -> list[Task]:
    """Held-out tasks of every domain folder on disk (retired domains included: their tasks may still be
    benchmark items, and a training set must not have seen them either)."""
    held: list[Task] = []
    for path in sorted(storage.artefact(Artefact.DOMAIN_FOLDERS).glob("*/tasks.parquet")):
        frame = pl.read_parquet(path).filter(pl.col("split") == "heldout")
        held += frame_to_tasks(frame)
    return held


def _heldout_leak_check(dataset: AssetsDefinition, sft_set: Artefact) -> AssetChecksDefinition:
    @asset_check(
        asset=dataset,
        name="no_heldout_task_in_training",
        blocking=True,
        description=(
            f"No held-out task (tasks.parquet rows with split = heldout, in any domain folder) is in "
            f"{'/'.join(sft_set.value)}, neither by task_id nor as the same user request under another id: a "
            "model trained on it would be scored on tasks it has seen."
        ),
    )
    def _check(storage: StorageRoot) -> AssetCheckResult:
        path = storage.artefact(sft_set)
        if not path.exists():
            return _missing(path, AssetCheckSeverity.ERROR, f"materialise {dataset.key.to_user_string()}")
        held = heldout_tasks(storage)
        leaks = heldout_leaks(pl.read_parquet(path), held)
        return AssetCheckResult(
            passed=not leaks,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "heldout_tasks": len(held),
                "leaked_rows": len(leaks),
                "leaks": MetadataValue.md(markdown_table(pl.DataFrame(leaks))) if leaks else "none",
            },
        )

    return _check


def loss_change(result: PhaseResult) -> tuple[float | None, float | None, str]:
    """(before, after, which loss): validation assistant-token loss before and after the phase, or, when
    the phase had no validation rows, the first and last logged training loss."""
    if result.val_assistant_loss_before is not None and result.val_assistant_loss_after is not None:
        return result.val_assistant_loss_before, result.val_assistant_loss_after, "validation assistant loss"
    history = result.train_loss_history
    if len(history) >= 2:
        return history[0][1], history[-1][1], "training loss, first vs last logged step"
    return None, None, "none recorded"


def _loss_went_down_check(model: AssetsDefinition, folder: str) -> AssetChecksDefinition:
    @asset_check(
        asset=model,
        name="loss_went_down",
        description=(
            f"Training lowered the loss of models/{folder}: validation assistant-token loss after the phase "
            "is below the loss before it (training loss first vs last when there is no validation split)."
        ),
    )
    def _check(storage: StorageRoot) -> AssetCheckResult:
        out = storage.artefact(Artefact.MODELS, folder)
        try:
            result = read_phase_result(out)
        except FileNotFoundError as exc:
            return _missing(out, AssetCheckSeverity.WARN, str(exc))
        before, after, which = loss_change(result)
        return AssetCheckResult(
            passed=before is not None and after is not None and after < before,
            severity=AssetCheckSeverity.WARN,
            description=None if before is not None else f"models/{folder}: no loss recorded by the phase",
            metadata={
                "loss": which,
                "before": before,
                "after": after,
                "change": None if before is None or after is None else round(after - before, 4),
                "steps": result.global_step,
            },
        )

    return _check


def _read_history(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else []


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(history[-HISTORY_LENGTH:], indent=1))
    tmp.replace(path)


@asset_check(asset=benchmark_scores, partitions_def=benchmark_partitions)
def no_score_regression(context: AssetCheckExecutionContext, storage: StorageRoot) -> AssetCheckResult:
    """No model's success rate fell below the previous materialisation's beyond both 95% intervals (the
    new interval lies wholly below the old one; evals.regression). The check keeps the scores it has
    seen in `scores.history.json` beside `scores.json`; running it again on the same scores compares
    them with the ones before, so a re-run never turns a failure into a pass."""
    out = storage.artefact(Artefact.BENCHMARKS, context.partition_key)
    scores_path = out / SCORES_FILE
    if not scores_path.exists():
        return _missing(scores_path, AssetCheckSeverity.WARN, "materialise benchmark_scores")
    raw = scores_path.read_bytes()
    current, fingerprint = json.loads(raw), hashlib.sha1(raw).hexdigest()[:16]
    history_path = out / HISTORY_FILE
    history = _read_history(history_path)
    if history and history[-1]["fingerprint"] == fingerprint:
        previous = history[-2] if len(history) > 1 else None
    else:
        previous = history[-1] if history else None
        history.append(
            {"fingerprint": fingerprint, "seen_at": datetime.now(UTC).isoformat(), "scores": current}
        )
        _write_history(history_path, history)
    if previous is None:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description="first scores of this benchmark: nothing to compare with yet",
            metadata={"compared_with": "none"},
        )
    changes = score_changes(previous["scores"], current)
    regressed = [r["model"] for r in changes if r["regressed"]]
    return AssetCheckResult(
        passed=not regressed,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "compared_with": f"scores seen at {previous['seen_at']}",
            "regressed": MetadataValue.json(regressed),
            "changes": MetadataValue.md(markdown_table(pl.DataFrame(changes))) if changes else "none",
        },
    )


@asset_check(asset=contamination_report)
def no_exact_benchmark_duplicate(storage: StorageRoot) -> AssetCheckResult:
    """No synthesized tool has the name and the parameter names of a benchmark tool. A failure is a WARN:
    the data stays usable, and `SftConfig.exclude_contaminated` can drop the examples that call them."""
    path = storage.artefact(Artefact.CONTAMINATION_PAIRS)
    if not path.exists():
        return _missing(path, AssetCheckSeverity.WARN, "materialise contamination_report")
    exact = pl.read_parquet(path).filter(pl.col("kind") == "exact")
    pairs = exact.select("benchmark", "benchmark_tool", "synthesized_tool", "domain", "similarity")
    return AssetCheckResult(
        passed=exact.height == 0,
        severity=AssetCheckSeverity.WARN,
        description=f"{exact.height} synthesized tool(s) duplicate a benchmark tool exactly"
        if exact.height
        else "no exact duplicate of a benchmark tool",
        metadata={
            "exact_duplicates": exact.height,
            "pairs": MetadataValue.md(markdown_table(pairs)) if exact.height else "none",
        },
    )


@asset_check(asset=scaling_study)
def largest_subset_matches_phase2(storage: StorageRoot) -> AssetCheckResult:
    """The study's largest subset (all general domains when the fractions reach 1.0) scores, on the held-out
    synthetic tasks, within its 95% interval of the main phase-2 model's score there. A miss means the
    study's budget or recipe differs from the main run's enough to matter, so the curve must be read as
    the study's own, not as the main model's."""
    study_path = storage.artefact(Artefact.SCALING_RESULT)
    scores_path = storage.artefact(Artefact.BENCHMARKS, "synthetic_heldout", SCORES_FILE)
    for path, hint in ((study_path, "materialise scaling_study"), (scores_path, "score synthetic_heldout")):
        if not path.exists():
            return _missing(path, AssetCheckSeverity.WARN, hint)
    study = json.loads(study_path.read_text())
    largest = study["subsets"][-1]["subset"]
    mine = next(r for r in study["scores"] if r["model"] == largest and r["benchmark"] == "synthetic_heldout")
    phase2 = next((s for s in json.loads(scores_path.read_text()) if s["agent"] == "phase2"), None)
    if phase2 is None:
        return _missing(scores_path, AssetCheckSeverity.WARN, "it has no phase2 score: score phase2")
    inside = mine["ci95_low"] <= phase2["rate"] <= mine["ci95_high"]
    return AssetCheckResult(
        passed=inside,
        severity=AssetCheckSeverity.WARN,
        description=f"{largest}: {mine['success']:.3f} [{mine['ci95_low']:.3f}, {mine['ci95_high']:.3f}] "
        f"on {mine['n']} tasks; main phase 2: {phase2['rate']:.3f} on {phase2['n']}",
        metadata={
            "largest_subset": largest,
            "subset_success": mine["success"],
            "subset_ci95": f"[{mine['ci95_low']}, {mine['ci95_high']}]",
            "phase2_success": round(phase2["rate"], 4),
            "same_task_count": mine["n"] == phase2["n"],
        },
    )


phase1_loss_went_down = _loss_went_down_check(phase1_model, "phase1")
phase2_loss_went_down = _loss_went_down_check(phase2_model, "phase2")
vertical_only_loss_went_down = _loss_went_down_check(vertical_only_model, "vertical_only")
sft_phase1_no_heldout = _heldout_leak_check(sft_phase1_dataset, Artefact.SFT_PHASE1)
sft_phase2_no_heldout = _heldout_leak_check(sft_phase2_dataset, Artefact.SFT_PHASE2)

ALL_CHECKS: list[AssetChecksDefinition] = [
    every_tool_executes,
    gold_calls_reproduce_gold_state,
    sft_phase1_no_heldout,
    sft_phase2_no_heldout,
    phase1_loss_went_down,
    phase2_loss_went_down,
    vertical_only_loss_went_down,
    no_score_regression,
    no_exact_benchmark_duplicate,
    largest_subset_matches_phase2,
]
