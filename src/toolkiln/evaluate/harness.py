"""The evaluation harness: prompts -> batched greedy generation -> parse -> BFCL verdicts (README "Evaluation"; docs/architecture.md#evaluation).

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
from toolkiln.evaluate.config import EvaluateConfig, decoding_conflict
from toolkiln.callparse import ParseResult, is_text_reply, parse_calls

log = logging.getLogger(__name__)

GenerateFn = Callable[[list[dict]], list[str | None]]
HARNESS_ERRORS = ("not_generated", "bad_input")
ALL_ERROR_TYPES = ERROR_TYPES + HARNESS_ERRORS

SAMPLE_SCHEMA = {
    "id": pl.Utf8,
    "group": pl.Utf8,
    "output": pl.Utf8,
    "calls": pl.Utf8,
    "parse_error": pl.Utf8,
    "correct": pl.Boolean,
    "error_type": pl.Utf8,
    "detail": pl.Utf8,
    "partial_credit": pl.Float64,
    "n_gold_calls": pl.Int64,
    "n_pred_calls": pl.Int64,
    "gold": pl.Utf8,
    "split_target": pl.Utf8,
}


def judge(
    parsed: ParseResult, possible_answer: Sequence[Mapping] | None, func_docs: Sequence[Mapping], category: str
) -> MatchResult:
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

UNPARSABLE_NO_CALL = "counted as no call: an unparsable call attempt (BFCL's rule for no-call items)"


def _score_rows(items: list[dict], outputs: list[str | None], strict: bool) -> list[dict]:
    """items: {id, group, category, docs, answer, gold_calls, gold} -> per-sample rows."""
    rows = []
    for it, out in zip(items, outputs):
        row = {
            "id": it["id"],
            "group": it["group"],
            "output": out,
            "gold": it["gold"],
            "split_target": it.get("split_target"),
            "n_gold_calls": len(it["gold_calls"] or []) if it["gold_calls"] is not None else None,
        }
        if it.get("bad_input"):
            rows.append(
                {
                    **row,
                    "calls": None,
                    "parse_error": None,
                    "correct": False,
                    "error_type": "bad_input",
                    "detail": it["bad_input"],
                    "partial_credit": None,
                    "n_pred_calls": None,
                    "n_gold_calls": None,
                }
            )
            continue
        if out is None:
            rows.append(
                {
                    **row,
                    "calls": None,
                    "parse_error": it.get("skip_reason") or "not generated",
                    "correct": False,
                    "error_type": "not_generated",
                    "detail": it.get("skip_reason") or "",
                    "partial_credit": 0.0,
                    "n_pred_calls": None,
                }
            )
            continue
        parsed = parse_calls(out, strict=strict)
        try:
            verdict = judge(parsed, it["answer"], it["docs"], it["category"])
        except ValueError as exc:  # the gold references a function the docs lack: a data error, not a model error
            rows.append(
                {
                    **row,
                    "calls": _json(parsed.calls),
                    "parse_error": parsed.error,
                    "correct": False,
                    "error_type": "bad_input",
                    "detail": str(exc),
                    "partial_credit": None,
                    "n_pred_calls": len(parsed.calls) if parsed.calls is not None else None,
                }
            )
            continue
        if verdict.error_type == "unparsable" and is_text_reply(out):
            # A text answer is a decision (abstain, ask), not a broken call list: keep the two apart in errors.csv.
            verdict = MatchResult(False, "no_call", "a text reply where a call was expected")
        elif verdict.correct and parsed.calls is None and out.strip() and not is_text_reply(out):
            # BFCL's rule: an undecodable output on a no-call item counts as no call. Kept, and counted apart
            # (summarise: correct_unparsable), so broken call lists are not read as abstentions.
            verdict = MatchResult(True, None, UNPARSABLE_NO_CALL)
        credit = partial_credit(parsed.calls, it["gold_calls"]) if it["gold_calls"] is not None else None
        if verdict.correct and credit is not None:
            credit = 1.0  # BFCL-equivalent values (e.g. "" optional, string normal form) earn full credit
        rows.append(
            {
                **row,
                "calls": _json(parsed.calls),
                "parse_error": parsed.error,
                "correct": verdict.correct,
                "error_type": verdict.error_type,
                "detail": verdict.detail,
                "partial_credit": credit,
                "n_pred_calls": len(parsed.calls) if parsed.calls is not None else None,
            }
        )
    return rows


def summarise(df: pl.DataFrame) -> dict:
    """Accuracy, partial credit, parse failures and error types, overall and per ``group``."""
    scored = df.filter(pl.col("error_type").is_null() | (pl.col("error_type") != "bad_input"))

    def block(d: pl.DataFrame) -> dict:
        n = d.height
        errs = Counter(e for e in d["error_type"].to_list() if e)
        pc = d["partial_credit"].drop_nulls()
        return {
            "n": n,
            "accuracy": float(d["correct"].sum()) / n if n else 0.0,
            "correct_unparsable": int((d["correct"] & (d["detail"] == UNPARSABLE_NO_CALL)).sum()),
            "partial_credit": float(pc.mean()) if pc.len() else None,  # None: no gold calls to grade against
            "unparsable_rate": errs.get("unparsable", 0) / n if n else 0.0,
            "error_types": {e: errs.get(e, 0) for e in ALL_ERROR_TYPES if errs.get(e, 0)},
        }

    out = block(scored)
    out["n_bad_input"] = df.height - scored.height
    out["by_group"] = {g: block(scored.filter(pl.col("group") == g)) for g in sorted(set(scored["group"].to_list()))}
    kinds = sorted(k for k in set(scored["split_target"].to_list()) if k) if "split_target" in scored.columns else []
    if kinds:
        out["by_split_target"] = {k: block(scored.filter(pl.col("split_target") == k)) for k in kinds}
    return out


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA) if rows else pl.DataFrame(schema=SAMPLE_SCHEMA)


def _generate(prompts: list[dict], generate_fn: GenerateFn, what: str) -> list[str | None]:
    outputs = list(generate_fn(prompts)) if prompts else []
    if len(outputs) != len(prompts):
        raise ValueError(f"generate_fn returned {len(outputs)} texts for {len(prompts)} {what} prompts")
    return outputs


def _with_generation(metrics: dict, generate_fn: GenerateFn, asked: int) -> dict:
    # What the generation cost (HFGenerator.stats: prompts, seconds, prompt and new tokens): budgets and speed
    # regressions are read off the metrics of every evaluation, not guessed.
    stats = getattr(generate_fn, "stats", None) if asked else None  # not called: its stats are another call's
    if stats:
        metrics["generation"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()}
    return metrics


def _attach_skips(items: list[dict], generate_fn: GenerateFn) -> None:
    # A generator may say why it left a prompt unanswered (HFGenerator.skipped: index -> reason).
    for i, reason in (getattr(generate_fn, "skipped", None) or {}).items():
        items[i]["skip_reason"] = reason


def split_target(row: Mapping) -> str | None:
    """The split's verdict on a test dialog's target turn (unseen | partly_seen | seen | no_call), if recorded."""
    try:
        prov = json.loads(row.get("provenance") or "{}")
    except (TypeError, ValueError):
        return None
    kind = prov.get("split_target") if isinstance(prov, dict) else None
    return kind if isinstance(kind, str) else None


def select_dialogs(rows: list[dict], cfg: EvaluateConfig, seed: int) -> list[dict]:
    """The evaluated dialogs: unseen targets only (``cfg.targets``), a seeded per-type sample, then the cap."""
    import random

    if cfg.targets == "unseen":
        rows = [r for r in rows if split_target(r) in (None, "unseen", "no_call")]
    if cfg.samples_per_type:
        by_type: dict[str, list[dict]] = {}
        for r in rows:
            by_type.setdefault(str(r.get("type") or "?"), []).append(r)
        rng = random.Random(seed)
        rows = [r for t in sorted(by_type) for r in rng.sample(by_type[t], min(cfg.samples_per_type, len(by_type[t])))]
    if cfg.max_samples and len(rows) > cfg.max_samples:
        rows = rows[: cfg.max_samples]
    return rows


def evaluate_dialogs(
    dialogs_df: pl.DataFrame, generate_fn: GenerateFn, cfg: EvaluateConfig, style: Any = None, seed: int = 0
) -> tuple[pl.DataFrame, dict]:
    """Score ``generate_fn`` on dialog rows (schema.DIALOG_SCHEMA); metrics per dialog ``type``.

    A row whose prompt or target cannot be read is recorded as ``bad_input`` (and
    left out of the accuracy), never generated for, never a crash.
    """
    rows = select_dialogs(dialogs_df.to_dicts(), cfg, seed)
    items, prompts, asked = [], [], []
    for r in rows:
        it = {
            "id": str(r.get("id")),
            "group": r.get("type") or "?",
            "gold": r.get("target") or "",
            "category": "parallel_multiple",
            "answer": None,
            "gold_calls": None,
            "docs": [],
            "split_target": split_target(r),
        }
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
    return df, _with_generation(summarise(df), generate_fn, len(prompts))


def evaluate_bfcl(
    categories: Sequence[str], generate_fn: GenerateFn, cfg: EvaluateConfig, seed: int = 0, limit: int | None = None
) -> tuple[pl.DataFrame, dict]:
    """Score ``generate_fn`` on BFCL categories with BFCL's prompt; metrics per category."""
    items, prompts = [], []
    for cat in categories:
        for e in bfcl.load_category(cat, limit=cfg.bfcl_limit if limit is None else limit, seed=seed):
            gt = e["ground_truth"]
            gold_calls = [
                {
                    "name": n,
                    "arguments": {
                        k: next((o for o in v if o != ""), None) for k, v in a.items() if any(o != "" for o in v)
                    },
                }
                for item in gt
                for n, a in item.items()
            ]
            relevance = cat == "live_relevance"  # "some call" is right, but no particular one
            items.append(
                {
                    "id": e["id"],
                    "group": cat,
                    "category": cat,
                    "docs": e["function"],
                    "answer": gt,
                    "gold_calls": None if relevance else gold_calls,
                    "gold": format_calls(gold_calls) if gold_calls else "",
                }
            )
            prompts.append(
                {
                    "messages": bfcl.prompt_messages(e),
                    "tools": None,
                    "call_names": [f["name"] for f in e["function"]],
                    "call_docs": e["function"],
                }
            )
    outputs = _generate(prompts, generate_fn, "BFCL")
    _attach_skips(items, generate_fn)
    df = _frame(_score_rows(items, outputs, cfg.bfcl_strict_parse))
    return df, _with_generation(summarise(df), generate_fn, len(prompts))


# -- generation with a local checkpoint -------------------------------------------------------------------------------


def _string_step(st: list, ch: str) -> bool:
    """One character of a call-list scanner whose state keeps the open quote at ``st[2]`` and the escape flag at
    ``st[3]``: True when ``ch`` belongs to a string literal (brackets and commas in strings do not count)."""
    if st[2] is not None:
        if st[3]:
            st[3] = False
        elif ch == "\\":
            st[3] = True
        elif ch == st[2]:
            st[2] = None
        return True
    if ch in "\"'":
        st[2] = ch
        return True
    return False


def token_texts(tokenizer) -> list[str]:
    """Each token id's own text ("" for ids without a token): the table the logits processors and the stop rule
    read new tokens through."""
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in vocab]


class CallListEnd:
    """Per-row stopping criterion: a row is done once its output is a complete top-level call list ``[...]``.

    Scanned character by character over each row's new tokens (brackets inside string
    literals do not count), from a token -> text table built once per tokenizer. A row
    whose output does not start with ``[`` (prose, a refusal) is left to EOS and
    ``max_new_tokens``: only the call list is cut short, which is all any call parser
    reads (BFCL's decoders take the first list). What a trained policy writes after the
    list is its end-of-turn token anyway; a base model often keeps talking.
    """

    def __init__(self, tokenizer) -> None:
        self.text = token_texts(tokenizer)
        self.state: list[list] | None = None

    @staticmethod
    def new_state(text: str = "") -> list:
        """One row's scan state (started, depth, quote, escape, done), already fed ``text`` (an answer's start)."""
        st: list = [None, 0, None, False, False]
        CallListEnd.feed(st, text)
        return st

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        b = input_ids.shape[0]
        if self.state is None:
            self.state = [self.new_state() for _ in range(b)]
        new = input_ids[:, -1].tolist()
        done = []
        for r, tid in enumerate(new):
            st = self.state[r]
            if not st[4]:
                self.feed(st, self.text[tid] if tid < len(self.text) else "")
            done.append(st[4])
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    @staticmethod
    def feed(st: list, text: str) -> None:
        for ch in text:
            if st[0] is None:
                if ch.isspace():
                    continue
                st[0] = ch == "["
                if not st[0]:
                    return
            if not st[0] or st[4]:
                return
            if _string_step(st, ch):
                continue
            if ch in "[({":
                st[1] += 1
            elif ch in "])}":
                st[1] -= 1
                if st[1] <= 0:
                    st[4] = True
                    return


class CallBias:
    """Logits processor: ``bias`` added to every token that opens a call list (``[`` after optional spaces) at a
    row's first generated position, and nowhere else.

    It moves one decision — call, or answer in text — and leaves the rest to greedy decoding: a warm-up that
    answers half of the prompts that need a call in text (a validation finding) can be shifted toward calling
    without retraining, and the shift is a single number chosen on a validation sample.
    """

    def __init__(self, tokenizer, bias: float) -> None:
        import torch

        texts = token_texts(tokenizer)
        self.ids = torch.tensor([i for i, t in enumerate(texts) if t.lstrip().startswith("[")], dtype=torch.long)
        self.bias = bias
        self.start: int | None = None

    def reset(self) -> None:
        self.start = None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        if input_ids.shape[1] == self.start and len(self.ids):
            scores[:, self.ids.to(scores.device)] += self.bias
        return scores


class ToolNameConstraint:
    """Logits processor: inside a call list, a function name can only be one of the prompt's tools.

    Grammar-constrained decoding (as in llama.cpp grammars or vLLM's guided decoding), limited to the one
    place where a small model most often goes wrong without being wrong about the task: the name after ``[``
    or after a top-level ``,``. While a row writes a name, every token that would not keep ``name(`` a prefix
    of some ``tool(`` of *its* prompt is masked; arguments, prose and the choice to call at all are left to the
    model (a row whose output does not start with ``[`` is never constrained). Names with a space before them
    (``[ get``) are allowed one space. ``names`` is set per batch, one list per row.
    """

    def __init__(self, tokenizer) -> None:
        import bisect

        self.text = token_texts(tokenizer)
        self.by_text: dict[str, list[int]] = {}
        for i, t in enumerate(self.text):
            if t:
                self.by_text.setdefault(t, []).append(i)
        self.sorted_texts = sorted(self.by_text)
        self._bisect = bisect.bisect_left
        self.names: list[list[str]] = []
        self.state: list[list] | None = None
        self.start = 0
        self.masked_steps = 0

    def reset(self, names: list[list[str]]) -> None:
        self.names, self.state, self.masked_steps = [[f"{n}(" for n in ns] for ns in names], None, 0

    def _with_prefix(self, r: str) -> list[int]:
        """Ids of tokens whose text starts with ``r``."""
        out: list[int] = []
        i = self._bisect(self.sorted_texts, r)
        while i < len(self.sorted_texts) and self.sorted_texts[i].startswith(r):
            out += self.by_text[self.sorted_texts[i]]
            i += 1
        return out

    def allowed(self, buf: str, targets: list[str]) -> set[int]:
        cur = buf.lstrip()
        lead = [""] if cur or buf else ["", " "]
        ids: set[int] = set()
        for s in targets:
            if not s.startswith(cur):
                continue
            r = s[len(cur) :]
            for sp in lead:
                for k in range(1, len(r)):  # tokens that end inside the name (not at its "(")
                    ids.update(self.by_text.get(sp + r[:k], ()))
                ids.update(self._with_prefix(sp + r))  # tokens that finish it: "(" and whatever follows
        return ids

    def __call__(self, input_ids, scores):
        import torch

        b = input_ids.shape[0]
        if self.state is None:
            # started (None: not yet), depth, quote, escape, name buffer (None: not writing a name)
            self.state = [[None, 0, None, False, None] for _ in range(b)]
            self.start = input_ids.shape[1]
        elif input_ids.shape[1] > self.start:
            for r, tid in enumerate(input_ids[:, -1].tolist()):
                self._feed(self.state[r], self.text[tid] if tid < len(self.text) else "")
        for r in range(b):
            st = self.state[r]
            if st[4] is None or r >= len(self.names) or not self.names[r]:
                continue
            ok = self.allowed(st[4], self.names[r])
            if not ok:
                continue  # the name already left every tool's prefix (a token that spanned "["): let it be
            keep = torch.tensor(sorted(ok), dtype=torch.long, device=scores.device)
            row = torch.full_like(scores[r], float("-inf"))
            row[keep] = scores[r, keep]
            scores[r] = row
            self.masked_steps += 1
        return scores

    @staticmethod
    def _feed(st: list, text: str) -> None:
        for ch in text:
            if st[0] is None:
                if ch.isspace():
                    continue
                st[0] = ch == "["
                if st[0]:
                    st[1], st[4] = 1, ""
                continue
            if not st[0] or st[1] <= 0:
                return
            if st[4] is not None:  # writing a name
                if ch == "(":
                    st[4], st[1] = None, st[1] + 1
                else:
                    st[4] += ch
                continue
            if _string_step(st, ch):
                continue
            if ch in "[({":
                st[1] += 1
            elif ch in "])}":
                st[1] -= 1
            elif ch == "," and st[1] == 1:
                st[4] = ""


def prompt_tool_names(prompt: Mapping) -> list[str]:
    """The function names a prompt offers: ``call_names`` when given (BFCL lists its functions in the system
    prompt), else the names in ``tools`` (plain or OpenAI ``{"type": "function", "function": {...}}`` form)."""
    if prompt.get("call_names") is not None:
        return [str(n) for n in prompt["call_names"]]
    names = []
    for t in prompt.get("tools") or []:
        f = t.get("function", t) if isinstance(t, Mapping) else None
        if isinstance(f, Mapping) and isinstance(f.get("name"), str):
            names.append(f["name"])
    return names


def score_continuations(
    model, head: Sequence[int], conts: Sequence[Sequence[int]], pad: int, device: str, cache=None
) -> list[list[float]]:
    """The log-prob of every token of each continuation in ``conts`` after ``head``, in one right-padded forward
    pass (raw log-probs, no temperature). ``cache``: the KV cache of whatever precedes ``head`` (copied and
    repeated per continuation here); ``head`` must hold at least one token."""
    import copy

    import torch

    if not conts:
        return []
    width = len(head) + max(len(c) for c in conts)
    x = torch.full((len(conts), width), pad, dtype=torch.long)
    for r, c in enumerate(conts):
        x[r, : len(head) + len(c)] = torch.tensor([*head, *c], dtype=torch.long)
    kwargs = {}
    if cache is not None:
        cache = copy.deepcopy(cache)
        if len(conts) > 1:
            cache.batch_repeat_interleave(len(conts))
        kwargs = {"cache": cache, "use_cache": True}
    with torch.no_grad():
        # right padding: a row's real tokens never attend to its pad tokens (causal), so no mask is needed
        logp = model(input_ids=x.to(device), **kwargs).logits.float().log_softmax(-1)
    return [[float(logp[r, len(head) + j - 1, t]) for j, t in enumerate(c)] for r, c in enumerate(conts)]


