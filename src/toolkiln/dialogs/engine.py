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
from collections import deque
from typing import Callable, Iterable

from toolkiln.calls import format_calls
from toolkiln.dialogs.protocol import Agent, AgentError, BadReply, DialogState, Outcome, Phase


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
