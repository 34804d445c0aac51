"""Train and decode tokens/s of the real pretrained base (Gemma 3 270M, the `pretrained` profile) and of the
tiny from-scratch default, side by side in one run, on the same rows in the same compact view.

Training: `train.sft.train_phase` for `--steps` optimizer steps of 4 one-row micro-batches (the profiles'
recipe), the tiny model in full, Gemma with LoRA (r = 16) on its attention projections as the profile
trains it, and optionally (`--full`) Gemma fully fine-tuned. Decoding: `HFChatBackend.greedy_batch` (KV
cache, left-padded batches) on `--prompts` first turns of the same dialogues, then the same prompts one at a
time; tokens/s counts generated tokens, prompt tokens/s the prompts read.

    .venv/bin/python benchmarks/pretrained_throughput.py [--steps 6] [--prompts 16] [--full]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from training_throughput import sft_rows

from envgen.llm.hf_backend import HFChatBackend
from train.base_sources import GEMMA3_270M_PACKAGE, resolve_base
from train.model import build_tiny_base, load_hf_base
from train.sft import PhaseConfig, compact_view, train_phase


def recipe(steps: int, lora: bool, targets: str = "q_proj,k_proj,v_proj,o_proj") -> PhaseConfig:
    """The profiles' shared recipe: compact view, one row per micro-batch, four per step."""
    return PhaseConfig(
        max_steps=steps,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=4,
        learning_rate=2e-4 if lora else 2e-3,
        use_lora=lora,
        lora_target_modules=targets,
        compact=True,
        compact_window=4,
        compact_tool_budget=320,
        max_length=768,
        save_steps=10_000,
        logging_steps=1,
    )


def decode_rates(model_dir: Path, prompts: list[tuple[list[dict], list[dict]]]) -> dict[str, float]:
    """Generated tokens/s batched and one at a time, and prompt tokens/s of the batched pass."""
    backend = HFChatBackend(model_dir, max_new_tokens=48)
    started = time.perf_counter()
    backend.greedy_batch(prompts)
    batched = time.perf_counter() - started
    made, read = backend.usage.completion_tokens, backend.usage.prompt_tokens
    started = time.perf_counter()
    for prompt in prompts[:4]:
        backend.greedy_batch([prompt])
    single = time.perf_counter() - started
    return {
        "decode_batched_tok_s": made / batched,
        "prompt_tok_s": read / batched,
        "decode_single_tok_s": (backend.usage.completion_tokens - made) / single,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--full", action="store_true", help="also fully fine-tune Gemma (slow)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = sft_rows(["airline", "retail"], 12, folder / "data")
        prompts = []
        for row in rows[: args.prompts]:
            first = next(i for i, m in enumerate(row["messages"]) if m["role"] == "assistant")
            prompts.append((row["messages"][:first], row["tools"]))
        tiny_dir, gemma_dir = folder / "tiny", folder / "gemma"
        build_tiny_base([json.dumps(r) for r in rows], tiny_dir)
        started = time.perf_counter()
        load_hf_base(resolve_base(GEMMA3_270M_PACKAGE, folder / "sources"), gemma_dir)
        print(
            f"Gemma 3 270M: GGUF to a Hugging Face folder in {time.perf_counter() - started:.0f}s", flush=True
        )
        runs = [("tiny (full)", tiny_dir, recipe(args.steps, lora=False))]
        runs.append(("gemma-270m (LoRA q,k,v,o)", gemma_dir, recipe(args.steps, lora=True)))
        if args.full:
            runs.append(("gemma-270m (full)", gemma_dir, recipe(args.steps, lora=False)))
        results = []
        for name, base, cfg in runs:
            compact_view(cfg).save(base)  # decoding reads the view the phases train in
            trained = train_phase(base, rows, [], folder / "out" / name.split()[0], cfg)
            rates = {} if name == "gemma-270m (full)" else decode_rates(base, prompts)  # once per base
            results.append((name, trained.parameter_count, trained.tokens_per_second, rates))
            print(f"  measured {name}", flush=True)
    tiny_train, tiny_rates = results[0][2], results[0][3]
    print(
        f"\n{len(rows)} dialogues, {args.steps} optimizer steps of 4 rows; "
        f"{len(prompts)} prompts, 48 new tokens"
    )
    print(
        f"{'model':<28} {'params':>8} {'train tok/s':>12} {'ratio':>7} {'decode tok/s batched':>21} "
        f"{'single':>8} {'prompt tok/s':>13} {'decode ratio':>13}"
    )
    for name, params, train_rate, rates in results:
        decode = rates.get("decode_batched_tok_s", float("nan"))
        print(
            f"{name:<28} {params / 1e6:>7.1f}M {train_rate:>12.0f} {train_rate / tiny_train:>7.3f} "
            f"{decode:>21.1f} {rates.get('decode_single_tok_s', float('nan')):>8.1f} "
            f"{rates.get('prompt_tok_s', float('nan')):>13.0f} "
            f"{decode / tiny_rates['decode_batched_tok_s']:>13.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
