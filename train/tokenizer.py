"""Train a small byte-level BPE tokenizer locally for the from-scratch tiny model.

No network is available at run time, so the tiny base model cannot borrow a Hub tokenizer; instead one is
trained on the project's own text (API catalog and rendered conversations). Byte-level BPE can encode any
string, so arbitrary tool arguments never hit an unknown token.

Token policy (the "why"):

* ``<|endoftext|>`` (pad), ``<|im_start|>`` and ``<|im_end|>`` (eos) are *special*: they are control tokens
  that ``decode(..., skip_special_tokens=True)`` should drop.
* ``<tool_call>``, ``</tool_call>``, ``<tool_response>``, ``</tool_response>``, ``<tools>``, ``</tools>`` are
  added as *non-special* tokens: each is one atomic id (cheap, never split by BPE) but they survive decoding
  with ``skip_special_tokens=True``, which :mod:`envgen.llm.toolcall_parse` relies on to find tool calls.
  This matches how Qwen registers them.

All nine are passed to the BPE trainer first, so they get the fixed ids 0..8 regardless of the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from train.chat_template import CHAT_TEMPLATE

PAD_TOKEN = "<|endoftext|>"
BOS_TURN_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
CONTROL_TOKENS = (PAD_TOKEN, BOS_TURN_TOKEN, EOS_TOKEN)
TOOL_TAG_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<tools>",
    "</tools>",
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 4096, word_tokens: bool = False
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it as a chat-ready Hugging Face tokenizer.

    Deterministic for the same input and vocabulary size (single ordered pass over ``texts``; ties in the
    trainer are broken by the pair itself). The vocabulary can come out smaller than ``vocab_size`` when the
    corpus runs out of merges; use ``len(tokenizer)`` for the model's embedding size.

    ``word_tokens``: every whitespace character is a token of its own, so a word is the same token
    wherever it stands: ``incident`` in "the it incident", in the tool name ``get_it_incident`` and in the
    argument ``it_incident_id``. A byte-level BPE otherwise glues the space to the word (``Ġincident``), and
    a model trained from scratch must then learn, word by word, that the two spellings match; with one
    token, copying a word from the user's request or the tool list into a call is plain induction. It costs
    about a third more tokens per conversation.
    """
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\s"), behavior="isolated"), byte_level])
        if word_tokens
        else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[*CONTROL_TOKENS, *TOOL_TAG_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TAG_TOKENS])
    return _wrap(tokenizer)


def _wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap the raw tokenizer with the eos/pad roles and the project's chat template."""
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped
