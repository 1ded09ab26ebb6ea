"""Byte-level BPE tokenizer trained on the rendered training corpus (iTool arXiv 2501.09766 §3 policy; docs/architecture.md#training).

Byte-level means every string encodes (no unknown token), so unseen API names and
argument values are always representable and can be copied piece by piece. The turn
markers are special tokens, so each is one id and can never be produced by text in a
message; ``<|end|>`` is the EOS the model learns to emit after each assistant turn.
"""

from __future__ import annotations

from typing import Iterable

from toolkiln.policy.config import TokenizerConfig
from toolkiln.policy.render import Markers


# Words never carry their leading space (GPT-2's " Paris" vs "Paris"): a value in the user turn and the same value
# inside a call (`city="Paris"`) or an identifier (`get_forecast` vs "get forecast") are then the same tokens, which
# is what lets a small model copy words it has never seen. Costs one extra (space) token per word.
WORDS_PATTERN = r"\p{L}+|\p{N}+|\s+|[^\s\p{L}\p{N}]+"
DIGITS_PATTERN = r"\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+"


def pre_tokenizer(cfg: TokenizerConfig):
    from tokenizers import Regex, pre_tokenizers

    if cfg.pre_tokenizer == "gpt2":
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        return (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                if cfg.split_digits else byte_level)
    pattern = DIGITS_PATTERN if cfg.split_digits else WORDS_PATTERN
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def train_bpe_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, chat_template: str, markers: Markers = Markers()):
    """Train a byte-level BPE on ``texts`` and wrap it as a ``PreTrainedTokenizerFast`` with ``chat_template``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer(cfg)
    tok.decoder = decoders.ByteLevel()
    specials = markers.specials()
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=markers.end, pad_token=markers.pad,
                                   additional_special_tokens=specials[2:], clean_up_tokenization_spaces=False,
                                   model_max_length=1 << 20)
    fast.chat_template = chat_template
    return fast
