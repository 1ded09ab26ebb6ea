"""The model layer of ToolACE's dual-layer verification (ToolACE §3.3).

ToolACE asks LLM "experts" three sub-questions of every sample that passed the
rules: *hallucination* (is an argument value made up, i.e. not in the user
query or system prompt?), *consistency* (does the response do what the user
asked?) and the *tool-response check* (is the simulated result plausible for
the API?). :class:`ModelJudge` is that interface; two implementations:

* :class:`EmbeddedJudge` (offline default): value grounding against the user
  turns, system prompt, earlier tool results and the parameter's enum/default;
  cosine similarity between the request and every candidate API, embedded by the
  static word-piece encoder distilled from MiniLM or by MiniLM itself
  (``verify.model.encoder``; a called API must rank among the top k, k = APIs the
  request needed, within a margin);
  and the tool result against the API's ``returns`` schema (compiled checker).
* :class:`LLMJudge`: one prompt per sub-question through any
  :class:`~toolkiln.llm.base.ChatBackend`; an answer that is not a verdict is
  recorded as ``judge_unparsable`` (a backend failure as ``judge_error``),
  never raised.

Each verdict is ``pass``, ``fail``, ``skipped`` (nothing to judge, e.g. no call),
``judge_unparsable`` or ``judge_error``; :func:`model_checks` turns them into
``ok_model_<check>`` columns and reasons.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
import polars as pl

from toolkiln.llm.base import ChatBackend, ChatRequest
from toolkiln.argcheck import compile_value, short
from toolkiln.embed import api_text as embed_api_text

MODEL_SUBCHECKS = ("hallucination", "consistency", "tool_response")
MODEL_CHECKS = tuple(f"ok_model_{s}" for s in MODEL_SUBCHECKS)
OUTCOMES = ("pass", "fail", "skipped", "judge_unparsable", "judge_error")


@dataclass
class Verdict:
    outcome: str
    reason: str = ""


@dataclass
class DialogView:
    """What a judge sees of one dialog (parsed once)."""

    id: str
    type: str
    system: str
    tools: dict[str, dict]
    messages: list[dict]

    @classmethod
    def from_row(cls, row: dict) -> "DialogView":
        tools = json.loads(row["tools"])
        return cls(
            id=row["id"],
            type=row["type"],
            system=row["system"] or "",
            tools={t["name"]: t for t in tools if isinstance(t, dict) and "name" in t},
            messages=json.loads(row["messages"]),
        )

    def call_turns(self) -> list[int]:
        return [i for i, m in enumerate(self.messages) if m.get("role") == "assistant" and m.get("tool_calls")]

    # The embedded judge reads these texts when it embeds, when it cuts a shard and when it judges: computed once
    # per dialog (a tenth of the model layer's time went to recomputing them).
    @functools.cached_property
    def api_texts(self) -> dict[str, str]:
        """Each offered tool's MiniLM text (:func:`api_text`), by tool name."""
        return {n: api_text(a) for n, a in self.tools.items()}

    @functools.cached_property
    def requests(self) -> list[tuple[str, list[int]]]:
        """(request text without its argument values, the call turns answering it): a dependent chain answers
        one request."""
        groups: dict[int, list[int]] = {}
        for t in self.call_turns():
            groups.setdefault(request_for(self.messages, t)[1], []).append(t)
        return [
            (
                intent_text(
                    request_for(self.messages, g[0])[0], [c for t in g for c in self.messages[t]["tool_calls"]]
                ),
                g,
            )
            for g in groups.values()
        ]


class ModelJudge(Protocol):
    name: str

    def judge(self, dialogs: Sequence[DialogView]) -> list[dict[str, Verdict]]:
        """One ``{sub-check: Verdict}`` per dialog, in order; never raises for a bad dialog."""
        ...


# ---------------------------------------------------------------- grounding (hallucination)
_NUM_RE = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|(?<![\w.])-?\d+(?:\.\d+)?")
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_WORDS.update({"a couple": 2, "a dozen": 12, "dozen": 12, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100})
# one pass for every number word (longest first, so "a dozen" wins over "dozen"; both mean 12): a search per word
# was a quarter of the model layer's own time
_WORDS_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)) + r")\b")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ]
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_DATE_TEXT_RE = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]{3,9})\.?,?\s+(\d{4})\b|"
    r"\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b"
)
_ISO_DATE_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