class NgramDrafts:
    """Prompt-lookup drafts for one row: the tokens that followed the latest earlier occurrence of the row's last
    ``n`` tokens (``n`` = ``max_n`` down to 1) in its own prompt and output.

    A tool call copies most of its text from the prompt — the tool's description line, its name, argument names,
    values the user typed — so the continuation of an n-gram seen before is a cheap, often right guess of what
    greedy decoding will write next. The index maps every n-gram to where its latest occurrence ended and is
    extended one token at a time; the newest suffix is indexed only once a token follows it, so a lookup never
    finds itself.
    """

    def __init__(self, tokens: Sequence[int], max_n: int = 3) -> None:
        self.max_n, self.seq, self.last = max_n, [], {}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for t in tokens:
            self.seq.append(int(t))
            end = len(self.seq) - 1  # the n-grams ending just before the new token now have a continuation
            for n in range(1, self.max_n + 1):
                if end - n >= 0:
                    self.last[tuple(self.seq[end - n : end])] = end

    def draft(self, k: int) -> list[int]:
        size = len(self.seq)
        for n in range(min(self.max_n, size), 0, -1):
            j = self.last.get(tuple(self.seq[size - n :]))
            if j is not None:
                return self.seq[j : j + k]
        return []


def common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every sequence shares."""
    if not seqs:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs)
    k = 0
    while k < n and all(s[k] == first[k] for s in seqs):
        k += 1
    return k


class HFGenerator:
    """Batched greedy generation with a local HF causal-LM folder and its chat template.

    Prompts are sorted by length into batches (less padding). Two savings that leave the
    decoding rule unchanged (``bench/eval_speed.py`` measures them and the agreement
    with plain ``generate``):

    * ``prefix_cache``: the token prefix shared by every prompt (BFCL's instructions, a
      common system prompt) is run through the model once; each batch starts from a
      copy of that KV cache, its rows padded *between* prefix and suffix (positions
      follow the attention mask, so each row sees exactly what it would unpadded);
    * ``stop_at_call_end``: a row stops once its call list is complete
      (:class:`CallListEnd`), a batch once every row has;
    * ``prompt_lookup`` = k > 0: greedy decoding with prompt-lookup drafts (:class:`NgramDrafts`):
      each step feeds every row its last token plus up to k drafted tokens, and keeps the drafts
      up to the first one greedy decoding would not have written, plus greedy's own next token —
      1 to k + 1 tokens per forward pass instead of 1. Rejected positions stay in the KV cache,
      masked out; positions count only kept tokens, so each row attends to exactly its greedy
      history. Not combined with ``constrain_names`` (its logits processor works token by token);
    * ``call_bias``: a logit bias on the tokens that open a call list, at the first position only
      (:class:`CallBias`): the call-or-text decision shifted, everything after it greedy;
    * ``rank_tools``: when a row's greedy answer is a call list with a call in it and its prompt offers two or more
      tools, the first call's tool is chosen by the likelihood of each offered tool's call opening
      (``[``, the comment line when the checkpoint writes them, ``name(``; ``call_style``) as a
      whole, not token by token; a row whose greedy opening loses is written again, greedily, from
      the winning opening (up to the name). Whether to call, the arguments and any further calls stay
      greedy decoding's.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        batch_size: int = 8,
        max_new_tokens: int = 128,
        device: str = "cpu",
        dtype: str = "float32",
        max_prompt_tokens: int = 0,
        prefix_cache: bool = True,
        stop_at_call_end: bool = True,
        min_prefix: int = 16,
        constrain_names: bool = False,
        model=None,
        tokenizer=None,
        prompt_lookup: int = 0,
        rank_tools: bool = False,
        call_style=None,
        call_bias: float = 0.0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(checkpoint)
        if model is None and not (path / "config.json").is_file():
            raise ValueError(
                f"checkpoint {str(checkpoint)!r}: not a Hugging Face model folder (no config.json); "
                "evaluation loads local folders only"
            )
        tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not getattr(tok, "chat_template", None):
            raise ValueError(
                f"checkpoint {str(checkpoint)!r}: its tokenizer has no chat template; the evaluator "
                "renders prompts (tools, turns) with tokenizer.apply_chat_template"
            )
        tok.padding_side = "left"  # every prompt must end where generation starts
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise ValueError(f"checkpoint {str(checkpoint)!r}: tokenizer has neither a pad nor an eos token")
            tok.pad_token = tok.eos_token
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
        model.to(device).eval()
        self.tok, self.model, self.device = tok, model, device
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.prefix_cache, self.stop_at_call_end, self.min_prefix = prefix_cache, stop_at_call_end, min_prefix
        ctx = getattr(model.config, "max_position_embeddings", None)
        self.max_prompt_tokens = max_prompt_tokens or (ctx - max_new_tokens if isinstance(ctx, int) else 0)
        self.skipped: dict[int, str] = {}
        self.stats: dict[str, float] = {}
        self._stopper: CallListEnd | None = None
        self.constrain_names = constrain_names
        self._namer: ToolNameConstraint | None = None
        why = decoding_conflict(prompt_lookup, constrain_names, call_bias)
        if why:
            raise ValueError(why)
        self.prompt_lookup = prompt_lookup
        self.rank_tools, self.call_style = rank_tools, call_style
        self._bias = CallBias(tok, call_bias) if call_bias else None

    def render(self, prompt: Mapping) -> str:
        return self.tok.apply_chat_template(
            list(prompt["messages"]), tools=prompt.get("tools") or None, add_generation_prompt=True, tokenize=False
        )

    def _prefix(self, seqs: list[list[int]]):
        """(prefix length, its KV cache) when the prompts share at least ``min_prefix`` tokens, else (0, None)."""
        import torch

        if not self.prefix_cache or len(seqs) < 2:
            return 0, None
        p = min(common_prefix(seqs), min(len(s) for s in seqs) - 1)  # every row keeps >= 1 token to feed
        if p < self.min_prefix:
            return 0, None
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([seqs[0][:p]], device=self.device), use_cache=True)
        return p, out.cache

    def batch_inputs(self, seqs: list[list[int]], p: int, cache) -> tuple[Any, Any, dict]:
        """(input ids, attention mask, model kwargs) of one batch: rows padded between the shared prefix (its first
        ``p`` tokens, whose KV ``cache`` each row gets a copy of) and their own suffix, so every row ends where
        generation starts."""
        import copy

        import torch

        pad = self.tok.pad_token_id
        width = max(len(seq) - p for seq in seqs)
        x = torch.full((len(seqs), p + width), pad, dtype=torch.long)
        att = torch.zeros((len(seqs), p + width), dtype=torch.long)
        for r, seq in enumerate(seqs):
            x[r, :p] = torch.tensor(seq[:p], dtype=torch.long)
            att[r, :p] = 1
            x[r, p + width - (len(seq) - p) :] = torch.tensor(seq[p:], dtype=torch.long)
            att[r, p + width - (len(seq) - p) :] = 1
        kwargs = {}
        if cache is not None:
            c = copy.deepcopy(cache)
            c.batch_repeat_interleave(len(seqs))
            kwargs["cache"] = c
        return x, att, kwargs

    def __call__(self, prompts: list[dict]) -> list[str | None]:
        import time

        t0 = time.perf_counter()
        self.skipped = {}
        ids = [self.tok(self.render(p), add_special_tokens=False)["input_ids"] for p in prompts]
        fits = []
        for i, x in enumerate(ids):
            if self.max_prompt_tokens and len(x) > self.max_prompt_tokens:
                self.skipped[i] = (
                    f"prompt of {len(x)} tokens exceeds {self.max_prompt_tokens} (the model's context "
                    f"minus max_new_tokens={self.max_new_tokens})"
                )
            else:
                fits.append(i)
        if self.stop_at_call_end and self._stopper is None:
            self._stopper = CallListEnd(self.tok)
        if self.constrain_names and self._namer is None:
            self._namer = ToolNameConstraint(self.tok)
        counts = {"new_tokens": 0, "truncated": 0, "forward_passes": 0, "drafted": 0, "accepted": 0}
        out: list[str | None] = [None] * len(prompts)
        texts, p = self._generate_ids([ids[i] for i in fits], [prompts[i] for i in fits], counts)
        for i, text in zip(fits, texts):
            out[i] = text
        ranked = self._rank_first_calls(prompts, ids, fits, out, counts) if self.rank_tools else None
        self.stats = {
            "prompts": len(fits),
            "seconds": time.perf_counter() - t0,
            "shared_prefix_tokens": p,
            "prompt_tokens": sum(len(ids[i]) for i in fits),
            "new_tokens": counts["new_tokens"],
            "truncated": counts["truncated"],
        }
        if self.prompt_lookup:
            self.stats["prompt_lookup"] = {k: counts[k] for k in ("forward_passes", "drafted", "accepted")}
        if ranked is not None:
            self.stats["rank_tools"] = ranked
        return out

    def _generate_ids(
        self, seqs: list[list[int]], prompts: list[dict], counts: dict[str, int], heads: list[str] | None = None
    ) -> tuple[list[str], int]:
        """Greedy continuations of token sequences (length-sorted into batches here); ``heads``: text each
        sequence already holds of its answer (the stop rule reads it). Returns (texts in input order, the shared
        prefix length)."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths per batch: less padding
        p, cache = self._prefix([seqs[i] for i in order])
        texts = [""] * len(seqs)
        eos, pad = self.tok.eos_token_id, self.tok.pad_token_id
        with tqdm(total=len(seqs), desc="generate", unit="prompt", disable=len(seqs) < 2 * self.batch_size) as bar:
            for s in range(0, len(order), self.batch_size):
                batch = order[s : s + self.batch_size]
                x, att, kwargs = self.batch_inputs([seqs[i] for i in batch], p, cache)
                if self._stopper is not None:
                    self._stopper.state = None
                    if heads is not None:  # a row continuing an opening starts the stop rule inside its call list
                        self._stopper.state = [CallListEnd.new_state(heads[i]) for i in batch]
                    kwargs["stopping_criteria"] = StoppingCriteriaList([self._stopper])
                processors = []
                if self._bias is not None and heads is None:  # a row continuing an opening has decided to call
                    self._bias.reset()
                    processors.append(self._bias)
                if self._namer is not None:
                    self._namer.reset([prompt_tool_names(prompts[i]) for i in batch])
                    processors.append(self._namer)
                if processors:
                    kwargs["logits_processor"] = LogitsProcessorList(processors)
                if self.prompt_lookup and heads is None:
                    new = self._lookup_generate(x, att, kwargs.get("cache"), p, counts)
                else:
                    with torch.no_grad():
                        gen = self.model.generate(
                            input_ids=x.to(self.device),
                            attention_mask=att.to(self.device),
                            do_sample=False,
                            max_new_tokens=self.max_new_tokens,
                            pad_token_id=pad,
                            eos_token_id=eos,
                            temperature=None,
                            top_p=None,
                            top_k=None,
                            **kwargs,
                        )
                    new = gen[:, x.shape[1] :]
                counts["new_tokens"] += int((new != pad).sum())
                # a row still writing when the budget ran out: an unparsable verdict there may be the budget's fault
                if new.shape[1] >= self.max_new_tokens:
                    last = new[:, self.max_new_tokens - 1]
                    counts["truncated"] += int(((last != pad) & (last != eos)).sum())
                for i, text in zip(batch, self.tok.batch_decode(new, skip_special_tokens=True)):
                    texts[i] = text if heads is not None else text.strip()
                bar.update(len(batch))
        return texts, p

    def _rank_first_calls(
        self, prompts: list[dict], ids: list[list[int]], fits: list[int], out: list[str | None], counts: dict[str, int]
    ) -> dict[str, int]:
        """``rank_tools`` (class docstring): re-choose the first call's tool of every call-list answer by the
        likelihood of each offered tool's whole opening; rows whose greedy opening lost are written again."""
        import torch

        from toolkiln.policy.render import CallStyle, call_openings

        style = self.call_style or CallStyle()
        pad = self.tok.pad_token_id
        stats = {"ranked": 0, "changed": 0}
        redo: dict[int, str] = {}
        for i in fits:
            tools = prompts[i].get("tools") or prompts[i].get("call_docs") or []
            # only a call list that calls something: "[]" or a comment-only list is the decision not to call
            if not out[i] or not out[i].startswith("[") or len(tools) < 2 or not parse_calls(out[i]).calls:
                continue
            ops = call_openings(tools, style)
            if len(ops) < 2:
                continue
            with torch.no_grad():
                cache = self.model(input_ids=torch.tensor([ids[i][:-1]], device=self.device), use_cache=True).cache
            conts = [self.tok(t, add_special_tokens=False)["input_ids"] for _, t in ops]
            scores = [sum(lp) for lp in score_continuations(self.model, ids[i][-1:], conts, pad, self.device, cache)]
            name, best = ops[max(range(len(ops)), key=scores.__getitem__)]
            stats["ranked"] += 1
            if not out[i].startswith(best):
                redo[i] = best[: len(best) - 1]  # up to the name: the model writes its own "(" and what follows
        if redo:
            rows = list(redo)
            seqs = [ids[i] + self.tok(redo[i], add_special_tokens=False)["input_ids"] for i in rows]
            texts, _ = self._generate_ids(seqs, [prompts[i] for i in rows], counts, heads=[redo[i] for i in rows])
            for i, text in zip(rows, texts):
                out[i] = (redo[i] + text).strip()
            stats["changed"] = len(rows)
        return stats

    def _lookup_generate(self, x, att, cache, p: int, counts: dict[str, int]):
        """Greedy decoding of one batch with prompt-lookup drafts (see the class docstring). Returns the new
        tokens of each row right-padded with the pad token, as ``generate`` does after the prompt; ``counts``
        accumulates forward passes, drafted and accepted tokens."""
        import torch

        k, budget, dev = self.prompt_lookup, self.max_new_tokens, self.device
        eos, pad = self.tok.eos_token_id, self.tok.pad_token_id
        b = x.shape[0]
        drafts = [NgramDrafts(x[r][att[r].bool()].tolist()) for r in range(b)]
        stops = [CallListEnd.new_state() for _ in range(b)] if self._stopper is not None else None
        outs: list[list[int]] = [[] for _ in range(b)]
        done = [False] * b

        def emit(r: int, tokens: list[int]) -> None:
            # the stopping rules of generate: the token is kept, then EOS, the budget or the call list's end stop
            for t in tokens:
                outs[r].append(t)
                drafts[r].extend([t])
                if t == eos or len(outs[r]) >= budget:
                    done[r] = True
                    return
                if stops is not None:
                    CallListEnd.feed(stops[r], self._stopper.text[t] if t < len(self._stopper.text) else "")
                    if stops[r][4]:
                        done[r] = True
                        return

        mask = att.to(dev)
        pos = mask.sum(dim=1).tolist()  # a row's next position = its number of real tokens
        with torch.no_grad():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            res = self.model(
                input_ids=x[:, p:].to(dev),
                attention_mask=mask,
                position_ids=positions[:, p:],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache = res.cache
            counts["forward_passes"] += 1
            for r, t in enumerate(res.logits[:, -1].float().argmax(-1).tolist()):
                emit(r, [t])
            while not all(done):
                # each live row: its last token (not yet in the cache) and a draft that cannot overrun the budget
                feed = [
                    [] if done[r] else [outs[r][-1], *drafts[r].draft(min(k, budget - len(outs[r]) - 1))]
                    for r in range(b)
                ]
                width = max(len(f) for f in feed)
                inp = torch.full((b, width), pad, dtype=torch.long)
                block = torch.zeros((b, width), dtype=mask.dtype)
                pids = torch.zeros((b, width), dtype=torch.long)
                for r, f in enumerate(feed):
                    if f:
                        inp[r, : len(f)] = torch.tensor(f, dtype=torch.long)
                        block[r, : len(f)] = 1
                        pids[r, : len(f)] = torch.arange(pos[r], pos[r] + len(f))
                base = mask.shape[1]
                mask = torch.cat([mask, block.to(dev)], dim=1)
                res = self.model(
                    input_ids=inp.to(dev), attention_mask=mask, position_ids=pids.to(dev), cache=cache, use_cache=True
                )
                cache = res.cache
                greedy = res.logits.float().argmax(-1).tolist()
                counts["forward_passes"] += 1
                for r, f in enumerate(feed):
                    if not f:
                        continue
                    d, a = f[1:], 0
                    while a < len(d) and d[a] == greedy[r][a]:
                        a += 1
                    mask[r, base + 1 + a :] = 0  # rejected drafts stay in the cache, never attended to again
                    pos[r] += 1 + a
                    counts["drafted"] += len(d)
                    counts["accepted"] += a
                    emit(r, [*d[:a], greedy[r][a]])
        width = max(len(o) for o in outs)
        new = torch.full((b, width), pad, dtype=torch.long)
        for r, o in enumerate(outs):
            new[r, : len(o)] = torch.tensor(o, dtype=torch.long)
        return new


@dataclass
class EvalReport:
    dialogs: pl.DataFrame | None
    bfcl: pl.DataFrame | None
    metrics: dict


def run_evaluation(
    checkpoint: str | Path,
    dialogs_df: pl.DataFrame | None,
    cfg: EvaluateConfig,
    *,
    seed: int = 0,
    generate_fn: GenerateFn | None = None,
) -> EvalReport:
    """The ``evaluate`` stage: one checkpoint on the synthetic test split and the configured BFCL categories."""
    style = None
    if generate_fn is None:
        from toolkiln.policy.render import CallStyle

        style = CallStyle.load(checkpoint)  # how this checkpoint was trained to write calls
        generate_fn = HFGenerator(
            checkpoint,
            batch_size=cfg.batch_size,
            max_new_tokens=cfg.max_new_tokens,
            device=cfg.device,
            dtype=cfg.dtype,
            max_prompt_tokens=cfg.max_prompt_tokens,
            constrain_names=cfg.constrain_names,
            prompt_lookup=cfg.prompt_lookup,
            rank_tools=cfg.rank_tools,
            call_style=style,
            call_bias=cfg.call_bias,
        )
    metrics: dict[str, Any] = {}
    dialogs = bfcl_df = None
    if dialogs_df is not None:
        dialogs, metrics["synthetic"] = evaluate_dialogs(dialogs_df, generate_fn, cfg, style, seed=seed)
    if cfg.bfcl_categories:
        bfcl_df, metrics["bfcl"] = evaluate_bfcl(cfg.bfcl_categories, generate_fn, cfg, seed=seed)
        per_cat = [v["accuracy"] for v in metrics["bfcl"]["by_group"].values()]
        metrics["bfcl"]["category_mean_accuracy"] = sum(per_cat) / len(per_cat) if per_cat else 0.0
    return EvalReport(dialogs, bfcl_df, metrics)
