"""What the dialog engine and its agents share: the state of a dialog being acted out and the agent interface.

The engine (:mod:`toolkiln.dialogs.engine`) drives agents; the simulators
(:mod:`toolkiln.dialogs.agents`) and the LLM-prompted agents
(:mod:`toolkiln.dialogs.llm_agents`) implement :class:`Agent`. All of them import
this module and none imports another, so there is no cycle. An agent has two
halves so one engine can batch LLM traffic across dialogs:

* ``requests(state, phase) -> [ChatRequest]`` — what to ask a chat backend
  (empty for a simulator, which needs no model);
* ``respond(state, phase, results) -> Outcome`` — the turns to append, or a
  rejection with its reason.

A plan (:mod:`toolkiln.dialogs.plan`) becomes a list of :class:`Phase` (one agent
turn each); :class:`DialogState` is what agents read (the plan, the messages so
far, where each value came from) and what the engine applies outcomes to.
Consistency voting (ToolACE arXiv 2409.00920 §3.2: an action is sampled several
times and kept only when the samples agree) is :func:`vote`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from toolkiln.dialogs.plan import DialogPlan, PCall
from toolkiln.dialogs.pool import APIPool
from toolkiln.dialogs.surface import ask_for, param_words, refuse
from toolkiln.dialogs.toolsim import MISSING, get_path

if TYPE_CHECKING:
    from toolkiln.llm.base import ChatRequest, ChatResult


# ----------------------------------------------------------------------------- phases


@dataclass(frozen=True)
class Phase:
    kind: str  # user_request | user_answer | decide | tool | summary
    ex: int
    stage: int = 0
    expect: str = ""  # decide: calls | ask | refuse
    target: bool = False

    @property
    def role(self) -> str:
        return "user" if self.kind.startswith("user") else "tool" if self.kind == "tool" else "assistant"


def phases_for(plan: DialogPlan) -> list[Phase]:
    out: list[Phase] = []
    last = len(plan.exchanges) - 1
    for i, e in enumerate(plan.exchanges):
        tgt = i == last
        out.append(Phase("user_request", i))
        if e.kind == "non_tool":
            out.append(Phase("decide", i, expect="refuse", target=tgt))
            continue
        if e.kind == "clarify":
            out.append(Phase("decide", i, expect="ask", target=tgt))
            out.append(Phase("user_answer", i))
        for s in range(len(e.stages)):
            out.append(
                Phase("decide", i, s, expect="calls", target=tgt and e.kind == "tool" and s == len(e.stages) - 1)
            )
            out.append(Phase("tool", i, s))
        out.append(Phase("summary", i))
    return out


@dataclass
class DialogState:
    """One dialog being acted out."""

    slot: int
    plan: DialogPlan
    pool: APIPool
    phases: list[Phase]
    rng: random.Random
    pos: int = 0
    messages: list[dict] = field(default_factory=list)
    turn_of: dict = field(default_factory=dict)  # (exchange, "request"|"answer") -> message index
    call_turn: dict = field(default_factory=dict)  # (exchange, stage) -> message index of the call turn
    tool_turns: dict = field(default_factory=dict)  # (exchange, stage) -> [message indices]
    votes: list = field(default_factory=list)
    llm_keys: list = field(default_factory=list)
    target_turn: int | None = None
    reject: tuple[str, str, str] | None = None  # (phase, agent, reason)

    @property
    def done(self) -> bool:
        return self.reject is not None or self.pos >= len(self.phases)

    @property
    def gold_names(self) -> set[str]:
        return {c.name for e in self.plan.exchanges for st in e.stages for c in st}

    # -- what agents read ---------------------------------------------------
    def planned_calls(self, ex: int, stage: int) -> list[dict]:
        """The plan's calls of a stage, with tool-fed arguments read from the actual earlier result."""
        e = self.plan.exchanges[ex]
        out = []
        for c in e.stages[stage]:
            args = dict(c.arguments)
            if c.link is not None:
                param, src_idx, path = c.link
                turns = self.tool_turns.get((ex, stage - 1), [])
                if src_idx < len(turns):
                    v = link_value(self.messages[turns[src_idx]]["content"], path)
                    if v is not None and not isinstance(v, (dict, list)):
                        args[param] = v
            out.append({"name": c.name, "arguments": args})
        return out

    def sources(self, ex: int, stage: int, c: PCall, value_args: dict) -> dict:
        """Where each argument value comes from (formalised thinking)."""
        e = self.plan.exchanges[ex]
        out = {}
        for p, v in value_args.items():
            g = c.given_by.get(p, "user")
            if g == "tool" and c.link is not None:
                param, src_idx, path = c.link
                turns = self.tool_turns.get((ex, stage - 1), [])
                src_name = e.stages[stage - 1][src_idx].name if stage > 0 else ""
                out[p] = {
                    "from": "tool",
                    "turn": turns[src_idx] if src_idx < len(turns) else None,
                    "api": src_name,
                    "field": path,
                }
                continue
            if g == "system":
                out[p] = {"from": "system", "text": str(v)}
                continue
            key = (
                (ex, "answer")
                if g == "answer"
                else ((e.history_turn, "request") if g == "history" else (ex, "request"))
            )
            m = c.mentions.get(p)
            src: dict[str, Any] = {"from": "user", "turn": self.turn_of.get(key)}
            if m is not None:
                said = self.messages[src["turn"]]["content"].lower() if src["turn"] is not None else ""
                texts = [s.text if s.text.lower().strip("'\"") in said else None for s in m.spans]
                canon = [s.canonical for s in m.spans]
                src["text"] = texts[0] if len(texts) == 1 else texts
                if any(x is not None for x in canon):
                    src["canonical"] = v  # the words differ from the value (a date in words, "three", "1,500")
            out[p] = src
        return out

    def expected_action(self, ph: Phase) -> Action:
        if ph.expect == "ask":
            return ask_action(self, ph)
        if ph.expect == "refuse":
            return refuse_action(self, ph)
        e = self.plan.exchanges[ph.ex]
        calls = self.planned_calls(ph.ex, ph.stage)
        pcalls = e.stages[ph.stage]
        srcs = [self.sources(ph.ex, ph.stage, pc, c["arguments"]) for pc, c in zip(pcalls, calls)]
        if len(calls) == 1:
            arg_src = srcs[0]
        else:
            arg_src = {f"{i}.{p}": s for i, src in enumerate(srcs) for p, s in src.items()}
        return Action(
            "calls",
            calls,
            thought={
                "tool": ", ".join(dict.fromkeys(c["name"] for c in calls)),
                "why": self.why(ph, pcalls),
                "arguments": arg_src,
            },
        )

    def why(self, ph: Phase, pcalls: list[PCall]) -> str:
        e = self.plan.exchanges[ph.ex]
        a = self.pool.apis[pcalls[0].api]
        desc = (a.api.get("description") or "").split(". ")[0].rstrip(".")
        if pcalls[0].link is not None:
            param, _, path = pcalls[0].link
            prev = e.stages[ph.stage - 1][0].name
            return (
                f"The {param_words(param)} needed by {a.name} comes from the {prev} result ({path}); with it the "
                f"user's second request can run."
            )
        if len(pcalls) > 1 and len({c.name for c in pcalls}) == 1:
            return (
                f"The user asks for the same thing {len(pcalls)} times with different values; {a.name} "
                f"({desc.lower()}) is called once for each, in parallel."
            )
        if len(pcalls) > 1:
            return (
                "The request has independent parts: "
                + "; ".join(f"{c.name} for '{self.pool.apis[c.api].intent}'" for c in pcalls)
                + "."
            )
        if e.kind == "clarify":
            return (
                f"The user has now given the missing {param_words(e.missing[1])}; {a.name} has every required argument."
            )
        if e.follow_up:
            return f"A follow-up to the previous request: {a.name} again with the changed value, the rest carried over."
        return f"The user wants to {a.intent}; {a.name} does that ({desc.lower()})."

    def last_calls(self) -> list[dict]:
        for m in reversed(self.messages):
            if m["role"] == "assistant":
                return list(m.get("tool_calls") or [])
        return []

    def links_for(self, ph: Phase, call_idx: int) -> list[tuple[str, Any]]:
        """(path, value) to plant in call ``call_idx``'s result: what the next stage's linked argument needs."""
        e = self.plan.exchanges[ph.ex]
        if ph.stage + 1 >= len(e.stages):
            return []
        out = []
        for c in e.stages[ph.stage + 1]:
            if c.link is not None and c.link[1] == call_idx:
                out.append((c.link[2], c.arguments[c.link[0]]))
        return out

    def exchange_results(self, ex: int) -> list[tuple[str, Any]]:
        out = []
        for (e, _s), idxs in sorted(self.tool_turns.items()):
            if e != ex:
                continue
            for i in idxs:
                m = self.messages[i]
                try:
                    out.append((m.get("name", ""), json.loads(m["content"])))
                except ValueError:
                    out.append((m.get("name", ""), m["content"]))
        return out[-3:]

    # -- applying outcomes ------------------------------------------------------
    def apply(self, ph: Phase, agent: Agent, out: Outcome) -> None:
        self.llm_keys.extend(out.llm_keys)
        if out.votes is not None:
            self.votes.append({"turn": len(self.messages), "expect": ph.expect, **out.votes})
        if out.reject is not None:
            self.reject = (ph.kind if not ph.expect else f"{ph.kind}:{ph.expect}", agent.kind, out.reject)
            return
        if ph.kind in ("user_request", "user_answer"):
            self.turn_of[(ph.ex, "request" if ph.kind == "user_request" else "answer")] = len(self.messages)
        elif ph.kind == "decide" and any(t.get("tool_calls") for t in out.turns):
            self.call_turn[(ph.ex, ph.stage)] = len(self.messages)
        elif ph.kind == "tool":
            self.tool_turns[(ph.ex, ph.stage)] = list(range(len(self.messages), len(self.messages) + len(out.turns)))
        if ph.target:
            self.target_turn = len(self.messages)
        self.messages.extend(out.turns)
        self.pos += 1
        # A decision that made no call ends the exchange early (a noisy "ask" instead of calls cannot be acted on).
        if ph.kind == "decide" and ph.expect == "calls" and not out.turns[-1].get("tool_calls"):
            self.reject = (f"decide:{ph.expect}", agent.kind, "assistant answered in text where the plan needs calls")