@dataclass
class Context:
    """Everything an argument value may legitimately come from at one call turn."""

    norm: str
    tokens: frozenset
    numbers: frozenset
    dates: frozenset

    @classmethod
    def of(cls, texts: list[str]) -> "Context":
        raw = "\n".join(texts)
        low = raw.lower()
        norm = _norm(raw)
        nums = set()
        for m in _NUM_RE.finditer(raw):
            try:
                nums.add(float(m.group().replace(",", "")))
            except ValueError:
                pass
        nums.update(float(_WORDS[w]) for w in _WORDS_RE.findall(low))
        dates = {(int(y), int(mo), int(d)) for y, mo, d in _ISO_DATE_RE.findall(raw)}
        for m in _DATE_TEXT_RE.finditer(low):
            d, mon, y = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(5), m.group(4), m.group(6))
            if mon in _MONTHS:
                dates.add((int(y), _MONTHS[mon], int(d)))
        return cls(norm=f" {norm} ", tokens=frozenset(norm.split()), numbers=frozenset(nums), dates=frozenset(dates))


def grounded(value: Any, ctx: Context, schema: dict | None) -> bool:
    """Is an argument value supported by the context (or fixed by its own schema)?"""
    schema = schema if isinstance(schema, dict) else {}
    if value is None or isinstance(value, bool):
        return True  # a flag's value is an intent reading, not a fact that can be made up
    if (
        isinstance(schema.get("enum"), list)
        and value in schema["enum"]
        or ("default" in schema and value == schema["default"])
    ):
        return True
    if isinstance(value, list):
        return all(grounded(v, ctx, schema.get("items")) for v in value)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return all(grounded(v, ctx, props.get(k)) for k, v in value.items())
    if isinstance(value, (int, float)):
        return float(value) in ctx.numbers
    if isinstance(value, str):
        n = _norm(value)
        if not n:
            return True
        if f" {n} " in ctx.norm or all(t in ctx.tokens for t in n.split()):
            return True
        m = _ISO_DATE_RE.match(value)
        if m:
            return tuple(int(x) for x in m.groups()) in ctx.dates
        return False
    return False


# ---------------------------------------------------------------- embedded judge
def api_text(api: dict) -> str:
    """An API dict's MiniLM text (:func:`toolkiln.embed.api_text`): split name, description, parameter names."""
    props = (api.get("parameters") or {}).get("properties") if isinstance(api.get("parameters"), dict) else None
    return embed_api_text(api.get("name", ""), api.get("description", ""), props if isinstance(props, dict) else ())


def intent_text(request: str, calls: list[dict]) -> str:
    """The request without the argument values it carries: names and dates say nothing about which API fits."""
    for c in calls:
        for v in (c.get("arguments") or {}).values() if isinstance(c.get("arguments"), dict) else ():
            if isinstance(v, str) and len(v) > 2:
                request = request.replace(v, " ")
    return request


def request_for(messages: list[dict], turn: int) -> tuple[str, int]:
    """The open request at ``turn``: user turns since the last assistant answer (a question keeps it open)."""
    users: list[str] = []
    start = 0
    for i in range(turn - 1, -1, -1):
        m = messages[i]
        if (
            m.get("role") == "assistant"
            and not m.get("tool_calls")
            and not str(m.get("content", "")).rstrip().endswith("?")
        ):
            start = i + 1
            break
    users = [str(messages[i].get("content", "")) for i in range(start, turn) if messages[i].get("role") == "user"]
    return "\n".join(users), start


@dataclass
class EmbeddedJudge:
    """Offline model layer: grounding, intent ranking (static or MiniLM encoder), returns-schema check."""

    intent_margin: float = 0.15
    batch_size: int = 128
    embed_dtype: str = "float32"
    name: str = "embedded"
    encoder: str = "minilm"  # "minilm" | "static" (then static_encoder is the distilled table's folder)
    static_encoder: str | None = None
    _emb: dict = field(default_factory=dict, repr=False)
    _returns: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.encoder not in ("minilm", "static"):
            raise ValueError(f"embedded judge: encoder {self.encoder!r}; expected 'minilm' or 'static'")
        if self.encoder == "static" and not self.static_encoder:
            raise ValueError(
                "embedded judge: verify.model.encoder is 'static' but no distilled encoder folder was "
                "given (the verify stage's --static-encoder, made by the distill_encoder stage)"
            )

    def preload(self, texts: Sequence[str], embeddings: np.ndarray, encoder: str = "minilm") -> int:
        """Seed the by-text cache with embeddings made elsewhere (the pool's, embedded once where it is built:
        every API a dialog offers is a pool API, so the verifier then embeds only the requests). Returns how
        many texts were added. ``encoder``: what made them; vectors of another encoder live in another space
        and are refused."""
        if encoder != self.encoder:
            raise ValueError(f"preload: {encoder} embeddings into a judge whose encoder is {self.encoder}")
        if len(texts) != len(embeddings):
            raise ValueError(f"preload: {len(texts)} texts but {len(embeddings)} embeddings")
        before = len(self._emb)
        for t, v in zip(texts, np.asarray(embeddings, dtype=np.float32)):
            self._emb.setdefault(t, v)
        return len(self._emb) - before

    def _embed(self, texts: list[str]) -> None:
        todo = sorted({t for t in texts if t not in self._emb})
        if todo:
            from toolkiln.embed import embed_texts, load_static

            if self.encoder == "static":
                vectors = load_static(str(self.static_encoder)).encode(todo)
            else:
                vectors = embed_texts(todo, batch_size=self.batch_size, dtype=self.embed_dtype)
            for t, v in zip(todo, vectors):
                self._emb[t] = v

    def texts(self, dialogs: Sequence[DialogView]) -> list[str]:
        """Every text the consistency check embeds for these dialogs (offered APIs, open requests)."""
        texts = []
        for d in dialogs:
            texts += d.api_texts.values()
            texts += [req for req, _ in d.requests]
        return texts

    def prepare(self, dialogs: Sequence[DialogView]) -> None:
        """Embed these dialogs' texts now, in one call: a shard judged later reads the same vectors.

        A bfloat16 encoder's vector for a text depends on the batch it was padded with, so shards that
        embedded their own texts would judge near-ties differently from one process; embedding every
        text once before sharding keeps the verdicts those of the single-process run.
        """
        self._embed(self.texts(dialogs))

    def for_shard(self, dialogs: Sequence[DialogView]) -> "EmbeddedJudge":
        """A judge for a shard of prepared dialogs: the same settings and just the vectors it reads
        (what a Dask worker is sent)."""
        return EmbeddedJudge(
            intent_margin=self.intent_margin,
            batch_size=self.batch_size,
            embed_dtype=self.embed_dtype,
            name=self.name,
            encoder=self.encoder,
            static_encoder=self.static_encoder,
            _emb={t: self._emb[t] for t in self.texts(dialogs) if t in self._emb},
        )

    def judge(self, dialogs: Sequence[DialogView]) -> list[dict[str, Verdict]]:
        self._embed(self.texts(dialogs))
        out = []
        for d in dialogs:
            try:
                out.append(
                    {
                        "hallucination": self.hallucination(d),
                        "consistency": self.consistency(d),
                        "tool_response": self.tool_response(d),
                    }
                )
            except Exception as exc:  # noqa: BLE001 - a malformed dialog is a recorded outcome
                v = Verdict("judge_error", f"{type(exc).__name__}: {exc}")
                out.append({s: v for s in MODEL_SUBCHECKS})
        return out

    def hallucination(self, d: DialogView) -> Verdict:
        turns = d.call_turns()
        if not turns:
            return Verdict("skipped", "no calls")
        bad = []
        for t in turns:
            ctx = Context.of(
                [d.system] + [str(m.get("content", "")) for m in d.messages[:t] if m.get("role") in ("user", "tool")]
            )
            for c in d.messages[t]["tool_calls"]:
                props = ((d.tools.get(c.get("name")) or {}).get("parameters") or {}).get("properties") or {}
                for k, v in (c.get("arguments") or {}).items():
                    if not grounded(v, ctx, props.get(k)):
                        bad.append(
                            f"turn {t}: {c.get('name')}.{k}={short(v)} is not grounded in the user turns, "
                            "system prompt or earlier tool results"
                        )
        return Verdict("fail", "; ".join(bad)) if bad else Verdict("pass")

    def consistency(self, d: DialogView) -> Verdict:
        turns = d.call_turns()
        if not turns:
            return Verdict("skipped", "no calls")
        names = list(d.tools)
        if len(names) < 2:
            return Verdict("pass", "single candidate")
        api_m = np.stack([self._emb[d.api_texts[n]] for n in names])
        bad = []
        for req_text, group in d.requests:
            asked = {c.get("name") for t in group for c in d.messages[t]["tool_calls"]}
            called = sorted(asked & set(names))  # an invented name is the rule layer's finding, not ranked here
            sims = api_m @ self._emb[req_text]
            kth = np.sort(sims)[::-1][min(len(asked), len(names)) - 1] if called else 0.0
            for n in called:
                s = float(sims[names.index(n)])
                if s < kth - self.intent_margin:
                    best = names[int(np.argmax(sims))]
                    bad.append(
                        f"turn {group[0]}: {n} (similarity {s:.2f}) does not match the request as well as "
                        f"{best} ({float(sims.max()):.2f})"
                    )
        return Verdict("fail", "; ".join(bad)) if bad else Verdict("pass")

    def tool_response(self, d: DialogView) -> Verdict:
        bad, n = [], 0
        for i, m in enumerate(d.messages):
            if m.get("role") != "tool":
                continue
            api = d.tools.get(m.get("name"))
            rets = (api or {}).get("returns")
            if not isinstance(rets, dict) or not rets or rets.get("x-inferred"):
                continue  # no documented schema (an importer's placeholder is not a contract)
            n += 1
            key = (m.get("name"), json.dumps(rets, sort_keys=True))
            check = self._returns.get(key)
            if check is None:
                check = self._returns[key] = compile_value(rets)
            try:
                value = json.loads(m.get("content") or "")
            except json.JSONDecodeError:
                bad.append(f"turn {i}: result of {m.get('name')} is not JSON")
                continue
            probs: list = []
            check(value, f"turn {i}: {m.get('name')} result", probs)
            bad += [reason for _, reason in probs]
            if isinstance(value, dict) and isinstance(rets.get("required"), list):
                bad += [f"turn {i}: {m.get('name')} result lacks {k!r}" for k in rets["required"] if k not in value]
        if not n:
            return Verdict("skipped", "no tool result with a returns schema")
        return Verdict("fail", "; ".join(bad)) if bad else Verdict("pass")


# ---------------------------------------------------------------- LLM judge
JUDGE_SYSTEM = (
    "You verify synthetic tool-use training data. Answer only with a JSON object "
    '{"verdict": "pass" or "fail", "reason": "<one sentence>"}.'
)
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]}, "reason": {"type": "string"}},
    "required": ["verdict", "reason"],
}
QUESTIONS = {
    "hallucination": "Hallucination check: is EVERY argument value in the assistant's tool calls stated in the user "
    "turns, the system prompt or an earlier tool result (or fixed by the API's enum/default)? "
    "'fail' if any value is made up.",
    "consistency": "Consistency check: does the assistant's final response (its tool calls, or its text when it makes "
    "no call) do what the user asked, using the right API(s) for the request? 'fail' otherwise.",
    "tool_response": "Tool-response check: is every tool result plausible for the call that produced it and does it "
    "fit the API's declared returns schema? 'fail' otherwise.",
}
_VERDICT_WORDS = {
    "pass": "pass",
    "yes": "pass",
    "true": "pass",
    "valid": "pass",
    "ok": "pass",
    "fail": "fail",
    "no": "fail",
    "false": "fail",
    "invalid": "fail",
}


def render_dialog(d: DialogView) -> str:
    tools = [
        {
            "name": a.get("name"),
            "description": a.get("description"),
            "parameters": a.get("parameters"),
            "returns": a.get("returns"),
        }
        for a in d.tools.values()
    ]
    lines = [f"System prompt: {d.system}", f"Tools: {json.dumps(tools, ensure_ascii=False)}", "Conversation:"]
    for i, m in enumerate(d.messages):
        role = m.get("role")
        if role == "assistant" and m.get("tool_calls"):
            lines.append(f"[{i}] assistant calls: {json.dumps(m['tool_calls'], ensure_ascii=False)}")
        elif role == "tool":
            lines.append(f"[{i}] tool {m.get('name')}: {m.get('content')}")
        else:
            lines.append(f"[{i}] {role}: {m.get('content')}")
    return "\n".join(lines)


