"""Training tokens/s with and without packing, on the same SFT rows, measured side by side in one run.

The rows are real: scripted-teacher conversations in bundled domains, rendered with the tiny model's chat
template (each carries its domain's ~13 tool schemas, so rows are long and their lengths vary). Three
batching modes train the same model from the same base for the same rows:

- `padded`: batches of `--batch` rows padded to the longest;
- `one_row`: one row per micro-batch, accumulating `--batch` of them (no padding at all; the default
  laptop recipe);
- `packed`: TRL's best-fit-decreasing packing into sequences of `--max-length` tokens, padding-free.

tokens/s counts non-padding tokens only, so the ratios say how much useful work each mode gets done.
Packed rows never attend to each other: transformers turns the reset position ids into a block-diagonal
mask. With SDPA (CPU) that mask is dense, so a pack costs attention over its whole length; FlashAttention's
variable-length kernels (GPU) cost only each row's own. Which mode wins is what this benchmark measures, on
the hardware it runs on.

    .venv/bin/python benchmarks/training_throughput.py [--domains airline retail] [--steps 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from envgen.environment.bundled import build_bundled_domain
from envgen.funnel.sft import to_row
from envgen.simulate.rollout import run_rollouts
from envgen.simulate.scripted import ErrorModel, ScriptedTeacher, ScriptedUser
from envgen.tasks.chains import TaskConfig, sample_tasks
from train.model import TinyModelConfig, build_tiny_base
from train.sft import PhaseConfig, train_phase


def sft_rows(domains: list[str], chains: int, folder: Path) -> list[dict]:
    """Scripted-teacher conversations (error-free) in the given bundled domains, as SFT dicts."""
    rows = []
    for slug in domains:
        env, db, edges = build_bundled_domain(slug, folder / slug)
        tasks = sample_tasks(env, db, edges, TaskConfig(n_chains=chains)).tasks
        trajs = asyncio.run(
            run_rollouts(
                tasks,
                env,
                db,
                lambda t, r: ScriptedTeacher(t, ErrorModel(0, 0, 0, 0, 0), seed=r),
                lambda t, r: ScriptedUser(t),
                k=1,
                journal=folder / f"{slug}.jsonl",
            )
        )
        for t in trajs:
            row = to_row(t, recovered=False)
            rows.append({"messages": json.loads(row["messages"]), "tools": json.loads(row["tools"])})
    return rows


MODES = {
    "padded": lambda batch: {"per_device_train_batch_size": batch, "gradient_accumulation_steps": 1},
    "one_row": lambda batch: {"per_device_train_batch_size": 1, "gradient_accumulation_steps": batch},
    "packed": lambda batch: {
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "packing": True,
    },
}


def _quiet() -> None:
    """Progress bars of datasets and transformers would bury the table."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domains", nargs="+", default=["airline", "retail"])
    parser.add_argument("--chains", type=int, default=30, help="tasks sampled per domain")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per mode")
    parser.add_argument("--batch", type=int, default=8, help="rows per optimizer step (padded, one_row)")
    parser.add_argument("--max-length", type=int, default=8192)
    args = parser.parse_args(argv)
    _quiet()
    folder = Path(tempfile.mkdtemp())
    rows = sft_rows(args.domains, args.chains, folder)
    texts = [json.dumps(r) for r in rows]
    base = folder / "base"
    build_tiny_base(texts, base, TinyModelConfig(max_position_embeddings=args.max_length))
    print(f"{len(rows)} rows from {', '.join(args.domains)}; {args.steps} optimizer steps per mode")
    print(f"{'mode':>8} {'steps':>6} {'tokens':>9} {'seconds':>8} {'tokens/s':>9} {'vs padded':>10}")
    padded_rate = None
    for mode, settings in MODES.items():
        cfg = PhaseConfig(
            max_steps=args.steps,
            max_length=args.max_length,
            logging_steps=args.steps,
            save_steps=10**6,
            **settings(args.batch),
        )
        result = train_phase(base, rows, [], folder / mode, cfg)
        rate = result.tokens_per_second
        padded_rate = padded_rate or rate
        print(
            f"{mode:>8} {result.global_step:>6} {result.total_tokens_seen:>9} {result.wall_seconds:>8.1f} "
            f"{rate:>9.0f} {rate / padded_rate:>9.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
