"""The evaluation harness: prompts -> batched greedy generation -> parse -> BFCL verdicts (DESIGN.md §2.5).

Two test sets, one judge:

* the held-out synthetic split (ToolACE arXiv 2409.00920 §3): prompt = the
  dialog's system prompt + ``tools`` + ``messages[:target_turn]`` (schema.py);
  gold = the parsed ``target`` call list, matched with BFCL's parallel rule (any
  order, distractor tools allowed), or — when ``target`` is ``""`` (non-tool and
  clarification turns) — BFCL's irrelevance rule: correct iff no call;
* BFCL categories shipped in ``bfcl-eval``, prompted the way BFCL prompts
  prompt-based models (:mod:`toolkiln.evaluate.bfcl`).

``generate_fn(prompts) -> texts`` takes ``[{"messages": [...], "tools": [...] | None}]``
and returns one text per prompt (``None`` when it could not answer, e.g. the
prompt exceeds the model's context; recorded as ``not_generated``).
:class:`HFGenerator` is that function for a local Hugging Face checkpoint.
Every sample gets a row (output, parsed calls, verdict, error type, partial
credit), and metrics come per dialog type / BFCL category with an error-type
summary, as iTool (arXiv 2501.09766 §4) reports its deficiency analysis.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import polars as pl
from tqdm.auto import tqdm

from toolkiln.calls import format_calls
from toolkiln.evaluate import bfcl
from toolkiln.evaluate.ast_match import ERROR_TYPES, MatchResult, match, partial_credit, possible_answer_from_calls
from toolkiln.evaluate.config import EvaluateConfig
from toolkiln.evaluate.parse import ParseResult, parse_calls

log = logging.getLogger(__name__)

GenerateFn = Callable[[list[dict]], list[str | None]]
HARNESS_ERRORS = ("not_generated", "bad_input")
ALL_ERROR_TYPES = ERROR_TYPES + HARNESS_ERRORS

SAMPLE_SCHEMA = {
    "id": pl.Utf8, "group": pl.Utf8, "output": pl.Utf8, "calls": pl.Utf8, "parse_error": pl.Utf8,
    "correct": pl.Boolean, "error_type": pl.Utf8, "detail": pl.Utf8, "partial_credit": pl.Float64,
    "n_gold_calls": pl.Int64, "n_pred_calls": pl.Int64, "gold": pl.Utf8,
}


def judge(parsed: ParseResult, possible_answer: Sequence[Mapping] | None, func_docs: Sequence[Mapping],
          category: str) -> MatchResult:
    """BFCL verdict on a parsed output; a refused call (unsafe/positional) still counts as *a call* for (ir)relevance."""
    if parsed.refused and "relevance" in category:
        if "irrelevance" in category:
            return MatchResult(False, "call_on_irrelevance", f"the output attempts a call ({parsed.error})")
        return MatchResult(True)
    return match(parsed.calls, possible_answer, func_docs, category)


def _json(calls: list[dict] | None) -> str | None:
    return None if calls is None else json.dumps(calls, ensure_ascii=False, default=list)


# -- prompts ----------------------------------------------------------------------------------------------------------

def dialog_prompt(row: Mapping, style: Any = None) -> dict:
    """System + ``messages[:target_turn]`` + tools, exactly as the policy is trained on them (policy.render).

    ``style``: the checkpoint's :class:`toolkiln.policy.render.CallStyle` (how earlier
    call turns are written); None = the plain default.
    """
    from toolkiln.policy.render import CallStyle, prompt_messages, row_tools

    return {"messages": prompt_messages(row, style or CallStyle()), "tools": row_tools(row)}


# -- scoring ----------------------------------------------------------------------------------------------------------

def _score_rows(items: list[dict], outputs: list[str | None], strict: bool) -> list[dict]:
    """items: {id, group, category, docs, answer, gold_calls, gold} -> per-sample rows."""
    rows = []
    for it, out in zip(items, outputs):
        row = {"id": it["id"], "group": it["group"], "output": out, "gold": it["gold"],
               "n_gold_calls": len(it["gold_calls"] or []) if it["gold_calls"] is not None else None}
        if it.get("bad_input"):
            rows.append({**row, "calls": None, "parse_error": None, "correct": False, "error_type": "bad_input",
                         "detail": it["bad_input"], "partial_credit": None, "n_pred_calls": None,
                         "n_gold_calls": None})
            continue
        if out is None:
            rows.append({**row, "calls": None, "parse_error": it.get("skip_reason") or "not generated",
                         "correct": False, "error_type": "not_generated", "detail": it.get("skip_reason") or "",
                         "partial_credit": 0.0, "n_pred_calls": None})
            continue
        parsed = parse_calls(out, strict=strict)
        try:
            verdict = judge(parsed, it["answer"], it["docs"], it["category"])
        except ValueError as exc:  # the gold references a function the docs lack: a data error, not a model error
            rows.append({**row, "calls": _json(parsed.calls), "parse_error": parsed.error, "correct": False,
                         "error_type": "bad_input", "detail": str(exc), "partial_credit": None,
                         "n_pred_calls": len(parsed.calls) if parsed.calls is not None else None})
            continue
        credit = partial_credit(parsed.calls, it["gold_calls"]) if it["gold_calls"] is not None else None
        if verdict.correct and credit is not None:
            credit = 1.0  # BFCL-equivalent values (e.g. "" optional, string normal form) earn full credit
        rows.append({**row, "calls": _json(parsed.calls), "parse_error": parsed.error, "correct": verdict.correct,
                     "error_type": verdict.error_type, "detail": verdict.detail, "partial_credit": credit,
                     "n_pred_calls": len(parsed.calls) if parsed.calls is not None else None})
    return rows


def summarise(df: pl.DataFrame) -> dict:
    """Accuracy, partial credit, parse failures and error types, overall and per ``group``."""
    scored = df.filter(pl.col("error_type").is_null() | (pl.col("error_type") != "bad_input"))

    def block(d: pl.DataFrame) -> dict:
        n = d.height
        errs = Counter(e for e in d["error_type"].to_list() if e)
        pc = d["partial_credit"].drop_nulls()
        return {"n": n, "accuracy": float(d["correct"].sum()) / n if n else 0.0,
                "partial_credit": float(pc.mean()) if pc.len() else None,  # None: no gold calls to grade against
                "unparsable_rate": errs.get("unparsable", 0) / n if n else 0.0,
                "error_types": {e: errs.get(e, 0) for e in ALL_ERROR_TYPES if errs.get(e, 0)}}

    out = block(scored)
    out["n_bad_input"] = df.height - scored.height
    out["by_group"] = {g: block(scored.filter(pl.col("group") == g)) for g in sorted(set(scored["group"].to_list()))}
    return out


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA) if rows else pl.DataFrame(schema=SAMPLE_SCHEMA)


def _generate(prompts: list[dict], generate_fn: GenerateFn, what: str) -> list[str | None]:
    outputs = list(generate_fn(prompts)) if prompts else []
    if len(outputs) != len(prompts):
        raise ValueError(f"generate_fn returned {len(outputs)} texts for {len(prompts)} {what} prompts")
    return outputs


def _attach_skips(items: list[dict], generate_fn: GenerateFn) -> None:
    # A generator may say why it left a prompt unanswered (HFGenerator.skipped: index -> reason).
    for i, reason in (getattr(generate_fn, "skipped", None) or {}).items():
        items[i]["skip_reason"] = reason


def evaluate_dialogs(dialogs_df: pl.DataFrame, generate_fn: GenerateFn, cfg: EvaluateConfig,
                     style: Any = None) -> tuple[pl.DataFrame, dict]:
    """Score ``generate_fn`` on dialog rows (schema.DIALOG_SCHEMA); metrics per dialog ``type``.

    A row whose prompt or target cannot be read is recorded as ``bad_input`` (and
    left out of the accuracy), never generated for, never a crash.
    """
    rows = dialogs_df.to_dicts()
    if cfg.max_samples and len(rows) > cfg.max_samples:
        rows = rows[:cfg.max_samples]
    items, prompts, asked = [], [], []
    for r in rows:
        it = {"id": str(r.get("id")), "group": r.get("type") or "?", "gold": r.get("target") or "",
              "category": "parallel_multiple", "answer": None, "gold_calls": None, "docs": []}
        items.append(it)
        try:
            prompt = dialog_prompt(r, style)
        except (ValueError, KeyError, TypeError) as exc:
            it["bad_input"] = f"cannot build the prompt: {exc}"
            continue
        it["docs"] = prompt["tools"]
        gold = parse_calls(it["gold"], strict=True)
        if gold.calls is None:
            it["bad_input"] = f"target is not a call list: {gold.error}"
            continue
        if not gold.calls:  # text answer (non_tool, clarification): BFCL's irrelevance rule
            it.update(gold_calls=[], answer=[], category="irrelevance")
        else:
            try:
                it.update(gold_calls=gold.calls, answer=possible_answer_from_calls(gold.calls, it["docs"]))
            except ValueError as exc:
                it["bad_input"] = str(exc)
                continue
        asked.append(len(items) - 1)
        prompts.append(prompt)
    outputs: list[str | None] = [None] * len(items)
    for i, text in zip(asked, _generate(prompts, generate_fn, "dialog")):
        outputs[i] = text
    for k, reason in (getattr(generate_fn, "skipped", None) or {}).items():
        items[asked[k]]["skip_reason"] = reason
    df = _frame(_score_rows(items, outputs, cfg.strict_parse))
    return df, summarise(df)


def evaluate_bfcl(categories: Sequence[str], generate_fn: GenerateFn, cfg: EvaluateConfig, seed: int = 0,
                  limit: int | None = None) -> tuple[pl.DataFrame, dict]:
    """Score ``generate_fn`` on BFCL categories with BFCL's prompt; metrics per category."""
    items, prompts = [], []
    for cat in categories:
        for e in bfcl.load_category(cat, limit=cfg.bfcl_limit if limit is None else limit, seed=seed):
            gt = e["ground_truth"]
            gold_calls = [{"name": n, "arguments": {k: next((o for o in v if o != ""), None) for k, v in a.items()
                                                    if any(o != "" for o in v)}}
                          for item in gt for n, a in item.items()]
            relevance = cat == "live_relevance"  # "some call" is right, but no particular one
            items.append({"id": e["id"], "group": cat, "category": cat, "docs": e["function"], "answer": gt,
                          "gold_calls": None if relevance else gold_calls,
                          "gold": format_calls(gold_calls) if gold_calls else ""})
            prompts.append({"messages": bfcl.prompt_messages(e), "tools": None})
    outputs = _generate(prompts, generate_fn, "BFCL")
    _attach_skips(items, generate_fn)
    df = _frame(_score_rows(items, outputs, cfg.bfcl_strict_parse))
    return df, summarise(df)