# ----------------------------------------------------------------------------- agents and their decisions


@dataclass
class Outcome:
    """Turns to append, or a rejection (``reject`` = reason); ``votes`` for voted decisions."""

    turns: list[dict] = field(default_factory=list)
    reject: str | None = None
    votes: dict | None = None
    llm_keys: list[str] = field(default_factory=list)


class BadReply(ValueError):
    """Raised by an agent whose model reply is unusable: the dialog becomes a rejection with this reason.

    Agents may also return ``Outcome(reject=...)``; any *other* exception from an agent is a bug in
    the agent's code and fails the stage (:class:`AgentError`), so it is fixed, not counted as data.
    """


class AgentError(RuntimeError):
    """An agent's own code failed (not the model's reply): the stage must stop, not record a rejection."""


class Agent(Protocol):
    kind: str  # "simulator" | "llm"

    def requests(self, st: DialogState, ph: Phase) -> list[ChatRequest]: ...

    def respond(self, st: DialogState, ph: Phase, results: Sequence[ChatResult]) -> Outcome: ...


@dataclass
class Action:
    """An assistant decision: calls (+ thought) or text."""

    kind: str  # calls | ask | refuse | text | invalid
    calls: list[dict] = field(default_factory=list)
    content: str = ""
    thought: dict | None = None
    error: str = ""

    def signature(self) -> str:
        if self.kind == "calls":
            return "calls:" + json.dumps(
                sorted(json.dumps([c["name"], c["arguments"]], sort_keys=True, default=str) for c in self.calls)
            )
        if self.kind == "invalid":
            return f"invalid:{id(self)}"  # every unusable sample is its own (losing) vote
        return self.kind


