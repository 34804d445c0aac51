"""Which model shape and view learn tool calling within minutes: a side-by-side sweep on a finished run.

Reads the SFT sets of a materialised storage root (`agentscaler run` writes one), trains, for every
configuration given, phase 1 on the general set and phase 2 from it on the vertical set with a fixed step
budget, and scores the graded next-turn metric (`evals.tool_calls`, guided tool names unless
`--unguided`) on *validation* dialogues (never on held-out tasks: choices are made here, so the held-out
scores stay unbiased): phase 1 on the general set's, phase 2 on the vertical set's. Prints one row per
configuration: parameters, train seconds, tokens/s, and well-formed / name / name+arguments accuracy with
Wilson 95% intervals.

    .venv/bin/python benchmarks/learning_sweep.py --home .dagster_home/agentscaler \
        --shapes 128x2 256x4 --windows 0 4 --phase1-steps 280 --phase2-steps 120 [--word-tokens]

A shape is `<hidden>x<layers>`; a window of 0 is the whole conversation as one example, N > 0 one example
per assistant turn with the N messages before it.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
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
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of both phases")
    ap.add_argument("--accum", type=int, default=4, help="conversations per optimizer step")
    ap.add_argument("--tool-budget", type=int, default=640, help="tokens of the compact tool block")
    ap.add_argument("--scheduler", default="cosine", help="transformers scheduler name")
    ap.add_argument("--keep", type=Path, help="keep each configuration's models under this folder")
    ap.add_argument("--unguided", action="store_true", help="score without guided tool names")
    ap.add_argument("--word-tokens", action="store_true", help="tokenizer with spaces as their own tokens")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # step and loss lines
    sft1, sft2 = args.home / "sft" / "sft_phase1.parquet", args.home / "sft" / "sft_phase2.parquet"
    train1, train2 = _rows(sft1, "train"), _rows(sft2, "train")
    turns = {}  # phase 1 is scored on general validation turns, phase 2 on vertical ones
    for rows, group in ((_rows(sft1, "validation"), "general"), (_rows(sft2, "validation"), "vertical")):
        found = [
            t
            for r in rows
            for t in dialogue_turns(r["messages"], r["tools"], r["domain"], group, r["task_id"])
        ]
        turns[group] = found[: args.turns]
    texts = [json.dumps(r["messages"]) for r in train1 + train2] + [
        json.dumps(r["tools"]) for r in train1[::20]
    ]
    results = []
    for shape in args.shapes:
        hidden, layers = (int(x) for x in shape.split("x"))
        for window in args.windows:
            with tempfile.TemporaryDirectory() as tmp:
                out = args.keep / f"{shape}-w{window}" if args.keep else Path(tmp)
                cfg = TinyModelConfig(
                    hidden_size=hidden,
                    num_hidden_layers=layers,
                    intermediate_size=3 * hidden,
                    max_position_embeddings=2048,
                    word_tokens=args.word_tokens,
                )
                facts = build_tiny_base(texts, out / "base", cfg)
                seconds, tokens, graded = 0.0, 0, {}
                init = out / "base"
                for name, rows, steps, group in (
                    ("phase1", train1, args.phase1_steps, "general"),
                    ("phase2", train2, args.phase2_steps, "vertical"),
                ):
                    phase = PhaseConfig(
                        learning_rate=args.lr,
                        lr_scheduler_type=args.scheduler,
                        per_device_train_batch_size=1,
                        gradient_accumulation_steps=args.accum,
                        max_length=1536,
                        max_steps=steps,
                        save_steps=10**9,
                        compact=True,
                        compact_window=window,
                        compact_tool_budget=args.tool_budget,
                    )
                    result = train_phase(init, rows, [], out / name, phase)
                    tokens += result.total_tokens_seen
                    seconds += result.wall_seconds
                    init = out / name
                    model = HFChatBackend(init, max_new_tokens=96, guided_tool_names=not args.unguided)
                    replies = model.greedy_batch([(t.prefix, t.tools) for t in turns[group]])
                    verdicts = [judge_turn(t, r) for t, r in zip(turns[group], replies, strict=True)]
                    graded[group] = grade(turns[group], verdicts)[group]
            row = {
                "shape": shape,
                "window": window,
                "steps": f"{args.phase1_steps}+{args.phase2_steps}",
                "lr": args.lr,
                "accum": args.accum,
                "tool_budget": args.tool_budget,
                "word_tokens": args.word_tokens,
                "parameters": facts["parameters"],
                "train_s": round(seconds),
                "tokens_per_s": round(tokens / seconds),
            }
            for group, phase_name in (("general", "phase1"), ("vertical", "phase2")):
                for metric in ("well_formed", "name", "name_arguments"):
                    r = graded.get(group, {}).get(metric, {"rate": 0.0, "ci95": [0.0, 1.0]})
                    row[f"{phase_name}_{group}_{metric}"] = (
                        f"{r['rate']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
                    )
            results.append(row)
            print(json.dumps(row), flush=True)
    print(pl.DataFrame(results))


if __name__ == "__main__":
    main()
