"""Fixtures for the evaluation tests: a 5-row dialog set (one per type) and a tiny random checkpoint."""

from __future__ import annotations

import json

import polars as pl
import pytest

from toolkiln.calls import format_calls
from toolkiln.schema import dialogs_frame


def pytest_configure(config):
    config.addinivalue_line("markers", "bfcl_agreement: verdict agreement with bfcl-eval's official checker "
                            "(offline, on a deterministic subsample of the packaged BFCL v4 data)")


SYSTEM = "Answer with a list of calls like [f(a=1)] or reply in text."
WEATHER = {"name": "weather.get_forecast", "description": "Weather forecast for a city.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string"}, "days": {"type": "integer", "default": 3},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]},
           "returns": {"type": "object"}}
FX = {"name": "fx.convert", "description": "Convert an amount between currencies.",
      "parameters": {"type": "object", "properties": {
          "amount": {"type": "number"}, "source": {"type": "string"}, "target": {"type": "string"}},
          "required": ["amount", "source", "target"]}, "returns": {"type": "object"}}
HOTEL_SEARCH = {"name": "hotel.search", "description": "Find hotels.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "returns": {"type": "object"}}
HOTEL_BOOK = {"name": "hotel.book", "description": "Book a hotel.",
              "parameters": {"type": "object", "properties": {"hotel_id": {"type": "string"},
                                                              "nights": {"type": "integer"}},
                             "required": ["hotel_id", "nights"]}, "returns": {"type": "object"}}


def _row(i: int, kind: str, tools: list[dict], messages: list[dict], target_turn: int) -> dict:
    t = messages[target_turn]
    target = format_calls(t["tool_calls"]) if t.get("tool_calls") else ""
    calls = [{"turn": k, **c} for k, m in enumerate(messages) for c in m.get("tool_calls", [])]
    return {"id": f"d{i}", "type": kind, "domain": "test", "system": SYSTEM, "tools": json.dumps(tools),
            "messages": json.dumps(messages), "target_turn": target_turn, "target": target,
            "calls": json.dumps(calls), "apis": sorted({c["name"] for c in calls}), "n_candidates": len(tools),
            "n_calls": len(calls), "n_turns": len(messages), "provenance": "{}"}


def _assistant(calls: list[dict]) -> dict:
    return {"role": "assistant", "content": format_calls(calls), "tool_calls": calls}


def five_dialogs() -> pl.DataFrame:
    single = [{"name": "weather.get_forecast", "arguments": {"city": "Paris", "days": 2}}]
    parallel = [{"name": "fx.convert", "arguments": {"amount": 10, "source": "EUR", "target": "USD"}},
                {"name": "weather.get_forecast", "arguments": {"city": "Rome"}}]
    search = [{"name": "hotel.search", "arguments": {"city": "Oslo"}}]
    book = [{"name": "hotel.book", "arguments": {"hotel_id": "h-42", "nights": 3}}]
    rows = [
        _row(0, "single", [WEATHER, FX], [{"role": "user", "content": "Weather in Paris for 2 days?"},
                                          _assistant(single)], 1),
        _row(1, "parallel", [FX, WEATHER], [{"role": "user", "content": "Convert 10 EUR to USD and Rome weather."},
                                            _assistant(parallel)], 1),
        _row(2, "dependent", [HOTEL_SEARCH, HOTEL_BOOK], [
            {"role": "user", "content": "Find a hotel in Oslo and book it for 3 nights."}, _assistant(search),
            {"role": "tool", "name": "hotel.search", "content": '{"hotels": [{"id": "h-42"}]}'},
            _assistant(book)], 3),
        _row(3, "non_tool", [FX], [{"role": "user", "content": "Tell me a joke."},
                                   {"role": "assistant", "content": "None of my tools can do that."}], 1),
        _row(4, "clarification", [HOTEL_BOOK], [{"role": "user", "content": "Book the hotel."},
                                                {"role": "assistant", "content": "For how many nights?"}], 1),
    ]
    return dialogs_frame(rows)


@pytest.fixture
def dialogs() -> pl.DataFrame:
    return five_dialogs()


TEMPLATE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t['name'] }};{% endfor %}</tools>{% endif %}"
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A random 1-layer Llama with a byte-level tokenizer and a chat template that renders tools."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny_ckpt")
    # One token per byte: any text (BFCL's prompts included) encodes without unknowns.
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<pad>": 0, "</s>": 1, **{ch: i + 2 for i, ch in enumerate(sorted(alphabet))}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8192,
                      pad_token_id=0, eos_token_id=1, bos_token_id=1)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder
