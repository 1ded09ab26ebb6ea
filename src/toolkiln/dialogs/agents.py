"""The three agents of ToolACE's dialog generation and their programmatic simulators (arXiv 2409.00920 §3.2).

Each implements :class:`toolkiln.dialogs.protocol.Agent` (``requests`` then
``respond``), so one engine drives both implementations and batches LLM traffic.

The **user** writes requests and answers clarifying questions; the **assistant**
decides (tool calls with a formalised *thought*, a clarifying question, a
refusal) and summarises results; the **tool** returns execution results that
conform to the API's ``returns`` schema. The simulators here are the embedded,
seeded defaults; :mod:`toolkiln.dialogs.llm_agents` holds the LLM-prompted ones.

Consistency voting (:func:`toolkiln.dialogs.protocol.vote`): the simulator assistant
samples its action ``n`` times under a small error model (a distractor instead of
the gold API, a dropped optional argument, a changed value) so the vote has
something to reject.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from toolkiln.dialogs.protocol import Action, AgentError, BadReply, Outcome, assistant_turn, vote  # noqa: F401 (re-exported)
from toolkiln.dialogs.surface import summarise
from toolkiln.dialogs.toolsim import simulate_result
from toolkiln.dialogs.values import gen_value

if TYPE_CHECKING:
    from toolkiln.dialogs.config import NoiseConfig, VotingConfig


# ----------------------------------------------------------------------------- simulators

class SimulatorUser:
    """Says the plan's request (its styles and surface forms are drawn at planning time, from the dialog's seed)."""

    kind = "simulator"

    def requests(self, st, ph):
        return []

    def respond(self, st, ph, results) -> Outcome:
        ex = st.plan.exchanges[ph.ex]
        text = ex.answer if ph.kind == "user_answer" else ex.request
        return Outcome([{"role": "user", "content": text}])


class SimulatorTool:
    """Results drawn from each API's ``returns`` schema, with the dependent link planted."""

    kind = "simulator"

    def requests(self, st, ph):
        return []

    def respond(self, st, ph, results) -> Outcome:
        turns = []
        for i, call in enumerate(st.last_calls()):
            api = st.pool.by_name.get(call["name"])
            if api is None:
                return Outcome(reject=f"tool: call to unknown API {call['name']!r}")
            res = simulate_result(api.api, call.get("arguments") or {}, st.rng, st.links_for(ph, i))
            turns.append({"role": "tool", "name": call["name"], "content": json.dumps(res, ensure_ascii=False)})
        return Outcome(turns)


class SimulatorAssistant:
    """The plan's decision, sampled ``voting.n`` times under the noise model, then voted."""

    kind = "simulator"

    def __init__(self, voting: "VotingConfig"):
        self.voting = voting

    def requests(self, st, ph):
        return []

    def respond(self, st, ph, results) -> Outcome:
        if ph.kind == "summary":
            return Outcome([{"role": "assistant", "content": summarise(st.exchange_results(ph.ex), st.rng)}])
        expected = st.expected_action(ph)
        samples = [noisy(expected, st, ph, st.rng, self.voting.noise) for _ in range(self.voting.n)]
        winner, record = vote(samples, self.voting.min_agreement)
        if winner is None:
            return Outcome(reject=f"vote: the {ph.expect} decision got {record['top']} of {record['n']} samples agreeing "
                                  f"(counts {record['counts']})", votes=record)
        if winner.signature() != expected.signature():
            record["noisy_winner"] = True  # a labelled mistake that survived the vote (verification should catch it)
        return Outcome([assistant_turn(winner)], votes=record)


def _perturb(v: Any, rng: random.Random, schema: dict) -> Any:
    if isinstance(schema.get("enum"), list) and len(schema["enum"]) > 1:
        return rng.choice([e for e in schema["enum"] if e != v] or [v])
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + rng.choice([-1, 1]) if v > 1 else v + 1
    if isinstance(v, float):
        return round(v * rng.choice([0.9, 1.1]) + 1, 2)
    if isinstance(v, str):
        return v + rng.choice(["s", " 2", "x"])
    return v


def noisy(expected: Action, st, ph, rng: random.Random, noise: "NoiseConfig") -> Action:
    """One sample of the assistant's decision: usually the expected one, sometimes a plausible mistake."""
    r = rng.random()
    distractors = [i for i in st.plan.tools if st.pool.apis[i].name not in st.gold_names]
    if expected.kind in ("ask", "refuse"):
        if r < noise.distractor:
            # Eager calling: guess the missing value, or call a candidate that does not fit.
            if expected.kind == "ask":
                calls = [{**c, "arguments": dict(c["arguments"])} for c in st.planned_calls(ph.ex, 0)]
                return Action("calls", calls, thought=expected.thought)
            if st.plan.tools:
                a = st.pool.apis[rng.choice(st.plan.tools)]
                args = {p: gen_value(p, a.props[p], rng) for p in a.required}
                return Action("calls", [{"name": a.name, "arguments": args}], thought=None)
        return expected
    if expected.kind != "calls":
        return expected
    calls = [{"name": c["name"], "arguments": dict(c["arguments"])} for c in expected.calls]
    if r < noise.distractor and distractors:
        j = rng.randrange(len(calls))
        calls[j]["name"] = st.pool.apis[rng.choice(distractors)].name
        return Action("calls", calls, thought=expected.thought)
    r -= noise.distractor
    if r < noise.drop_optional:
        droppable = [(j, p) for j, c in enumerate(calls) for p in c["arguments"]
                     if p not in (st.pool.by_name[c["name"]].required if c["name"] in st.pool.by_name else ())]
        if droppable:
            j, p = rng.choice(droppable)
            del calls[j]["arguments"][p]
            return Action("calls", calls, thought=expected.thought)
        return expected
    r -= noise.drop_optional
    if r < noise.perturb_value:
        j = rng.randrange(len(calls))
        args = calls[j]["arguments"]
        if args:
            p = rng.choice(list(args))
            api = st.pool.by_name.get(calls[j]["name"])
            args[p] = _perturb(args[p], rng, (api.props.get(p) if api else {}) or {})
            return Action("calls", calls, thought=expected.thought)
    return expected


