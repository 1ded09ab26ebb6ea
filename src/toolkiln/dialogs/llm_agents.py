"""LLM-prompted user, assistant and tool agents over any chat backend (ToolACE arXiv 2409.00920 §3.2).

The same roles as the simulators in :mod:`toolkiln.dialogs.agents`, played by a
model through the :class:`~toolkiln.llm.base.ChatBackend` protocol. Each agent
asks for one JSON object and checks what comes back; anything unusable becomes
a rejection with its reason (never an exception, never a silent drop):

Every request that expects an object asks for it in JSON mode (``response_format``: OpenAI's
``json_object``; a local model's reply is started with ``{`` and cut at its closing brace).

* **user** — told the task(s) and the values to say (and which to leave out for
  a clarification); replies ``{"utterance": ...}``. Rejected when a value it had
  to give is not in the text (checked with the verifier's grounding rules, so a
  date said as "May 3rd, 2024" counts) or when it leaks the value it had to omit;
* **assistant** — sees the dialog's system prompt, the candidate tools and the
  conversation; replies ``{"thought": {...}, "tool_calls": [...]}`` or
  ``{"content": ...}``. Decisions are sampled ``voting.n`` times in one request
  (``n``) and voted; a tool turn needs a complete thought (tool, why, a source for
  every argument), and the voted action must be the kind the plan needs and call
  the planned APIs (its argument values are the model's own: verification judges
  them);
* **tool** — sees the API's documentation and the call; replies with the result,
  which must conform to the ``returns`` schema (and carry the planted value a
  dependent call will consume).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Sequence

from toolkiln.dialogs.protocol import Action, Outcome, assistant_turn, vote
from toolkiln.dialogs.config import VotingConfig
from toolkiln.dialogs.toolsim import MISSING, get_path
from toolkiln.dialogs.values import result_problems
from toolkiln.llm.base import ChatRequest, ChatResult
from toolkiln.llm.parse import extract_json
from toolkiln.verify.model import Context, grounded

USER_SYSTEM = (
    "You play the USER in a conversation with an AI assistant that can call tools. Write the user's next message "
    "only, the way a real person would type it: vary the wording, be natural, and say every value you are given "
    "(you may use its 'say_as' form). Never mention values listed under 'omit'. Reply with one JSON object and "
    'nothing else: {"utterance": "<the message>"}.'
)
# the user's reply as a JSON Schema (structured outputs; a local model is handed the opening `{"utterance": "`)
USER_SCHEMA = {"type": "object", "properties": {"utterance": {"type": "string"}}, "required": ["utterance"]}
ASSISTANT_SYSTEM = (
    "You play the ASSISTANT in a conversation where you can call the functions listed in 'tools'. Follow "
    "'system_prompt'. Decide the assistant's next turn and reply with one JSON object and nothing else:\n"
    '- to call functions: {"thought": {"tool": "<function name(s)>", "why": "<why these calls>", "arguments": '
    '{"<argument>": "<where its value comes from: which user turn, the system prompt, or which earlier result>"}}, '
    '"tool_calls": [{"name": "<function>", "arguments": {"<argument>": <JSON value>}}]}\n'
    "- to reply in text (ask for a missing required argument, say that no function fits, or summarise results): "
    '{"content": "<the reply>"}\n'
    "With several calls in one turn, key the thought's arguments as '<call index>.<argument>'."
)
TOOL_SYSTEM = (
    "You simulate the execution of an API. Given its documentation and one call, reply with the result it returns "
    "and nothing else: one JSON value that conforms to the API's 'returns' JSON Schema. If 'must_include' names "
    "fields (a dotted path, [0] = first array item), give them exactly those values."
)


def _tool_doc(api: dict) -> dict:
    return {"name": api["name"], "description": api.get("description", ""), "parameters": api.get("parameters", {})}


def _conversation(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        turn = {"role": m["role"], "content": m.get("content", "")}
        if m.get("tool_calls"):
            turn["tool_calls"] = m["tool_calls"]
        if m["role"] == "tool":
            turn["name"] = m.get("name")
        out.append(turn)
    return out


def _first_text(res: ChatResult) -> tuple[str | None, str | None]:
    if not res.ok:
        return None, f"backend error: {res.error}"
    if not res.texts or res.texts[0] is None:
        return None, "backend returned no text"
    return res.texts[0], None


class _LLMBase:
    kind = "llm"

    def __init__(self, model: str = "", temperature: float = 0.7, max_tokens: int = 1024):
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens

    def _req(
        self,
        st,
        system: str,
        payload: dict,
        tag: str,
        n: int = 1,
        temperature: float | None = None,
        json_object: bool = True,
        schema: dict | None = None,
    ) -> ChatRequest:
        return ChatRequest(
            messages=(
                {"role": "system", "content": system},
                {"role": "user", "content": json.dumps(payload, ensure_ascii=False, default=str)},
            ),
            model=self.model,
            temperature=self.temperature if temperature is None else temperature,
            max_tokens=self.max_tokens,
            n=n,
            seed=(st.plan.seed + 7919 * st.pos) % (2**31),
            tag=f"{tag}:slot{st.slot}:a{st.plan.attempt}:p{st.pos}",
            response_format="json_schema" if schema else "json_object" if json_object else None,
            schema=schema,
        )


class LLMUser(_LLMBase):
    def requests(self, st, ph) -> list[ChatRequest]:
        ex = st.plan.exchanges[ph.ex]
        if ph.kind == "user_answer":
            task = "Answer the assistant's last question, giving the value under 'answer'."
        elif ex.follow_up:
            task = "Write a short follow-up asking for the same thing again, changing only the value given."
        else:
            task = "Write the user's request for these tasks." + (
                " Do not give the values under 'omit'." if ex.brief.get("omit") else ""
            )
        payload = {"instruction": task, "brief": ex.brief, "conversation": _conversation(st.messages)}
        return [self._req(st, USER_SYSTEM, payload, "user", schema=USER_SCHEMA)]

    def respond(self, st, ph, results: Sequence[ChatResult]) -> Outcome:
        text, err = _first_text(results[0])
        if err:
            return Outcome(reject=f"user: {err}")
        obj, perr = extract_json(text, expect="object")
        if perr is not None:
            return Outcome(reject=f"user: unparsable reply ({perr})")
        utt = obj.get("utterance")
        if not isinstance(utt, str) or not utt.strip():
            return Outcome(reject="user: reply has no non-empty 'utterance' string")
        ex = st.plan.exchanges[ph.ex]
        ctx = Context.of(
            [st.plan.system] + [m["content"] for m in st.messages if m["role"] in ("user", "tool")] + [utt]
        )
        own = Context.of([utt])
        if ph.kind == "user_answer":
            ans = ex.brief.get("answer") or {}
            if ans and not grounded(ans.get("value"), own, {}):
                return Outcome(reject=f"user: the answer does not give {ans.get('param')}={ans.get('value')!r}")
            return Outcome([{"role": "user", "content": utt}])
        for task in ex.brief.get("tasks", []):
            for p, m in task.get("mention", {}).items():
                if not grounded(m["value"], ctx, {}):
                    return Outcome(reject=f"user: value {p}={m['value']!r} is missing from the utterance")
        for p in ex.brief.get("omit", []):
            for call in ex.stages[0] if ex.stages else []:
                if (
                    p in call.arguments
                    and grounded(call.arguments[p], own, {})
                    and not isinstance(call.arguments[p], bool)
                ):
                    return Outcome(
                        reject=f"user: leaked {p}={call.arguments[p]!r}, which it had to leave for the clarification"
                    )
        return Outcome([{"role": "user", "content": utt}])


def parse_action(text: str | None) -> Action:
    """One assistant sample -> an Action (``invalid`` with the reason when unusable)."""
    if text is None:
        return Action("invalid", error="no text")
    obj, err = extract_json(text, expect="object")
    if err is not None:
        return Action("invalid", error=f"unparsable reply ({err})")
    tcs = obj.get("tool_calls")
    if tcs:
        if not isinstance(tcs, list):
            return Action("invalid", error="'tool_calls' is not a list")
        calls = []
        for i, c in enumerate(tcs):
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
                return Action("invalid", error=f"tool_calls[{i}] has no string 'name'")
            args = c.get("arguments", {})
            if isinstance(args, str):  # OpenAI's wire format keeps arguments as a JSON string
                args, aerr = extract_json(args, expect="object") if args.strip() else ({}, None)
                if aerr is not None:
                    return Action("invalid", error=f"tool_calls[{i}].arguments: {aerr}")
            if not isinstance(args, dict):
                return Action("invalid", error=f"tool_calls[{i}].arguments is not an object")
            calls.append({"name": c["name"], "arguments": args})
        th = obj.get("thought")
        if not isinstance(th, dict) or not isinstance(th.get("why"), str) or not isinstance(th.get("arguments"), dict):
            return Action("invalid", error="tool turn without a structured thought {tool, why, arguments}")
        missing = _uncovered(calls, th["arguments"])
        if missing:
            return Action("invalid", error=f"thought gives no source for arguments {missing}")
        th = {
            "tool": th.get("tool") or ", ".join(dict.fromkeys(c["name"] for c in calls)),
            "why": th["why"],
            "arguments": th["arguments"],
        }
        return Action("calls", calls, thought=th)
    content = obj.get("content")
    if isinstance(content, str) and content.strip():
        return Action("text", content=content.strip())
    return Action("invalid", error="reply has neither 'tool_calls' nor a non-empty 'content'")


def _uncovered(calls: list[dict], sources: dict) -> list[str]:
    """Arguments with no source in the thought ('<i>.<arg>' or, covering every call, plain '<arg>')."""
    return [
        f"{i}.{p}" if len(calls) > 1 else p
        for i, c in enumerate(calls)
        for p in c["arguments"]
        if f"{i}.{p}" not in sources and p not in sources
    ]


class LLMAssistant(_LLMBase):
    def __init__(self, voting: VotingConfig, model: str = "", temperature: float = 0.7, max_tokens: int = 1024):
        super().__init__(model, temperature, max_tokens)
        self.voting = voting

    def requests(self, st, ph) -> list[ChatRequest]:
        payload = {
            "system_prompt": st.plan.system,
            "tools": [_tool_doc(st.pool.apis[i].api) for i in st.plan.tools],
            "conversation": _conversation(st.messages),
        }
        if ph.kind == "summary":
            payload["instruction"] = "The function results are in; reply to the user in text."
            return [self._req(st, ASSISTANT_SYSTEM, payload, "assistant")]
        return [
            self._req(
                st,
                ASSISTANT_SYSTEM,
                payload,
                "assistant",
                n=self.voting.n,
                temperature=self.voting.temperature if self.voting.n > 1 else None,
            )
        ]

    def respond(self, st, ph, results: Sequence[ChatResult]) -> Outcome:
        res = results[0]
        if not res.ok:
            return Outcome(reject=f"assistant: backend error: {res.error}")
        if ph.kind == "summary":
            a = parse_action(res.texts[0] if res.texts else None)
            if a.kind != "text":
                return Outcome(
                    reject=f"assistant: summary expected, got {a.kind}" + (f" ({a.error})" if a.error else "")
                )
            return Outcome([{"role": "assistant", "content": a.content}])
        samples = [parse_action(t) for t in res.texts[: self.voting.n]]
        if len(samples) < self.voting.n:
            samples += [Action("invalid", error=f"backend returned {len(res.texts)} of {self.voting.n} samples")] * (
                self.voting.n - len(samples)
            )
        winner, record = vote(samples, self.voting.min_agreement)
        if winner is None:
            errs = sorted({s.error for s in samples if s.kind == "invalid"})
            return Outcome(
                reject=f"vote: the {ph.expect} decision got {record['top']} of {record['n']} samples agreeing"
                + (f"; unusable samples: {errs[:2]}" if errs else ""),
                votes=record,
            )
        problem = self._against_plan(st, ph, winner)
        if problem:
            return Outcome(reject=f"plan_mismatch: {problem}", votes=record)
        if winner.kind == "text":
            winner = Action(ph.expect, content=winner.content)
        return Outcome([assistant_turn(winner)], votes=record)

    @staticmethod
    def _against_plan(st, ph, a: Action) -> str | None:
        if ph.expect == "calls":
            if a.kind != "calls":
                return "the plan needs tool calls here; the assistant replied in text"
            want = Counter(c.name for c in st.plan.exchanges[ph.ex].stages[ph.stage])
            got = Counter(c["name"] for c in a.calls)
            if want != got:
                return f"called {dict(got)}, the plan calls {dict(want)}"
            return None
        if a.kind != "text":
            return f"the plan needs a {'clarifying question' if ph.expect == 'ask' else 'refusal'}; the assistant called tools"
        if ph.expect == "ask" and "?" not in a.content:
            return "a clarifying question was expected; the reply asks nothing"
        return None


class LLMTool(_LLMBase):
    def requests(self, st, ph) -> list[ChatRequest]:
        reqs = []
        for i, call in enumerate(st.last_calls()):
            api = st.pool.by_name.get(call["name"])
            doc = {
                "name": call["name"],
                "description": api.api.get("description", "") if api else "",
                "returns": api.api.get("returns", {}) if api else {},
            }
            must = {path: v for path, v in st.links_for(ph, i)}
            # JSON mode only where the result must be an object: a scalar or array result stays free text
            returns = doc["returns"] if isinstance(doc["returns"], dict) else {}
            obj = returns.get("type", "object") == "object"
            reqs.append(
                self._req(
                    st, TOOL_SYSTEM, {"api": doc, "call": call, "must_include": must}, f"tool{i}", json_object=obj
                )
            )
        return reqs

    def respond(self, st, ph, results: Sequence[ChatResult]) -> Outcome:
        turns = []
        calls = st.last_calls()
        if len(results) != len(calls):
            return Outcome(reject=f"tool: {len(results)} results for {len(calls)} calls")
        for i, (call, res) in enumerate(zip(calls, results)):
            text, err = _first_text(res)
            if err:
                return Outcome(reject=f"tool: {err}")
            value, perr = extract_json(text)
            if perr is not None:
                try:
                    value = json.loads(text)  # a bare scalar result is still JSON
                except ValueError:
                    return Outcome(reject=f"tool: unparsable result for {call['name']} ({perr})")
            api = st.pool.by_name.get(call["name"])
            returns = api.api.get("returns") if api else None
            if isinstance(returns, dict) and returns:
                probs = result_problems(value, returns)
                if probs:
                    return Outcome(
                        reject=f"tool_result_schema: {call['name']} result does not conform to its returns "
                        f"schema ({probs[0]})"
                    )
            for path, want in st.links_for(ph, i):
                got = get_path(value, path)
                if got is MISSING or got != want:
                    return Outcome(
                        reject=f"tool_result_link: {call['name']} result lacks {path}={want!r} "
                        f"(got {None if got is MISSING else got!r})"
                    )
            turns.append({"role": "tool", "name": call["name"], "content": json.dumps(value, ensure_ascii=False)})
        return Outcome(turns)


def llm_agents(
    cfg_voting: VotingConfig,
    llm_cfg: Any,
    roles: Sequence[str] = ("user", "assistant", "tool"),
    simulators: dict | None = None,
) -> dict:
    """The agents for ``roles`` as LLM agents over the backend configured in ``params.llm``; others from ``simulators``."""
    common = {"model": llm_cfg.model, "temperature": llm_cfg.temperature, "max_tokens": llm_cfg.max_tokens}
    make = {
        "user": lambda: LLMUser(**common),
        "assistant": lambda: LLMAssistant(cfg_voting, **common),
        "tool": lambda: LLMTool(**common),
    }
    out = dict(simulators or {})
    for r in roles:
        out[r] = make[r]()
    return out
