"""One code path for every policy: two from-scratch sizes, a saved folder reloaded, LoRA on top; and it learns."""

import json

import pytest
import torch

from toolkiln.policy.config import LoRAConfig, PolicyConfig, ScratchModelConfig, SFTConfig
from toolkiln.policy.examples import build_examples, target_nll
from toolkiln.policy.model import build_policy, load_pretrained, lora_config, save_policy, scratch_model
from toolkiln.policy.render import prompt_messages, row_tools
from toolkiln.policy.sft import train_sft

SFT = SFTConfig(batch_size=4, learning_rate=3e-3, logging_steps=1, warmup_ratio=0.0, eval_samples=0)


def test_tokenizer_training_is_deterministic(dialogs, policy_cfg, tokenizer):
    from toolkiln.policy.model import build_tokenizer

    # score_difficulty and warmup_sft each rebuild it; they must agree on every token budget
    again = build_tokenizer(policy_cfg, dialogs.to_dicts())
    assert again.get_vocab() == tokenizer.get_vocab() and again.chat_template == tokenizer.chat_template


def test_tokenizer_is_byte_level_with_single_id_markers(tokenizer):
    text = 'città_üñï.call(x="東京 🚀", n=12345)'
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
    for marker in ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>", "<|pad|>"):
        assert len(tokenizer.encode(marker, add_special_tokens=False)) == 1
    assert tokenizer.eos_token == "<|end|>"
    # digits are split, so any number is copied digit by digit
    assert [tokenizer.decode([i]) for i in tokenizer.encode("12345", add_special_tokens=False)] == list("12345")
    # call syntax seen in training compresses well below one token per character
    call = '[weather.get_forecast(city="Paris", days=3)]'
    assert len(tokenizer.encode(call, add_special_tokens=False)) < len(call) / 2


def test_words_pre_tokenizer_makes_prose_and_call_tokens_identical(dialogs, policy_cfg, tokenizer):
    from toolkiln.policy.model import build_tokenizer

    words = build_tokenizer(policy_cfg.model_copy(update={"tokenizer": policy_cfg.tokenizer.model_copy(
        update={"pre_tokenizer": "words"})}), dialogs.to_dicts())

    def pieces(tok, text):
        return [tok.decode([i]) for i in tok.encode(text, add_special_tokens=False)]

    prose, call = "weather in Paris, get forecast", 'get_forecast(city="Paris")'
    # words: "Paris"/"forecast" after a space, a quote or an underscore are the same tokens (copying = identity)
    assert {"Paris", "forecast"} <= set(pieces(words, prose)) & set(pieces(words, call))
    # gpt2 (default): the prose form carries its space, the call form does not; shorter, but a mapping to learn
    assert " Paris" in pieces(tokenizer, prose) and " Paris" not in pieces(tokenizer, call)


@pytest.mark.parametrize("size", [
    ScratchModelConfig(hidden_size=32, n_layers=1, n_heads=2, n_kv_heads=2, intermediate_size=64),
    ScratchModelConfig(hidden_size=48, n_layers=2, n_heads=4, n_kv_heads=2, intermediate_size=96),
])
def test_scratch_sizes_train_through_trl(size, dialogs, tokenizer, policy_cfg):
    torch.set_num_threads(1)
    model = scratch_model(size, tokenizer, seed=0)
    n_params = sum(p.numel() for p in model.parameters())
    assert model.config.num_hidden_layers == size.n_layers and model.config.hidden_size == size.hidden_size
    ex, _ = build_examples(dialogs.to_dicts()[:16], tokenizer, policy_cfg.render)
    model, res = train_sft(model, tokenizer, ex, SFT, seed=0, max_steps=6)
    losses = [h["loss"] for h in res.log_history if "loss" in h]
    assert res.metrics["train_steps"] == 6 and len(losses) == 6  # max_steps wins over the single pass
    assert losses[-1] < losses[0]
    assert sum(p.numel() for p in model.parameters()) == n_params


def test_saved_checkpoint_reloads_and_trains_through_the_same_path(tmp_path, dialogs, tokenizer, policy_cfg):
    torch.set_num_threads(1)
    rows = dialogs.to_dicts()[:12]
    model = scratch_model(policy_cfg.scratch, tokenizer, seed=0)
    save_policy(model, tokenizer, tmp_path / "base")
    cfg = policy_cfg.model_copy(update={"base_model": str(tmp_path / "base")})
    model2, tok2, info = build_policy(cfg, rows, seed=0)
    assert info["kind"] == "pretrained" and info["vocab_size"] == len(tokenizer)
    assert tok2.chat_template == tokenizer.chat_template
    ex, _ = build_examples(rows, tok2, cfg.render)
    before = target_nll(model2, tok2, ex)
    assert before == pytest.approx(target_nll(model, tokenizer, ex), abs=1e-5)  # same weights after the round trip
    # LoRA through peft on the reloaded folder; the saved checkpoint has the adapter merged
    lcfg = cfg.model_copy(update={"lora": LoRAConfig(enabled=True, r=4, alpha=8, dropout=0.0,
                                                     target_modules=["q_proj", "v_proj"])})
    trained, res = train_sft(model2, tok2, ex, SFT.model_copy(update={"learning_rate": 1e-2}), seed=0,
                             peft_config=lora_config(lcfg))
    assert hasattr(trained, "merge_and_unload")
    save_policy(trained, tok2, tmp_path / "lora")
    files = {p.name for p in (tmp_path / "lora").iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files
    model3, tok3 = load_pretrained(tmp_path / "lora", cfg)
    after = target_nll(model3, tok3, ex)
    assert sum(after) < sum(before)


def test_missing_or_foreign_base_model(tmp_path, dialogs):
    with pytest.raises(ValueError, match="not a local Hugging Face model folder"):
        build_policy(PolicyConfig(base_model=str(tmp_path / "nope")), dialogs.to_dicts(), seed=0)


def test_policy_learns_to_copy_calls(dialogs, policy_cfg):
    """A tiny model overfits a few dialogs and then writes their exact calls greedily from the prompt."""
    torch.set_num_threads(1)
    rows = [r for r in dialogs.to_dicts() if r["type"] in ("single", "non_tool")][:4]
    cfg = policy_cfg.model_copy(update={"scratch": ScratchModelConfig(hidden_size=64, n_layers=2, n_heads=4,
                                                                      n_kv_heads=4, intermediate_size=128)})
    model, tok, _ = build_policy(cfg, rows, seed=0)
    ex, _ = build_examples(rows, tok, cfg.render)
    model, _ = train_sft(model, tok, ex * 80, SFT.model_copy(update={"learning_rate": 5e-3, "logging_steps": 10}),
                         seed=0)
    model.eval()
    for row in rows:
        prompt = tok.apply_chat_template(prompt_messages(row), tools=row_tools(row), add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True)
        out = model.generate(**prompt, max_new_tokens=40, do_sample=False)
        text = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
        expected = row["target"] or json.loads(row["messages"])[row["target_turn"]]["content"]
        assert text == expected