def vote(samples: list[Action], min_agreement: float) -> tuple[Action | None, dict]:
    """Majority action and the record ``{"n", "top", "counts"}``; None when agreement < min_agreement."""
    counts = Counter(a.signature() for a in samples)
    top_sig, top = counts.most_common(1)[0]
    record = {"n": len(samples), "top": top, "counts": sorted(counts.values(), reverse=True)}
    winner = next(a for a in samples if a.signature() == top_sig)
    if winner.kind == "invalid" or top / len(samples) < min_agreement - 1e-9:
        return None, record
    return winner, record


def assistant_turn(action: Action) -> dict:
    if action.kind == "calls":
        return {"role": "assistant", "content": "", "tool_calls": action.calls, "thought": action.thought}
    return {"role": "assistant", "content": action.content}


def link_value(result_text: str, path: str) -> Any:
    """The value at ``path`` of a tool result's JSON text, or None when it is not there."""
    try:
        v = get_path(json.loads(result_text), path)
    except (ValueError, TypeError):
        return None
    return None if v is MISSING else v


def ask_action(st: DialogState, ph: Phase) -> Action:
    ex = st.plan.exchanges[ph.ex]
    i, p = ex.missing
    call = ex.stages[0][i]
    api = st.pool.apis[call.api]
    return Action("ask", content=ask_for(p, api.props.get(p, {}), api.intent, st.rng))


def refuse_action(st: DialogState, ph: Phase) -> Action:
    ex = st.plan.exchanges[ph.ex]
    alts = [st.pool.apis[i].intent for i in st.plan.tools[:2]]
    return Action("refuse", content=refuse(ex.intent, alts, st.rng))
