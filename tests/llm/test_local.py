"""TransformersBackend on a tiny from-scratch Llama + WordLevel tokenizer saved to tmp_path."""

from __future__ import annotations

import json

import pytest
import torch

from toolkiln.llm import make_backend
from toolkiln.llm.base import ChatRequest
from toolkiln.llm.config import LLMConfig, LLMRuntime
from toolkiln.llm.local import TransformersBackend, render_fallback

SENTENCES = [
    "the user asks for the weather in paris",
    "the assistant calls get_weather with city paris",
    "the tool returns sunny and warm",
    "book a table for two at noon",
]
TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


def _build(folder, *, chat_template: str | None) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        SENTENCES + ["[user] [assistant] [system] < | > user assistant system"],
        trainers.WordLevelTrainer(special_tokens=specials),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]"
    )
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(folder)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_llama")
    _build(folder, chat_template=TEMPLATE)
    return folder


@pytest.fixture(scope="module")
def plain_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_llama_plain")
    _build(folder, chat_template=None)
    return folder


def _req(text: str, **kw) -> ChatRequest:
    return ChatRequest(
        messages=({"role": "system", "content": "the assistant"}, {"role": "user", "content": text}), **kw
    )


PROMPTS = ["weather in paris", "book a table for two at noon please", "the tool", "calls get_weather with city paris"]


def test_greedy_batched_equals_one_by_one(model_dir):
    reqs = [_req(p, max_tokens=6) for p in PROMPTS]
    batched = TransformersBackend(model_dir, batch_size=4).chat_many(reqs)
    single = TransformersBackend(model_dir, batch_size=1).chat_many(reqs)
    assert all(r.ok for r in batched + single), [r.error for r in batched + single]
    # Left padding must not change what greedy decoding produces.
    assert [r.texts for r in batched] == [r.texts for r in single]
    assert [r.key for r in batched] == [q.key() for q in reqs]
    for r in batched:
        assert len(r.texts) == 1 and r.attempts == 1 and not r.cached
        assert 0 < r.usage["completion_tokens"] <= 6
        assert r.usage["prompt_tokens"] > 0


def test_sampling_n_and_seed(model_dir):
    backend = TransformersBackend(model_dir, batch_size=4)
    reqs = [_req(p, temperature=1.0, n=3, seed=7, max_tokens=8) for p in PROMPTS[:2]]
    a = backend.chat_many(reqs)
    b = backend.chat_many(reqs)
    assert all(len(r.texts) == 3 for r in a)
    assert [r.texts for r in a] == [r.texts for r in b]  # same seed, same samples (no cache here)
    other = backend.chat_many([_req(p, temperature=1.0, n=3, seed=8, max_tokens=8) for p in PROMPTS[:2]])
    # An untrained model samples near-uniformly over the vocabulary, so another seed changes something.
    assert [r.texts for r in other] != [r.texts for r in a]


def test_greedy_n_gives_n_copies_in_mixed_batches(model_dir):
    one, two = TransformersBackend(model_dir).chat_many(
        [_req("the tool", max_tokens=4), _req("the tool", n=2, max_tokens=4)]
    )
    assert one.ok and two.ok and len(one.texts) == 1 and two.texts == one.texts * 2


def test_repeated_request_is_generated_once(model_dir, monkeypatch):
    backend = TransformersBackend(model_dir)
    backend._load()
    rows = []
    real = backend._model.generate
    monkeypatch.setattr(backend._model, "generate", lambda **kw: rows.append(kw["input_ids"].shape[0]) or real(**kw))
    a, b, c = backend.chat_many(
        [_req("the tool", max_tokens=3), _req("paris", max_tokens=3), _req("the tool", max_tokens=3)]
    )
    assert rows == [2]  # two distinct prompts in one batch
    assert a.texts == c.texts and a.key == c.key and a.texts is not c.texts


def test_fallback_rendering_without_chat_template(plain_model_dir):
    backend = TransformersBackend(plain_model_dir, batch_size=2)
    text, add_special = backend.render([{"role": "user", "content": "hi"}])
    assert text == render_fallback([{"role": "user", "content": "hi"}]) and add_special
    assert text.endswith("<|assistant|>\n")
    results = backend.chat_many([_req(p, max_tokens=4) for p in PROMPTS[:3]])
    assert all(r.ok and len(r.texts) == 1 for r in results)


def test_chat_template_is_used(model_dir):
    text, add_special = TransformersBackend(model_dir).render([{"role": "user", "content": "hi"}])
    assert text == "[user] hi [assistant] " and not add_special


def test_cache_and_trace(model_dir, tmp_path):
    cfg = LLMConfig(backend="transformers", model=str(model_dir), max_tokens=5, batch_size=2)
    rt = LLMRuntime(cache_dir=str(tmp_path / "cache"))
    backend = make_backend(cfg, rt, trace_path=tmp_path / "trace.jsonl")
    assert isinstance(backend, TransformersBackend)
    reqs = [_req(p) for p in PROMPTS]
    first = backend.chat_many(reqs)
    again = make_backend(cfg, rt).chat_many(reqs)
    assert all(r.cached for r in again) and not any(r.cached for r in first)
    assert [r.texts for r in again] == [r.texts for r in first]
    rows = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    # The rerun's backend has no trace, so the file holds the first run's four generations only.
    assert sorted(r["key"] for r in rows) == sorted(q.key() for q in reqs)
    assert all(r["response"]["texts"] for r in rows)
    assert rows[0]["request"]["model"] == str(model_dir)