def parse_verdict(text: str | None) -> Verdict:
    """A judge answer -> pass/fail with reason, or ``judge_unparsable`` keeping a snippet of what came back."""
    if text is None or not str(text).strip():
        return Verdict("judge_unparsable", "empty answer")
    text = str(text)
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = dec.raw_decode(text[m.start() :])
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            v = _VERDICT_WORDS.get(str(obj.get("verdict", "")).strip().lower())
            if v:
                return Verdict(v, str(obj.get("reason", ""))[:500])
    m = re.match(r"^\W*(pass|fail|yes|no)\b[\s:.,-]*(.*)", text.strip(), re.I | re.S)
    if m:
        return Verdict(_VERDICT_WORDS[m.group(1).lower()], m.group(2).strip()[:500])
    return Verdict("judge_unparsable", f"no verdict in {short(text, 120)}")


@dataclass
class LLMJudge:
    """One chat request per (dialog, sub-question) through any ChatBackend."""

    backend: ChatBackend
    model: str = ""
    max_tokens: int = 256
    name: str = "llm"

    def requests(self, d: DialogView) -> dict[str, ChatRequest]:
        body = render_dialog(d)
        return {
            s: ChatRequest(
                messages=({"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": f"{body}\n\n{q}"}),
                model=self.model,
                temperature=0.0,
                max_tokens=self.max_tokens,
                tag=f"judge:{s}:{d.id}",
                response_format="json_schema",
                schema=VERDICT_SCHEMA,
            )
            for s, q in QUESTIONS.items()
        }

    def judge(self, dialogs: Sequence[DialogView]) -> list[dict[str, Verdict]]:
        plan = [
            (j, s, r)
            for j, d in enumerate(dialogs)
            for s, r in self.requests(d).items()
            if not (s != "consistency" and not d.call_turns())
        ]
        results = self.backend.chat_many([r for _, _, r in plan], desc="model-layer judge") if plan else []
        out: list[dict[str, Verdict]] = [{s: Verdict("skipped", "no calls") for s in MODEL_SUBCHECKS} for _ in dialogs]
        for (j, s, _), res in zip(plan, results):
            if not res.ok:
                out[j][s] = Verdict("judge_error", res.error or "backend failure")
            else:
                out[j][s] = parse_verdict(res.texts[0] if res.texts else None)
        return out


def make_judge(
    cfg: Any, llm_cfg: Any, runtime: Any = None, *, trace_path: str | None = None, static_encoder: str | None = None
) -> ModelJudge:
    """The judge ``verify.model`` asks for (``auto``: the LLM unless ``llm.backend`` is the simulator).

    ``static_encoder``: the distilled encoder's folder, needed when ``verify.model.encoder`` is ``static``."""
    kind = cfg.judge
    if kind == "auto":
        kind = "embedded" if llm_cfg.backend == "simulator" else "llm"
    if kind == "embedded":
        return EmbeddedJudge(
            intent_margin=cfg.intent_margin,
            batch_size=cfg.batch_size,
            embed_dtype=cfg.embed_dtype,
            encoder=cfg.encoder,
            static_encoder=static_encoder if cfg.encoder == "static" else None,
        )
    from toolkiln.llm import make_backend

    backend = make_backend(llm_cfg, runtime, trace_path=trace_path)
    if backend is None:
        raise ValueError(
            "verify.model.judge: got 'llm' but llm.backend is 'simulator'; set llm.backend to "
            "'openai' or 'transformers', or use judge: embedded"
        )
    return LLMJudge(backend=backend, model=llm_cfg.model)