# -- generation with a local checkpoint -------------------------------------------------------------------------------

class HFGenerator:
    """Batched greedy generation with a local HF causal-LM folder and its chat template (left padding)."""

    def __init__(self, checkpoint: str | Path, *, batch_size: int = 8, max_new_tokens: int = 128, device: str = "cpu",
                 dtype: str = "float32", max_prompt_tokens: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(checkpoint)
        if not (path / "config.json").is_file():
            raise ValueError(f"checkpoint {str(checkpoint)!r}: not a Hugging Face model folder (no config.json); "
                             "evaluation loads local folders only")
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not getattr(tok, "chat_template", None):
            raise ValueError(f"checkpoint {str(checkpoint)!r}: its tokenizer has no chat template; the evaluator "
                             "renders prompts (tools, turns) with tokenizer.apply_chat_template")
        tok.padding_side = "left"  # every prompt must end where generation starts
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise ValueError(f"checkpoint {str(checkpoint)!r}: tokenizer has neither a pad nor an eos token")
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
        model.to(device).eval()
        self.tok, self.model, self.device = tok, model, device
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        ctx = getattr(model.config, "max_position_embeddings", None)
        self.max_prompt_tokens = max_prompt_tokens or (ctx - max_new_tokens if isinstance(ctx, int) else 0)
        self.skipped: dict[int, str] = {}

    def render(self, prompt: Mapping) -> str:
        return self.tok.apply_chat_template(list(prompt["messages"]), tools=prompt.get("tools") or None,
                                            add_generation_prompt=True, tokenize=False)

    def __call__(self, prompts: list[dict]) -> list[str | None]:
        import torch

        self.skipped = {}
        ids = [self.tok(self.render(p), add_special_tokens=False)["input_ids"] for p in prompts]
        fits = []
        for i, x in enumerate(ids):
            if self.max_prompt_tokens and len(x) > self.max_prompt_tokens:
                self.skipped[i] = (f"prompt of {len(x)} tokens exceeds {self.max_prompt_tokens} (the model's context "
                                   f"minus max_new_tokens={self.max_new_tokens})")
            else:
                fits.append(i)
        fits.sort(key=lambda i: len(ids[i]))  # similar lengths per batch: less padding
        out: list[str | None] = [None] * len(prompts)
        eos = self.tok.eos_token_id
        with tqdm(total=len(fits), desc="generate", unit="prompt", disable=len(fits) < 2 * self.batch_size) as bar:
            for s in range(0, len(fits), self.batch_size):
                batch = fits[s:s + self.batch_size]
                enc = self.tok.pad({"input_ids": [ids[i] for i in batch]}, padding=True, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                with torch.no_grad():
                    gen = self.model.generate(**enc, do_sample=False, max_new_tokens=self.max_new_tokens,
                                              pad_token_id=self.tok.pad_token_id, eos_token_id=eos,
                                              temperature=None, top_p=None, top_k=None)
                new = gen[:, enc["input_ids"].shape[1]:]
                for i, text in zip(batch, self.tok.batch_decode(new, skip_special_tokens=True)):
                    out[i] = text.strip()
                bar.update(len(batch))
        return out


@dataclass
class EvalReport:
    dialogs: pl.DataFrame | None
    bfcl: pl.DataFrame | None
    metrics: dict


def run_evaluation(checkpoint: str | Path, dialogs_df: pl.DataFrame | None, cfg: EvaluateConfig, *, seed: int = 0,
                   generate_fn: GenerateFn | None = None) -> EvalReport:
    """The ``evaluate`` stage: one checkpoint on the synthetic test split and the configured BFCL categories."""
    style = None
    if generate_fn is None:
        from toolkiln.policy.render import CallStyle

        style = CallStyle.load(checkpoint)  # how this checkpoint was trained to write calls
        generate_fn = HFGenerator(checkpoint, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                  device=cfg.device, dtype=cfg.dtype, max_prompt_tokens=cfg.max_prompt_tokens)
    metrics: dict[str, Any] = {}
    dialogs = bfcl_df = None
    if dialogs_df is not None:
        dialogs, metrics["synthetic"] = evaluate_dialogs(dialogs_df, generate_fn, cfg, style)
    if cfg.bfcl_categories:
        bfcl_df, metrics["bfcl"] = evaluate_bfcl(cfg.bfcl_categories, generate_fn, cfg, seed=seed)
        per_cat = [v["accuracy"] for v in metrics["bfcl"]["by_group"].values()]
        metrics["bfcl"]["category_mean_accuracy"] = sum(per_cat) / len(per_cat) if per_cat else 0.0
    return EvalReport(dialogs, bfcl_df, metrics)
