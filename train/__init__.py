"""Two-phase supervised fine-tuning: tokenizer, tiny base model, chat template, TRL training, plots.

Submodules are imported explicitly (``from train.sft import train_phase``) so that importing the package does
not pull in torch and transformers for callers that only need, say, the chat template string.
"""