def parse_views(df: pl.DataFrame) -> tuple[list[DialogView | None], dict[int, str]]:
    """One :class:`DialogView` per row (``None`` where the row does not parse) and each bad row's reason."""
    views, bad_rows = [], {}
    for i, row in enumerate(df.select("id", "type", "system", "tools", "messages").iter_rows(named=True)):
        try:
            views.append(DialogView.from_row(row))
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            bad_rows[i] = f"{type(exc).__name__}: {exc}"
            views.append(None)
    return views, bad_rows


def model_checks(
    df: pl.DataFrame,
    judge: ModelJudge,
    *,
    unparsable: str = "reject",
    parsed: tuple[list[DialogView | None], dict[int, str]] | None = None,
) -> pl.DataFrame:
    """``df`` plus ``ok_model_<check>``, ``model_outcomes`` (JSON per row), ``model_reasons`` and ``ok_model``.

    ``parsed``: :func:`parse_views` of ``df`` when the caller has it already."""
    views, bad_rows = parsed if parsed is not None else parse_views(df)
    verdicts = judge.judge([v for v in views if v is not None]) if any(v is not None for v in views) else []
    it = iter(verdicts)
    per_row = [
        next(it) if v is not None else {s: Verdict("judge_error", bad_rows[i]) for s in MODEL_SUBCHECKS}
        for i, v in enumerate(views)
    ]
    soft = {"pass", "skipped"} | ({"judge_unparsable", "judge_error"} if unparsable == "keep" else set())
    cols = {
        f"ok_model_{s}": pl.Series(f"ok_model_{s}", [r[s].outcome in soft for r in per_row], dtype=pl.Boolean)
        for s in MODEL_SUBCHECKS
    }
    reasons = [
        [
            f"ok_model_{s}: {r[s].outcome}: {r[s].reason}"
            for s in MODEL_SUBCHECKS
            if r[s].outcome not in ("pass", "skipped")
        ]
        for r in per_row
    ]
    outcomes = [json.dumps({s: r[s].outcome for s in MODEL_SUBCHECKS}) for r in per_row]
    return df.with_columns(
        *cols.values(),
        pl.Series("model_reasons", reasons, dtype=pl.List(pl.Utf8)),
        pl.Series("model_outcomes", outcomes, dtype=pl.Utf8),
    ).with_columns(ok_model=pl.all_horizontal(list(MODEL_CHECKS)))


def _shard_checks(job: tuple[pl.DataFrame, ModelJudge, str, tuple]) -> pl.DataFrame:
    """One shard of the model layer (module level: a Dask worker unpickles it by name)."""
    part, judge, unparsable, parsed = job
    return model_checks(part, judge, unparsable=unparsable, parsed=parsed)


def sharded_model_checks(
    df: pl.DataFrame, judge: ModelJudge, *, unparsable: str = "reject", shard_size: int = 2000, runtime: Any = None
) -> pl.DataFrame:
    """:func:`model_checks` over shards of ``shard_size`` rows, run where ``runtime`` says
    (:func:`toolkiln.scaleout.map_shards`), concatenated in shard order.

    Rows are judged independently, so the output equals one :func:`model_checks` call over all rows
    whatever the shard size or executor: the embedded judge embeds every text once here first
    (:meth:`EmbeddedJudge.prepare`) and each shard carries the vectors it reads. An LLM judge runs in
    this process (its requests are already concurrent, and its backend holds open connections).
    """
    from toolkiln.scaleout import map_shards

    if not isinstance(judge, EmbeddedJudge) or df.height == 0:
        return model_checks(df, judge, unparsable=unparsable)
    views, bad_rows = parse_views(df)  # once: the shards get their views (a bad row becomes judge_error there)
    judge.prepare([v for v in views if v is not None])
    jobs = []
    for lo in range(0, df.height, shard_size):
        part = views[lo : lo + shard_size]
        parsed = (part, {i - lo: r for i, r in bad_rows.items() if lo <= i < lo + shard_size})
        jobs.append((df.slice(lo, shard_size), judge.for_shard([v for v in part if v is not None]), unparsable, parsed))
    parts = map_shards(_shard_checks, jobs, runtime, name="verify-model-layer", task_name="verify-shard")
    return pl.concat(parts, how="vertical")
