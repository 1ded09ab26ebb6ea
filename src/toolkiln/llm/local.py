"""Chat backend on a local Hugging Face causal LM folder (docs/architecture.md (#backends, #reliability)).

Serves the same :class:`ChatBackend` contract as the HTTP backend for runs with
no endpoint at all, e.g. letting the iTool policy (arXiv 2501.09766 §3) or a
small open model play the ToolACE agents (arXiv 2409.00920 §2). Nothing is ever
downloaded (``local_files_only=True``). Messages are rendered with the
tokenizer's chat template, or a plain role-tagged fallback when it has none.
Prompts are generated in left-padded batches: greedy when ``temperature == 0``,
otherwise sampled under the request's seed, ``n`` samples per request. A request
in JSON mode (``response_format="json_object"``, what every agent asks for) gets
its reply started with ``{`` and each row stops at the brace that closes it: a
small model then writes the object instead of prose or code around it, and no
tokens are spent after it. Answers go through the same on-disk cache and trace
as the HTTP backend.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from toolkiln.llm.base import ChatRequest, ChatResult
from toolkiln.llm.cache import ResponseCache, TraceWriter
from toolkiln.llm.parse import BracketScanner, json_prefix

log = logging.getLogger(__name__)


def render_fallback(messages: Sequence[dict]) -> str:
    """Role-tagged prompt for tokenizers without a chat template; ends where the assistant speaks."""
    parts = [f"<|{m.get('role', 'user')}|>\n{m.get('content') or ''}\n" for m in messages]
    return "".join(parts) + "<|assistant|>\n"


class TransformersBackend:
    """Batched generation with a local ``AutoModelForCausalLM`` folder."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        batch_size: int = 8,
        max_new_tokens: int = 256,
        dtype: str | None = None,
        default_seed: int = 0,
        cache_dir: str | Path | None = None,
        trace_path: str | Path | None = None,
        trace_append: bool = False,
    ) -> None:
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise ValueError(
                f"llm.model: {str(model_path)!r} is not a local model folder (no config.json there); "
                "the transformers backend loads local folders only and never downloads"
            )
        if batch_size < 1:
            raise ValueError(f"TransformersBackend.batch_size: got {batch_size}; expected >= 1")
        if max_new_tokens < 1:
            raise ValueError(f"TransformersBackend.max_new_tokens: got {max_new_tokens}; expected >= 1")
        self.model_path = path
        self.model_name = str(model_path)  # what fills ChatRequest.model, hence part of the cache key
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.dtype = dtype
        self.default_seed = default_seed
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.trace = TraceWriter(trace_path, append=trace_append) if trace_path is not None else None
        self._model: Any = None
        self._tok: Any = None
        self._texts: list[str] | None = None  # token id -> text, for the JSON-mode stop rule

    def __repr__(self) -> str:
        return (
            f"TransformersBackend(model_path={self.model_name!r}, device={self.device!r}, batch_size={self.batch_size})"
        )

    # -- loading -----------------------------------------------------------------
    def _load(self) -> None:
        # Loaded on first use so that make_backend() (and a fully cached rerun) stays cheap.
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        tok.padding_side = "left"  # generated tokens must follow every prompt directly
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise ValueError(f"{self.model_path}: tokenizer has neither a pad nor an eos token; cannot batch")
            tok.pad_token = tok.eos_token
        kwargs: dict[str, Any] = {"local_files_only": True}
        if self.dtype:
            kwargs["dtype"] = getattr(torch, self.dtype)
        model = AutoModelForCausalLM.from_pretrained(self.model_path, **kwargs)
        model.to(self.device)
        model.eval()
        self._model, self._tok = model, tok

    def render(self, messages: Sequence[dict]) -> tuple[str, bool]:
        """Prompt text and whether the tokenizer should add its own special tokens."""
        self._load()
        if getattr(self._tok, "chat_template", None):
            text = self._tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return text, False  # the template already places BOS etc.
        return render_fallback(messages), True

    # -- public API --------------------------------------------------------------
    def chat_many(self, requests: Sequence[ChatRequest], *, desc: str | None = None) -> list[ChatResult]:
        requests = list(requests)
        results: list[ChatResult | None] = [None] * len(requests)
        effective = [r if r.model else dataclasses.replace(r, model=self.model_name) for r in requests]
        todo: list[int] = []
        repeats: dict[int, list[int]] = {}  # first position -> later positions with the same cache key
        first_of: dict[str, int] = {}
        for i, (req, eff) in enumerate(zip(requests, effective)):
            entry = self.cache.get(eff.key()) if self.cache is not None else None
            if entry is not None:
                results[i] = ChatResult(
                    key=req.key(), ok=True, texts=list(entry["texts"]), cached=True, usage=entry.get("usage")
                )
                self._trace(req, eff, results[i], entry.get("response"))
            elif eff.key() in first_of:  # asked once per batch, as the cache would answer a rerun
                repeats[first_of[eff.key()]].append(i)
            else:
                first_of[eff.key()] = i
                repeats[i] = []
                todo.append(i)
        n_cached = len(requests) - len(todo) - sum(map(len, repeats.values()))
        bar = tqdm(total=len(requests), initial=n_cached, desc=desc, disable=desc is None, unit="req")
        rendered: dict[int, tuple[str, bool]] = {}
        fits: list[int] = []
        for i in todo:
            text, add_special = self.render(effective[i].messages)
            rendered[i] = (text + _prefill(effective[i]), add_special)
            reason = self._context_problem(rendered[i], effective[i])
            if reason is None:
                fits.append(i)
            else:
                results[i] = ChatResult(key=requests[i].key(), ok=False, error=reason, attempts=0)
                self._trace(requests[i], effective[i], results[i], None)
                bar.update(1)
        for idx in self._batches(fits, effective):
            batch = self._generate([effective[i] for i in idx], [requests[i] for i in idx], [rendered[i] for i in idx])
            for i, res in zip(idx, batch):
                results[i] = res
                if res.ok and self.cache is not None:
                    try:
                        self.cache.put(
                            effective[i].key(),
                            request=effective[i].payload(),
                            texts=res.texts,
                            usage=res.usage,
                            response={"texts": res.texts, "usage": res.usage},
                        )
                    except OSError as exc:
                        log.warning("could not write LLM cache entry %s: %s", effective[i].key()[:12], exc)
                self._trace(
                    requests[i], effective[i], res, {"texts": res.texts, "usage": res.usage} if res.ok else None
                )
            bar.update(len(idx))
        for i, later in repeats.items():
            for j in later:
                results[j] = dataclasses.replace(results[i], key=requests[j].key(), texts=list(results[i].texts))
                bar.update(1)
        bar.close()
        return results  # type: ignore[return-value]

    # -- internals -----------------------------------------------------------------
    def _batches(self, todo: list[int], reqs: list[ChatRequest]) -> list[list[int]]:
        """Group requests that can share one ``generate`` call, then cut groups to ``batch_size``.

        Greedy requests share a call whatever their seed; sampled ones share it with the
        same temperature and n, whatever their seeds (each row samples from its own
        generator: :class:`GumbelSampler`). A JSON-mode call stops rows at their closing
        brace, so it holds JSON-mode requests only.
        """
        groups: dict[tuple, list[int]] = {}
        for i in todo:
            r = reqs[i]
            max_new = r.max_tokens or self.max_new_tokens
            if r.temperature == 0:
                gkey: tuple = ("greedy", max_new, bool(_prefill(r)))
            else:
                gkey = ("sample", max_new, r.temperature, r.n, bool(_prefill(r)))
            groups.setdefault(gkey, []).append(i)
        # Neighbours of similar prompt size waste less padding; message length is a cheap proxy.
        out = []
        for members in groups.values():
            members = sorted(members, key=lambda i: sum(len(str(m.get("content") or "")) for m in reqs[i].messages))
            out.extend(members[s : s + self.batch_size] for s in range(0, len(members), self.batch_size))
        return out

    def _context_problem(self, rendered: tuple[str, bool], eff: ChatRequest) -> str | None:
        """Why a prompt cannot be answered within the model's context, or None.

        Past its trained positions a model still emits tokens (RoPE extrapolates),
        just meaningless ones; refusing up front records the reason instead.
        """
        limit = getattr(self._model.config, "max_position_embeddings", None)
        if not isinstance(limit, int):
            return None
        n_prompt = len(self._tok(rendered[0], add_special_tokens=rendered[1])["input_ids"])
        max_new = eff.max_tokens or self.max_new_tokens
        if n_prompt + max_new > limit:
            return (
                f"prompt of {n_prompt} tokens + max_tokens {max_new} exceeds the model's context of {limit} "
                f"positions ({self.model_name})"
            )
        return None

    def _generate(
        self, effs: list[ChatRequest], reqs: list[ChatRequest], rendered: list[tuple[str, bool]]
    ) -> list[ChatResult]:
        t0 = time.perf_counter()
        try:
            texts, usages = self._generate_texts(effs, rendered)
        except Exception as exc:  # noqa: BLE001 - OOM, a prompt longer than the model's context: recorded per request
            log.warning("local generation failed for a batch of %d: %s: %s", len(effs), type(exc).__name__, exc)
            return [
                ChatResult(
                    key=r.key(),
                    ok=False,
                    error=f"local generation failed: {type(exc).__name__}: {exc}",
                    attempts=1,
                    latency_s=time.perf_counter() - t0,
                )
                for r in reqs
            ]
        dt = time.perf_counter() - t0
        return [
            ChatResult(key=r.key(), ok=True, texts=t, attempts=1, latency_s=dt, usage=u)
            for r, t, u in zip(reqs, texts, usages)
        ]

    def _generate_texts(
        self, effs: list[ChatRequest], rendered: list[tuple[str, bool]]
    ) -> tuple[list[list[str]], list[dict]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        tok, model = self._tok, self._model
        add_special = rendered[0][1]
        enc = tok([t for t, _ in rendered], return_tensors="pt", padding=True, add_special_tokens=add_special)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        first = effs[0]
        greedy = first.temperature == 0
        gen_n = 1 if greedy else first.n  # greedy samples are identical: decode once, copy
        eos = tok.eos_token_id if tok.eos_token_id is not None else model.generation_config.eos_token_id
        gen_kwargs: dict[str, Any] = {}
        if gen_n > 1:  # each request's n samples are n rows of one batch
            enc = {k: v.repeat_interleave(gen_n, dim=0) for k, v in enc.items()}
        if not greedy:
            # Sampling as greedy decoding of Gumbel-perturbed logits, each row with its own generator seeded by
            # its request's seed and sample index: a request's samples do not depend on the batch it shares
            # (so requests with different seeds batch together) and the global RNG is never touched.
            seeds = [
                _row_seed(e.seed if e.seed is not None else self.default_seed, j) for e in effs for j in range(gen_n)
            ]
            gen_kwargs["logits_processor"] = LogitsProcessorList([GumbelSampler(seeds, first.temperature, self.device)])
        gc = GenerationConfig(
            max_new_tokens=first.max_tokens or self.max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tok.pad_token_id,
            eos_token_id=eos,
        )
        prefills = [_prefill(e) for e in effs]
        if prefills[0]:  # a JSON-mode batch (see _batches)
            stop = JSONReplyEnd(self._token_texts(), [p for p in prefills for _ in range(gen_n)])
            gen_kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
        with torch.no_grad():
            out = model.generate(**enc, generation_config=gc, **gen_kwargs)
        prompt_len = enc["input_ids"].shape[1]
        new = out[:, prompt_len:]  # left padding: every prompt ends at prompt_len
        decoded = tok.batch_decode(new, skip_special_tokens=True)
        eos_ids = set([eos] if isinstance(eos, int) else (eos or []))
        texts: list[list[str]] = []
        usages: list[dict] = []
        prompt_tokens = enc["attention_mask"][::gen_n].sum(dim=1).tolist()
        for b in range(len(effs)):
            rows = range(b * gen_n, (b + 1) * gen_n)
            # JSON mode: the reply is the prefilled "{" and what follows, cut at the brace that closes it
            seqs = [json_prefix(prefills[b] + decoded[j]).strip() if prefills[b] else decoded[j].strip() for j in rows]
            completion = sum(_generated_length(new[j].tolist(), eos_ids, tok.pad_token_id) for j in rows)
            if greedy and effs[b].n > 1:  # greedy batches mix values of n
                seqs = seqs * effs[b].n
                completion *= effs[b].n
            texts.append(seqs)
            usages.append(
                {
                    "prompt_tokens": int(prompt_tokens[b]),
                    "completion_tokens": int(completion),
                    "total_tokens": int(prompt_tokens[b] + completion),
                }
            )
        return texts, usages

    def _token_texts(self) -> list[str]:
        if self._texts is None:
            # the same table as toolkiln.evaluate.harness.token_texts, built here so that the data stages (which
            # use this backend) do not import the evaluation harness and its dependencies
            tok = self._tok
            vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
            self._texts = [tok.convert_tokens_to_string([t]) if t is not None else "" for t in vocab]
        return self._texts

    def _trace(self, req: ChatRequest, eff: ChatRequest, result: ChatResult, response: Any) -> None:
        if self.trace is None:
            return
        row = {
            "key": result.key,
            "cache_key": eff.key(),
            "tag": req.tag,
            "request": eff.payload(),
            "attempts": result.attempts,
            "latency_s": round(result.latency_s, 6),
            "cached": result.cached,
        }
        if result.ok:
            row["response"] = response
        else:
            row["error"] = result.error
        try:
            self.trace.write(row)
        except OSError as exc:
            log.warning("could not append to LLM trace %s: %s", self.trace.path, exc)


def _row_seed(seed: int, sample: int) -> int:
    """The generator seed of a request's ``sample``-th sample (sample 0 uses the request's seed itself)."""
    return (seed + 1_000_003 * sample) % (2**63 - 1)


class GumbelSampler:
    """A logits processor that turns greedy decoding into sampling at ``temperature``: the argmax of
    ``logits / T + Gumbel noise`` is a draw from ``softmax(logits / T)`` (the Gumbel-max trick). The noise of
    row ``r`` comes from a generator seeded with ``seeds[r]``, one draw of the vocabulary per step, so a row's
    sample depends on its seed and its own tokens only."""

    def __init__(self, seeds: list[int], temperature: float, device: str = "cpu") -> None:
        import torch

        if temperature <= 0:
            raise ValueError(f"GumbelSampler.temperature: got {temperature}; expected > 0 (0 is greedy decoding)")
        self.temperature = temperature
        self.gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float() / self.temperature
        tiny = torch.finfo(scores.dtype).tiny
        noise = torch.stack([torch.rand(scores.shape[1], generator=g, device=scores.device) for g in self.gens])
        return scores - torch.log(-torch.log(noise.clamp_min(tiny)))


def _prefill(req: ChatRequest) -> str:
    """What the reply is started with: ``{`` in JSON mode (the model continues an object); with a schema also
    its first required key (and the opening quote of a string value): ``{"utterance": "``. Every valid reply
    may start so (JSON objects are unordered), and a small model that would otherwise pick its own keys
    continues the one the schema asks for. Nothing for free text."""
    if req.response_format == "json_object":
        return "{"
    if req.response_format != "json_schema":
        return ""
    required = [k for k in (req.schema or {}).get("required", []) if isinstance(k, str)]
    if not required:
        return "{"
    prop = ((req.schema or {}).get("properties") or {}).get(required[0]) or {}
    return "{" + json.dumps(required[0]) + ": " + ('"' if prop.get("type") == "string" else "")


class JSONReplyEnd:
    """Per-row stopping criterion for JSON mode: a row is done once its reply (prefill included) has closed its
    first object, strings respected (:class:`toolkiln.llm.parse.BracketScanner`)."""

    def __init__(self, token_texts: list[str], prefills: list[str]) -> None:
        self.text = token_texts
        self.scan = [BracketScanner() for _ in prefills]
        for sc, prefill in zip(self.scan, prefills):
            sc.feed(prefill)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        # transformers calls a stopping criterion after each new token, never on the prompt alone
        done = []
        for r, tid in enumerate(input_ids[:, -1].tolist()):
            sc = self.scan[r]
            if not sc.closed:
                sc.feed(self.text[tid] if tid < len(self.text) else "")
            done.append(sc.closed)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _generated_length(ids: list[int], eos_ids: set[int], pad_id: int | None) -> int:
    """Tokens the model produced, counting the first EOS but not the padding after it."""
    for k, t in enumerate(ids):
        if t in eos_ids:
            return k + 1
    if pad_id is not None:
        while ids and ids[-1] == pad_id:
            ids = ids[:-1]
    return len(ids)