def test_prompt_beyond_context_is_recorded_not_generated(model_dir):
    long = " ".join(["paris"] * 400)  # the tiny model has 256 positions
    short = _req("the tool", max_tokens=4)
    r_long, r_short = TransformersBackend(model_dir).chat_many([_req(long, max_tokens=4), short])
    assert not r_long.ok and "exceeds the model's context of 256" in r_long.error
    assert r_short.ok


def test_generation_error_is_recorded_per_batch(model_dir, monkeypatch):
    backend = TransformersBackend(model_dir, batch_size=2)
    backend._load()

    def boom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(backend._model, "generate", boom)
    results = backend.chat_many([_req(p, max_tokens=3) for p in PROMPTS[:3]])
    assert [r.ok for r in results] == [False] * 3
    assert all("RuntimeError: CUDA out of memory" in r.error for r in results)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a local model folder"):
        TransformersBackend(tmp_path / "nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_path(model_dir):
    reqs = [_req(p, max_tokens=5) for p in PROMPTS] + [_req("paris", temperature=1.0, n=2, seed=3, max_tokens=5)]
    gpu = TransformersBackend(model_dir, device="cuda", batch_size=4).chat_many(reqs)
    cpu = TransformersBackend(model_dir, device="cpu", batch_size=4).chat_many(reqs[:-1])
    assert all(r.ok for r in gpu), [r.error for r in gpu]
    assert [r.texts for r in gpu[:-1]] == [r.texts for r in cpu]  # fp32 greedy agrees across devices
    assert len(gpu[-1].texts) == 2


def test_json_mode_prefills_the_brace_and_batches_apart(model_dir, monkeypatch):
    backend = TransformersBackend(model_dir, batch_size=4)
    backend._load()
    rows = []
    real = backend._model.generate
    monkeypatch.setattr(
        backend._model,
        "generate",
        lambda **kw: rows.append((kw["input_ids"].shape[0], "stopping_criteria" in kw)) or real(**kw),
    )
    plain, js = backend.chat_many(
        [_req("the tool", max_tokens=4), _req("the tool", max_tokens=4, response_format="json_object")]
    )
    assert plain.ok and js.ok and plain.key != js.key
    # one generate call per mode: JSON mode carries the stop rule, the plain request does not
    assert sorted(rows) == [(1, False), (1, True)]
    # the tiny vocabulary has no "}", so the object never closes: the reply is the prefilled "{" and what followed
    assert js.texts[0].startswith("{") and not plain.texts[0].startswith("{")


def test_json_reply_end_stops_each_row_at_its_closing_brace():
    from toolkiln.llm.local import JSONReplyEnd

    table = ["{", '"a"', ": ", "1", "}", '"}"', "}\n", "x"]
    stop = JSONReplyEnd(table, ["{", "{"])
    ids = torch.zeros((2, 1), dtype=torch.long)
    seq = [[1, 1], [2, 2], [3, 5], [4, 3], [7, 6]]  # row 0: {"a": 1}  row 1: {"a": "}"1}\n
    done = []
    for a, b in seq:
        ids = torch.cat([ids, torch.tensor([[a], [b]])], dim=1)
        done.append(stop(ids, None).tolist())
    # row 0 closes at step 4 ("}"); a brace inside a string does not close row 1, its "}\n" at step 5 does
    assert done == [[False, False], [False, False], [False, False], [True, False], [True, True]]


def test_sampled_requests_batch_across_seeds_and_keep_their_samples(model_dir, monkeypatch):
    backend = TransformersBackend(model_dir, batch_size=4)
    backend._load()
    rows = []
    real = backend._model.generate
    monkeypatch.setattr(backend._model, "generate", lambda **kw: rows.append(kw["input_ids"].shape[0]) or real(**kw))
    reqs = [_req(p, temperature=1.0, n=2, seed=s, max_tokens=6) for p, s in zip(PROMPTS, (1, 2, 3, 4))]
    together = backend.chat_many(reqs)
    assert rows == [8]  # four seeds, n = 2: one generate call of 8 rows
    alone = [backend.chat_many([r])[0] for r in reqs]
    # each request's samples depend on its seed only, not on the batch it shared
    assert [r.texts for r in together] == [r.texts for r in alone]
    assert all(r.texts[0] != r.texts[1] for r in together)  # the n samples of a request differ


def test_gumbel_sampler_draws_from_the_softmax():
    from toolkiln.llm.local import GumbelSampler

    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    sampler = GumbelSampler([0], temperature=1.0)
    picks = [int(sampler(None, logits.clone()).argmax()) for _ in range(4000)]
    freq = [picks.count(k) / len(picks) for k in range(3)]
    assert abs(freq[0] - 0.7) < 0.03 and abs(freq[1] - 0.2) < 0.03 and abs(freq[2] - 0.1) < 0.03
    with pytest.raises(ValueError, match="temperature"):
        GumbelSampler([0], temperature=0.0)


def test_json_schema_prefills_the_first_required_key():
    from toolkiln.llm.local import _prefill

    schema = {"type": "object", "properties": {"utterance": {"type": "string"}}, "required": ["utterance"]}
    msgs = ({"role": "user", "content": "hi"},)
    assert _prefill(ChatRequest(messages=msgs, response_format="json_schema", schema=schema)) == '{"utterance": "'
    nums = {"properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert _prefill(ChatRequest(messages=msgs, response_format="json_schema", schema=nums)) == '{"n": '
    assert _prefill(ChatRequest(messages=msgs, response_format="json_schema", schema={})) == "{"
    assert _prefill(ChatRequest(messages=msgs, response_format="json_object")) == "{"
    assert _prefill(ChatRequest(messages=msgs)) == ""
