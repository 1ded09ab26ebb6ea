"""Acting out dialog plans with the user, assistant and tool agents (ToolACE arXiv 2409.00920 §3.2).

A plan (:mod:`toolkiln.dialogs.plan`) becomes a list of *phases* — user request,
assistant decision, tool results, (assistant decision, tool results)*, summary;
a clarifying question and the user's answer; a refusal — and each phase is one
agent turn. The engine keeps ``batch_size`` dialogs in flight and advances all of
them a phase per *round*: simulator turns are computed on the spot, and the LLM
agents' requests of the round (from every dialog and every agent) go to the chat
backend as one concurrent batch, so an HTTP endpoint sees up to
``runtime.llm.concurrency`` requests at once however the dialogs are staggered. A
finished dialog is replaced by the next plan immediately.

A dialog ends in exactly one place: the output rows, or the rejects with the
phase, agent and reason (an unparsable reply, a failed vote, a broken result).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from toolkiln.calls import format_calls
from toolkiln.dialogs.agents import (Action, Agent, AgentError, BadReply, Outcome, ask_action, link_value,
                                     refuse_action)
from toolkiln.dialogs.plan import DialogPlan, PCall
from toolkiln.dialogs.pool import APIPool
from toolkiln.dialogs.surface import param_words


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
            out.append(Phase("decide", i, s, expect="calls", target=tgt and e.kind == "tool" and s == len(e.stages) - 1))
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
                out[p] = {"from": "tool", "turn": turns[src_idx] if src_idx < len(turns) else None, "api": src_name,
                          "field": path}
                continue
            if g == "system":
                out[p] = {"from": "system", "text": str(v)}
                continue
            key = (ex, "answer") if g == "answer" else ((e.history_turn, "request") if g == "history" else (ex, "request"))
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
        return Action("calls", calls, thought={"tool": ", ".join(dict.fromkeys(c["name"] for c in calls)),
                                               "why": self.why(ph, pcalls), "arguments": arg_src})

    def why(self, ph: Phase, pcalls: list[PCall]) -> str:
        e = self.plan.exchanges[ph.ex]
        a = self.pool.apis[pcalls[0].api]
        desc = (a.api.get("description") or "").split(". ")[0].rstrip(".")
        if pcalls[0].link is not None:
            param, _, path = pcalls[0].link
            prev = e.stages[ph.stage - 1][0].name
            return (f"The {param_words(param)} needed by {a.name} comes from the {prev} result ({path}); with it the "
                    f"user's second request can run.")
        if len(pcalls) > 1 and len({c.name for c in pcalls}) == 1:
            return (f"The user asks for the same thing {len(pcalls)} times with different values; {a.name} "
                    f"({desc.lower()}) is called once for each, in parallel.")
        if len(pcalls) > 1:
            return "The request has independent parts: " + "; ".join(
                f"{c.name} for '{self.pool.apis[c.api].intent}'" for c in pcalls) + "."
        if e.kind == "clarify":
            return f"The user has now given the missing {param_words(e.missing[1])}; {a.name} has every required argument."
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


def dialog_row(st: DialogState, agents: dict[str, Agent], extra_prov: dict | None = None) -> dict:
    """The finished dialog as a row of ``toolkiln.schema.DIALOG_SCHEMA``."""
    plan, pool = st.plan, st.pool
    msgs = st.messages
    calls = [{"turn": i, "name": c["name"], "arguments": c.get("arguments", {})}
             for i, m in enumerate(msgs) if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    tt = st.target_turn if st.target_turn is not None else len(msgs) - 1
    tcalls = msgs[tt].get("tool_calls") or []
    tools_json = "[" + ", ".join(pool.apis[i].json for i in plan.tools) + "]"
    messages_json = json.dumps(msgs, ensure_ascii=False)
    last = plan.exchanges[-1]
    prov = {
        "generator": "toolkiln.dialogs", "seed": plan.seed, "slot": st.slot, "attempt": plan.attempt, "level": plan.level,
        "agents": {k: a.kind for k, a in agents.items()}, "votes": st.votes,
        "exchanges": len(plan.exchanges), "follow_up": last.follow_up, "style": last.style,
        "profile": sorted(plan.profile), "intent_api": pool.apis[last.intent_api].name if last.intent_api is not None else None,
    }
    if st.llm_keys:
        prov["llm_keys"] = st.llm_keys
    if extra_prov:
        prov.update(extra_prov)
    row = {
        "type": plan.type, "domain": plan.domain, "system": plan.system, "tools": tools_json, "messages": messages_json,
        "target_turn": tt, "target": format_calls(tcalls) if tcalls else "",
        "calls": json.dumps(calls, ensure_ascii=False), "apis": sorted({c["name"] for c in calls}),
        "n_candidates": len(plan.tools), "n_calls": len(calls), "n_turns": len(msgs),
        "provenance": json.dumps(prov, ensure_ascii=False, default=str),
    }
    row["id"] = hashlib.sha256((messages_json + "\x1f" + tools_json).encode()).hexdigest()[:16]
    return row


def reject_row(st: DialogState | None, plan_info: dict, phase: str, agent: str, reason: str) -> dict:
    return {
        "slot": plan_info["slot"], "attempt": plan_info["attempt"], "seed": plan_info["seed"], "type": plan_info["type"],
        "domain": plan_info.get("domain"), "phase": phase, "agent": agent, "reason": reason,
        "apis": sorted(st.gold_names) if st is not None else [],
        "messages": json.dumps(st.messages if st is not None else [], ensure_ascii=False, default=str),
    }


def run_states(states: Iterable[DialogState], agents: dict[str, Agent], backend, batch_size: int,
               on_done: Callable[[DialogState], None]) -> None:
    """Advance dialogs round by round, ``batch_size`` in flight; LLM requests of a round are sent together."""
    queue = deque(states)
    active: list[DialogState] = []
    while queue or active:
        while queue and len(active) < batch_size:
            active.append(queue.popleft())
        pending: list[tuple[DialogState, Phase, Agent, int, int]] = []
        reqs: list = []
        for st in active:
            # Simulator turns cost nothing to wait for: run them until the dialog needs a model (or ends).
            while not st.done:
                ph = st.phases[st.pos]
                agent = agents[ph.role]
                rs = agent.requests(st, ph)
                if rs:
                    pending.append((st, ph, agent, len(reqs), len(rs)))
                    reqs.extend(rs)
                    break
                st.apply(ph, agent, _safe_respond(agent, st, ph, []))
        if reqs:
            if backend is None:
                raise RuntimeError("an LLM agent made requests but no chat backend is configured")
            results = backend.chat_many(reqs)
            for st, ph, agent, start, n in pending:
                out = _safe_respond(agent, st, ph, results[start:start + n])
                out.llm_keys = [r.key for r in results[start:start + n]] + out.llm_keys
                st.apply(ph, agent, out)
        still = []
        for st in active:
            if st.done:
                on_done(st)
            else:
                still.append(st)
        active = still


def _safe_respond(agent: Agent, st: DialogState, ph: Phase, results) -> Outcome:
    """The agent's outcome; an unusable model reply (:class:`BadReply`) is a rejection with its reason.

    Any other exception is a bug in the agent's code: turning it into rejections would let a broken
    agent quietly reject every dialog and the stage "succeed", so it stops the stage instead.
    """
    try:
        return agent.respond(st, ph, results)
    except BadReply as exc:
        return Outcome(reject=f"{ph.role}: {exc}")
    except Exception as exc:
        raise AgentError(f"the {ph.role} agent ({type(agent).__name__}) crashed on phase {ph.kind!r}: "
                         f"{type(exc).__name__}: {exc}. This is a bug in the agent's code, not a bad model reply "
                         "(those are rejections)") from exc
