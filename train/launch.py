"""One SFT phase from files, in this process or as its own process under ``accelerate launch``.

Both paths run :func:`run_phase_from_files`, so a laptop run (in-process, CPU) and a multi-GPU run
(``accelerate launch --num_processes 8 -m train.launch ...``, DeepSpeed or FSDP through an accelerate
config file) train the same rows with the same recipe and leave the same ``phase_result.json`` beside the
checkpoint, which the Dagster asset reads back. Under ``accelerate`` every process trains its shard and only
the main process writes.

    python -m train.launch --init models/base --data sft/sft_phase1.parquet --out models/phase1 \\
        --config '{"learning_rate": 1e-5, "num_train_epochs": 2}'
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from envgen.funnel.sft import load_rows
from train.sft import PhaseConfig, PhaseResult, train_phase

RESULT_FILE = "phase_result.json"


def phase_rows(sft_path: Path, max_validation_rows: int) -> tuple[list[dict], list[dict]]:
    """Train and validation rows of an SFT set; validation capped at ``max_validation_rows`` (-1: all),
    evenly spread over the split so every domain stays represented."""
    train_rows, val_rows = load_rows(sft_path, "train"), load_rows(sft_path, "validation")
    cap = max_validation_rows
    if 0 <= cap < len(val_rows):
        val_rows = [val_rows[i * len(val_rows) // cap] for i in range(cap)]
    return train_rows, val_rows


def run_phase_from_files(
    init_dir: Path, sft_path: Path, out_dir: Path, cfg: PhaseConfig, max_validation_rows: int
) -> PhaseResult:
    """Train one phase and record its result in ``out_dir/phase_result.json`` (main process only)."""
    train_rows, val_rows = phase_rows(sft_path, max_validation_rows)
    result = train_phase(init_dir, train_rows, val_rows, out_dir, cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        (Path(out_dir) / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=1, default=str))
    return result


def read_phase_result(out_dir: Path) -> PhaseResult:
    """The result a finished phase left beside its checkpoint."""
    path = Path(out_dir) / RESULT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no phase result (the phase did not finish)")
    data = json.loads(path.read_text())
    for key in ("train_loss_history", "val_loss_history"):
        data[key] = [tuple(p) for p in data[key]]
    return PhaseResult(**data)


def accelerate_command(
    init_dir: Path,
    sft_path: Path,
    out_dir: Path,
    cfg: PhaseConfig,
    max_validation_rows: int,
    num_processes: int,
    config_file: str = "",
    cpu: bool = False,
) -> list[str]:
    """The ``accelerate launch`` command line for one phase.

    ``config_file`` (from ``accelerate config``) carries DeepSpeed/FSDP and multi-node settings; without it
    accelerate's defaults apply (multi-GPU data parallel when ``num_processes`` > 1). ``cpu`` forces a CPU
    run, which is how the command is checked on machines without GPUs.
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    if config_file:
        cmd += ["--config_file", config_file]
    if cpu:
        cmd += ["--cpu"]
    if num_processes > 1 and not config_file:
        cmd += ["--multi_gpu"]
    return cmd + [
        "-m",
        "train.launch",
        "--init",
        str(init_dir),
        "--data",
        str(sft_path),
        "--out",
        str(out_dir),
        "--max-validation-rows",
        str(max_validation_rows),
        "--config",
        json.dumps(asdict(cfg)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--init", required=True, type=Path, help="HF folder to start from")
    parser.add_argument("--data", required=True, type=Path, help="SFT Parquet with a split column")
    parser.add_argument("--out", required=True, type=Path, help="HF folder to write (checkpoints inside)")
    parser.add_argument("--config", default="{}", help="PhaseConfig fields as JSON")
    parser.add_argument("--max-validation-rows", type=int, default=-1)
    args = parser.parse_args(argv)
    try:
        cfg = PhaseConfig(**json.loads(args.config))
    except (TypeError, ValueError) as exc:
        parser.error(f"--config: {exc}")
    run_phase_from_files(args.init, args.data, args.out, cfg, args.max_validation_rows)
    return 0


if __name__ == "__main__":
    # Progress lines on stderr, which the Dagster asset forwards to the run log.
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    sys.exit(main())
