"""Which model shape and view learn tool calling within minutes: a side-by-side sweep on a finished run.

Reads the SFT sets of a materialised storage root (`agentscaler run` writes one), trains, for every
configuration given, phase 1 on the general set and phase 2 from it on the vertical set with a fixed step
budget, and scores the graded next-turn metric (`evals.tool_calls`) on the *validation* dialogues of both
sets (never on held-out tasks: choices are made here, so the held-out scores stay unbiased). Prints one
row per configuration: parameters, train seconds, tokens/s, and name / name+arguments accuracy with Wilson
95% intervals on general and vertical validation turns.

    .venv/bin/python benchmarks/learning_sweep.py --home .dagster_home/agentscaler \
        --shapes 128x2 256x4 --windows 0 4 --phase1-steps 120 --phase2-steps 100

A shape is `<hidden>x<layers>`; a window of 0 is the whole conversation as one example, N > 0 one example
per assistant turn with the N messages before it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl

from envgen.llm.hf_backend import HFChatBackend
from evals.tool_calls import dialogue_turns, grade, judge_turn
from train.model import TinyModelConfig, build_tiny_base
from train.sft import PhaseConfig, train_phase


def _rows(path: Path, split: str) -> list[dict]:
    frame = pl.read_parquet(path).filter(pl.col("split") == split)
    return [
        {"messages": json.loads(m), "tools": json.loads(t), "domain": d, "task_id": i}
        for m, t, d, i in frame.select("messages", "tools", "domain", "task_id").iter_rows()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="storage root of a finished run")
    ap.add_argument("--shapes", nargs="+", default=["256x4"])
    ap.add_argument("--windows", nargs="+", type=int, default=[0])
    ap.add_argument("--phase1-steps", type=int, default=120)
    ap.add_argument("--phase2-steps", type=int, default=100)
    ap.add_argument("--turns", type=int, default=300, help="validation turns per group")
    args = ap.parse_args()
    sft1, sft2 = args.home / "sft" / "sft_phase1.parquet", args.home / "sft" / "sft_phase2.parquet"
    train1, train2 = _rows(sft1, "train"), _rows(sft2, "train")
    turns = []
    for rows, group in ((_rows(sft1, "validation"), "general"), (_rows(sft2, "validation"), "vertical")):
        found = [
            t
            for r in rows
            for t in dialogue_turns(r["messages"], r["tools"], r["domain"], group, r["task_id"])
        ]
        turns += found[: args.turns]
    texts = [json.dumps(r["messages"]) for r in train1 + train2] + [
        json.dumps(r["tools"]) for r in train1[::20]
    ]
    results = []
    for shape in args.shapes:
        hidden, layers = (int(x) for x in shape.split("x"))
        for window in args.windows:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                cfg = TinyModelConfig(
                    hidden_size=hidden,
                    num_hidden_layers=layers,
                    intermediate_size=3 * hidden,
                    max_position_embeddings=2048,
                )
                facts = build_tiny_base(texts, out / "base", cfg)
                started, tokens = time.perf_counter(), 0
                init = out / "base"
                for name, rows, steps in (
                    ("phase1", train1, args.phase1_steps),
                    ("phase2", train2, args.phase2_steps),
                ):
                    phase = PhaseConfig(
                        learning_rate=2e-3,
                        per_device_train_batch_size=1,
                        gradient_accumulation_steps=4,
                        max_length=1536,
                        max_steps=steps,
                        save_steps=10**9,
                        compact=True,
                        compact_window=window,
                        compact_tool_budget=480,
                    )
                    tokens += train_phase(init, rows, [], out / name, phase).total_tokens_seen
                    init = out / name
                seconds = time.perf_counter() - started
                model = HFChatBackend(init, max_new_tokens=96)
                replies = model.greedy_batch([(t.prefix, t.tools) for t in turns])
                graded = grade(turns, [judge_turn(t, r) for t, r in zip(turns, replies, strict=True)])
            row = {
                "shape": shape,
                "window": window,
                "parameters": facts["parameters"],
                "train_s": round(seconds),
                "tokens_per_s": round(tokens / seconds),
            }
            for group in ("general", "vertical"):
                for metric in ("name", "name_arguments"):
                    r = graded.get(group, {}).get(metric, {"rate": 0.0, "ci95": [0.0, 1.0]})
                    row[f"{group}_{metric}"] = f"{r['rate']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
            results.append(row)
            print(json.dumps(row), flush=True)
    print(pl.DataFrame(results))


if __name__ == "__main__":
    main()
