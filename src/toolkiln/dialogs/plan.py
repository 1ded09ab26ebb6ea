"""Self-guided planning of one dialog (ToolACE arXiv 2409.00920 §3.2).

ToolACE's dialogs are *guided*: what the dialog must exercise (its type, the
APIs, the candidate list, the complexity) is decided first, and the agents then
act it out. :func:`plan_dialog` makes those decisions for one dialog from its own
seed:

* the **type** (single / parallel / dependent / non_tool / clarification) and
  the **gold APIs** it calls — a dependent dialog takes a pair from the pool's
  dependency index, a non-tool dialog an *intent API* that is then left out of
  the candidates;
* **argument values** (plausible, schema-valid, see :mod:`toolkiln.dialogs.values`)
  and how the user will say each one (:mod:`toolkiln.dialogs.surface`): in the
  request, in a later answer (clarification), as a user-profile fact in the
  system prompt, carried over from an earlier turn (follow-ups), or — for the
  consuming call of a dependent dialog — from the earlier tool result;
* **history** exchanges for multi-turn dialogs and same-domain **distractors**;
* the **complexity level** (0-4): more distractors, optional arguments, parallel
  calls and history, and wording further from the API description as it grows —
  the knob complexity guidance turns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from toolkiln.dialogs.config import DialogsConfig
from toolkiln.dialogs.pool import APIInfo, APIPool
from toolkiln.dialogs.surface import (STYLES, Mention, Said, clarification_answer, compose_request, dependent_request,
                                      fill_slots, follow_up, join_words, mention, param_words, paraphrase)
from toolkiln.dialogs.values import conforms, gen_value, pair_fix
from toolkiln.argcheck import json_type

SYSTEM_PROMPTS = (
    "You are a helpful assistant with access to the functions listed below. When a request needs them, reply with "
    "the function call(s) only, written as a Python list: [func_name1(param1=value1, param2=value2), "
    "func_name2(param=value)]. Use only the listed functions and parameters. If a required argument is missing, ask "
    "the user for it instead of guessing. If none of the functions can help, say so and make no call. When function "
    "results come back, answer the user in plain text.",
    "You are an assistant that can use tools. To use them, output only a Python list of calls such as "
    "[tool_a(x=1, y=\"text\"), tool_b(z=[1, 2])]. Call only the tools provided, with their documented parameters. Ask "
    "a follow-up question when required information is missing; if no tool fits the request, tell the user and do not "
    "call anything. Summarise tool results for the user in plain language.",
    "You help users by calling functions. Output format for function calls: [function_name(argument=value, ...)], "
    "one list holding every call you make in that turn, with nothing else. Never invent functions or arguments. If "
    "something the function requires was not given, ask for it. If the functions cannot do what the user wants, "
    "explain that without calling any. After results arrive, reply in plain text.",
)
_PROFILE_OK = ("email", "phone_number", "phone", "city", "address", "user_id", "account_id", "username", "timezone",
               "currency", "language", "country", "customer_id", "member_id", "postal_code", "home_city")
_STYLE_WEIGHTS = (0.22, 0.18, 0.14, 0.1, 0.12, 0.08, 0.16)  # polite, direct, want, terse, context, slots, casual


@dataclass
class PCall:
    """One planned call: canonical arguments and where the user gives each of them."""

    api: int
    name: str
    arguments: dict
    mentions: dict[str, Mention] = field(default_factory=dict)
    given_by: dict[str, str] = field(default_factory=dict)  # param -> user | answer | system | history | tool
    link: tuple[str, int, str] | None = None  # (param, index of the feeding call in the previous stage, result path)


@dataclass
class Exchange:
    """One user request and everything until the assistant's text answer."""

    kind: str  # tool | clarify | non_tool
    stages: list[list[PCall]]
    request: str  # the simulator's wording of the request
    intent: str
    style: str
    missing: tuple[int, str] | None = None  # clarify: (call index in stage 0, parameter) left out of the request
    answer: str = ""  # clarify: the simulator's wording of the user's answer
    intent_api: int | None = None  # non_tool: the API the request is about (not offered)
    follow_up: bool = False
    history_turn: int | None = None  # follow_up: exchange index whose request gave the carried-over values
    brief: dict = field(default_factory=dict)  # what an LLM user agent is told to write


@dataclass
class DialogPlan:
    seed: int
    type: str
    level: int
    domain: str
    system: str
    profile: dict[str, Any]  # parameter -> value stated in the system prompt
    tools: list[int]  # candidate API indices (gold + distractors), in offer order
    exchanges: list[Exchange]
    attempt: int = 0


class PlanError(Exception):
    """The plan cannot be made from this seed (e.g. no API in the pool fits); the reason is recorded."""


def _level_draw(cfg: DialogsConfig, rng: random.Random) -> int:
    return rng.choices(range(5), weights=cfg.levels)[0]


def _n_distractors(cfg: DialogsConfig, level: int, rng: random.Random) -> int:
    lo, hi = cfg.distractors
    centre = lo + (hi - lo) * level / 4
    return max(lo, min(hi, round(centre + rng.uniform(-1, 1))))


def _optional_share(cfg: DialogsConfig, level: int) -> float:
    return min(1.0, cfg.optional_args * (0.5 + 0.25 * level))


def _pick(pool: APIPool, rng: random.Random, ok, domain: str | None = None, tries: int = 60) -> APIInfo | None:
    src = pool.by_domain.get(domain) if domain else None
    for _ in range(tries):
        a = pool.apis[src[rng.randrange(len(src))]] if src else pool.apis[rng.randrange(len(pool))]
        if ok(a):
            return a
    return None


def _scalar_param(a: APIInfo, p: str) -> bool:
    s = a.props.get(p)
    return isinstance(s, dict) and json_type(s) in ("string", "integer", "number") and len(s.get("enum") or [0, 0]) > 1


def make_arguments(a: APIInfo, rng: random.Random, optional_share: float, *, skip: tuple[str, ...] = ()) -> dict:
    """Required + some optional arguments of ``a``, schema-valid (retried) or PlanError."""
    for _ in range(4):
        args = {}
        for p in a.required:
            if p not in skip:
                args[p] = gen_value(p, a.props[p], rng, optional_share=optional_share)
        for p in a.optional:
            if p not in skip and rng.random() < optional_share:
                args[p] = gen_value(p, a.props[p], rng, optional_share=optional_share)
        args = pair_fix(args)
        if not [c for c, _ in a.check({**args, **{s: _placeholder(a, s) for s in skip if s in a.required}})]:
            return args
    raise PlanError(f"cannot generate schema-valid arguments for {a.name}")


def _placeholder(a: APIInfo, p: str) -> Any:
    return gen_value(p, a.props[p], random.Random(0))


def _mentions(a: APIInfo, call: PCall, rng: random.Random, cfg: DialogsConfig, style: str,
              params: list[str] | None = None) -> None:
    terse = style in ("terse", "slots")
    for p in params if params is not None else list(call.arguments):
        call.mentions[p] = mention(p, a.props.get(p, {}), call.arguments[p], rng, terse=terse,
                                   date_text=cfg.date_as_text, number_words=cfg.number_words)
        call.given_by.setdefault(p, "user")


def _request_parts(pool: APIPool, calls: list[PCall], rng: random.Random, distance: int,
                   omit: set[str] = frozenset()) -> list[tuple[str, list[str]]]:
    parts = []
    for c in calls:
        a = pool.apis[c.api]
        intent = paraphrase(a.intent, rng, distance)
        given = {p: m for p, m in c.mentions.items() if p not in omit and c.given_by.get(p) in ("user", "system")}
        intent, used = fill_slots(intent, {p: m for p, m in given.items() if c.given_by.get(p) == "user"}, c.arguments)
        ms = [m.text for p, m in given.items() if p not in used]
        if len(ms) > 2 and rng.random() < 0.3:
            rng.shuffle(ms)
        parts.append((intent, ms))
    return parts


def _brief(pool: APIPool, ex: Exchange, calls: list[PCall], omit: set[str]) -> dict:
    """What an LLM user agent needs to write this request: the tasks and the values to say (never how to call)."""
    tasks = []
    for c in calls:
        a = pool.apis[c.api]
        say = {p: {"value": c.arguments[p], "say_as": " / ".join(s.text for s in m.spans)}
               for p, m in c.mentions.items() if p not in omit and c.given_by.get(p) == "user"}
        refer = {p: {"say_as": f"my {param_words(p)}", "value": c.arguments[p]}
                 for p, g in c.given_by.items() if g == "system"}
        task = {"api": a.name, "intent": a.intent, "mention": say, "refer_to_profile": refer}
        if c.link:
            task["from_previous_result"] = c.link[0]
            task["link"] = {"param": c.link[0], "field": c.link[2]}
        tasks.append(task)
    return {"kind": ex.kind, "style": ex.style, "tasks": tasks, "omit": sorted(omit)}


def _profile(call: PCall, a: APIInfo, rng: random.Random, cfg: DialogsConfig, skip: set[str]) -> dict:
    cands = [p for p in call.arguments if p in _PROFILE_OK and p not in skip and isinstance(call.arguments[p], str)
             and "enum" not in a.props.get(p, {})]
    if not cands or rng.random() >= cfg.profile_in_system:
        return {}
    p = rng.choice(cands)
    call.given_by[p] = "system"
    pw = param_words(p)
    call.mentions[p] = Mention(p, rng.choice([f"for my {pw}", f"using my {pw}", f"with my {pw} from my profile"]),
                               [Said(f"my {pw}", call.arguments[p])])
    return {p: call.arguments[p]}


def _style(rng: random.Random) -> str:
    return rng.choices(STYLES, weights=_STYLE_WEIGHTS)[0]


def paraphrase_distance(level: int, rng: random.Random) -> int:
    """How far the user's wording of an intent strays from the API description, for every dialog type:
    verbatim at levels 0-1, verbatim or one step at level 2 (so level 2 is harder than level 1), then
    ``level - 2``."""
    return 0 if level <= 1 else (rng.randint(0, 1) if level == 2 else level - 2)


def _tool_exchange(pool: APIPool, calls: list[PCall], rng: random.Random, cfg: DialogsConfig, level: int,
                   style: str, same_api: bool = False, varying: str | None = None) -> Exchange:
    distance = paraphrase_distance(level, rng)
    if same_api and varying:
        c0 = calls[0]
        part = _request_parts(pool, [c0], rng, distance, omit={varying})[0]
        vary = join_words([c.mentions[varying].text for c in calls], rng)
        if rng.random() < 0.3:
            vary = "for each of these: " + join_words([" / ".join(s.text for s in c.mentions[varying].spans)
                                                         for c in calls])
        parts = [(part[0], part[1] + [vary])]
    else:
        parts = _request_parts(pool, calls, rng, distance)
    text = compose_request(parts, rng, style)
    ex = Exchange("tool", [calls], text, "; ".join(p[0] for p in parts), style)
    ex.brief = _brief(pool, ex, calls, set())
    return ex


def _single_call(pool: APIPool, a: APIInfo, rng: random.Random, cfg: DialogsConfig, level: int, style: str,
                 skip: tuple[str, ...] = ()) -> PCall:
    call = PCall(a.idx, a.name, make_arguments(a, rng, _optional_share(cfg, level), skip=skip))
    _mentions(a, call, rng, cfg, style)
    return call


@dataclass
class _Planned:
    """What a per-type planner decides: the exchanges and what the common tail needs from them."""

    exchanges: list[Exchange]
    gold_domain: str
    profile: dict = field(default_factory=dict)
    intent_leaves: frozenset = frozenset()  # non_tool: leaves no candidate may cover (it would fit the request)


def _plan_single(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, style: str) -> _Planned:
    """One call; in multi-turn dialogs sometimes a follow-up that changes one value and keeps the rest."""
    a = _pick(pool, rng, lambda x: True)
    assert a is not None
    call = _single_call(pool, a, rng, cfg, level, style)
    varying = [p for p in call.arguments if _scalar_param(a, p) and call.given_by[p] == "user"]
    multi = rng.random() < cfg.multi_turn * (0.5 + 0.25 * level)
    if multi and varying and rng.random() < cfg.follow_up:
        exchanges = _follow_up_exchanges(pool, a, call, varying, rng, cfg, level, style)
        if exchanges:
            return _Planned(exchanges, a.domain)
    profile = _profile(call, a, rng, cfg, set())
    return _Planned([_tool_exchange(pool, [call], rng, cfg, level, style)], a.domain, profile)


def _follow_up_exchanges(pool: APIPool, a: APIInfo, call: PCall, varying: list[str], rng: random.Random,
                         cfg: DialogsConfig, level: int, style: str) -> list[Exchange]:
    """[first request, follow-up changing one value], or [] when no different valid value can be drawn."""
    first = _tool_exchange(pool, [call], rng, cfg, level, style)
    p = rng.choice(varying)
    for _ in range(8):
        new = gen_value(p, a.props[p], rng, optional_share=_optional_share(cfg, level))
        if new != call.arguments[p] and conforms(new, a.props[p]):
            break
    else:
        return []
    args2 = pair_fix({**call.arguments, p: new})
    if a.check(args2) or any(args2[q] != call.arguments[q] for q in args2 if q != p):
        return []  # pair_fix moved another value: "the rest as before" would be false
    call2 = PCall(a.idx, a.name, args2, {k: v for k, v in call.mentions.items() if k != p},
                  {k: "history" for k in call.arguments if k != p})
    _mentions(a, call2, rng, cfg, "polite", [p])
    text = follow_up(call2.mentions[p], a.intent, rng)
    ex2 = Exchange("tool", [[call2]], text, a.intent, "follow_up", follow_up=True, history_turn=0)
    ex2.brief = {"kind": "follow_up", "style": "follow_up", "tasks": [
        {"api": a.name, "intent": a.intent, "mention": {p: {"value": new, "say_as": " / ".join(
            s.text for s in call2.mentions[p].spans)}}, "same_as_before": sorted(set(call.arguments) - {p})}],
        "omit": []}
    return [first, ex2]


def _plan_parallel(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, style: str) -> _Planned:
    """Several calls in one turn: one API with one value varying, or several APIs of one domain."""
    lo, hi = cfg.parallel_calls
    k = max(lo, min(hi, lo + (1 if level >= 3 else 0) + (1 if rng.random() < 0.2 else 0)))
    if rng.random() < cfg.parallel_same_api:
        return _plan_parallel_same_api(pool, cfg, rng, level, style, k)
    a = _pick(pool, rng, lambda x: len(pool.by_domain[x.domain]) > 1)
    if a is None:
        raise PlanError("no domain with two or more APIs for a parallel_multiple dialog")
    others = pool.distractors([a.idx], k - 1, rng, cfg.same_category)
    if not others:
        raise PlanError(f"no second API in domain {a.domain} for parallel calls")
    calls = [_single_call(pool, pool.apis[i], rng, cfg, level, style) for i in [a.idx] + others]
    return _Planned([_tool_exchange(pool, calls, rng, cfg, level, style)], a.domain)


def _plan_parallel_same_api(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, style: str,
                            k: int) -> _Planned:
    a = _pick(pool, rng, lambda x: any(_scalar_param(x, p) for p in x.props))
    if a is None:
        raise PlanError("no API with a parameter that can vary across parallel calls")
    base = _single_call(pool, a, rng, cfg, level, style)
    varying = [p for p in a.props if _scalar_param(a, p)]
    vp = next((p for p in varying if p in a.required), None) or rng.choice(varying)
    calls, seen = [], []
    for _ in range(k * 6):
        if len(calls) >= k:
            break
        v = gen_value(vp, a.props[vp], rng)
        if v in seen:
            continue
        args = pair_fix({**base.arguments, vp: v})
        if a.check(args) or any(args[q] != base.arguments[q] for q in args if q != vp):
            continue  # pair_fix moved another value: its mention would no longer match
        seen.append(v)
        c = PCall(a.idx, a.name, args, {q: m for q, m in base.mentions.items() if q != vp},
                  {q: "user" for q in args})
        _mentions(a, c, rng, cfg, style, [vp])
        calls.append(c)
    if len(calls) < 2:
        raise PlanError(f"cannot draw distinct values of {a.name}.{vp} for parallel calls")
    return _Planned([_tool_exchange(pool, calls, rng, cfg, level, style, same_api=True, varying=vp)], a.domain)


def _plan_dependent(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, style: str) -> _Planned:
    """Two stages: the second call's argument is a field of the first call's result."""
    if not pool.link_slots:
        raise PlanError("the pool has no dependent API pair (a result field that feeds a required parameter)")
    for _ in range(20):
        slot = pool.link_slots[rng.randrange(len(pool.link_slots))]
        a_idx, path, fschema = slot.sources[rng.randrange(len(slot.sources))]
        b = pool.apis[slot.b]
        first = pool.apis[a_idx]
        v = gen_value(slot.param, b.props[slot.param], rng)
        if conforms(v, fschema):
            break
    else:
        raise PlanError("no dependent pair whose linked values are compatible")
    c1 = _single_call(pool, first, rng, cfg, level, style)
    args2 = make_arguments(b, rng, _optional_share(cfg, level), skip=(slot.param,))
    args2[slot.param] = v
    if b.check(args2):
        raise PlanError(f"linked value {v!r} does not fit {b.name}.{slot.param}")
    c2 = PCall(b.idx, b.name, args2, given_by={slot.param: "tool"}, link=(slot.param, 0, path))
    _mentions(b, c2, rng, cfg, style, [p for p in args2 if p != slot.param])
    distance = paraphrase_distance(level, rng)
    p1, p2 = _request_parts(pool, [c1], rng, distance)[0], _request_parts(pool, [c2], rng, distance)[0]
    link_words = param_words(slot.param)
    text = dependent_request(p1, p2, link_words, rng, style)
    ex = Exchange("tool", [[c1], [c2]], text, f"{p1[0]}; {p2[0]}", style)
    ex.brief = _brief(pool, ex, [c1, c2], set())
    ex.brief["order"] = f"the second task needs the {link_words} returned by the first"
    return _Planned([ex], b.domain)


def _plan_non_tool(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, style: str) -> _Planned:
    """A request about an *intent API* that is left out of the candidates: the assistant must say no tool fits."""
    x = _pick(pool, rng, lambda y: len(pool.by_domain[y.domain]) > 1)
    if x is None:
        raise PlanError("no domain with two or more APIs for a non-tool dialog")
    call = _single_call(pool, x, rng, cfg, level, style)
    parts = _request_parts(pool, [call], rng, paraphrase_distance(level, rng))
    ex = Exchange("non_tool", [], compose_request(parts, rng, style), parts[0][0], style, intent_api=x.idx)
    ex.brief = _brief(pool, ex, [call], set())
    ex.brief["no_tool"] = True
    ex.brief["tasks"][0].pop("api")
    return _Planned([ex], x.domain, intent_leaves=x.leaves)


def _plan_clarification(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, style: str) -> _Planned:
    """A request missing one required free-valued argument: the assistant asks, the user answers, then the call."""
    a = _pick(pool, rng, lambda x: any(_scalar_param(x, p) and "enum" not in x.props[p] for p in x.required))
    if a is None:
        raise PlanError("no API with a required free-valued parameter to ask for")
    call = _single_call(pool, a, rng, cfg, level, style)
    miss = rng.choice([p for p in a.required if _scalar_param(a, p) and "enum" not in a.props[p]])
    call.given_by[miss] = "answer"
    profile = _profile(call, a, rng, cfg, {miss})
    parts = _request_parts(pool, [call], rng, paraphrase_distance(level, rng), omit={miss})
    m = call.mentions[miss]
    answer = clarification_answer(m, " / ".join(s.text for s in m.spans) if len(m.spans) > 1 else m.spans[0].text, rng)
    ex = Exchange("clarify", [[call]], compose_request(parts, rng, style), parts[0][0], style, missing=(0, miss),
                  answer=answer)
    ex.brief = _brief(pool, ex, [call], {miss})
    ex.brief["answer"] = {"param": miss, "value": call.arguments[miss], "say_as": " / ".join(s.text for s in m.spans)}
    return _Planned([ex], a.domain, profile)


PLANNERS = {
    "single": _plan_single,
    "parallel": _plan_parallel,
    "dependent": _plan_dependent,
    "non_tool": _plan_non_tool,
    "clarification": _plan_clarification,
}


def _with_history(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, planned: _Planned) -> list[Exchange]:
    """Earlier, completed exchanges (multi-turn) with other APIs of the domain, before the planned ones."""
    exchanges = planned.exchanges
    if any(e.follow_up for e in exchanges) or cfg.max_history <= 0 or \
            rng.random() >= cfg.multi_turn * (0.5 + 0.25 * level):
        return exchanges
    n_hist = rng.randint(1, max(1, min(cfg.max_history, 1 + level // 2)))
    used = {c.api for e in exchanges for st in e.stages for c in st} | \
           ({exchanges[0].intent_api} if exchanges[0].intent_api is not None else set())
    hist = pool.distractors(sorted(used), n_hist, rng, cfg.history_same_category, exclude_leaves=planned.intent_leaves)
    history = []
    for i in hist:
        hs = _style(rng)
        c = _single_call(pool, pool.apis[i], rng, cfg, level, hs)
        history.append(_tool_exchange(pool, [c], rng, cfg, level, hs))
    return history + exchanges


def _candidates(pool: APIPool, cfg: DialogsConfig, rng: random.Random, level: int, type_: str,
                exchanges: list[Exchange], intent_leaves: frozenset) -> list[int]:
    """Gold APIs plus same-domain distractors, shuffled into offer order."""
    gold: list[int] = []
    for e in exchanges:
        for st in e.stages:
            for c in st:
                if c.api not in gold:
                    gold.append(c.api)
    anchor = gold if gold else [exchanges[-1].intent_api]
    k = _n_distractors(cfg, level, rng)
    if type_ == "non_tool":
        k = max(1, k)
    extra = pool.distractors(anchor, k, rng, cfg.same_category, exclude_leaves=intent_leaves)
    if type_ == "non_tool":
        extra = [i for i in extra if i != exchanges[-1].intent_api]
        if not extra and not gold:
            raise PlanError(f"no same-domain candidate that differs from intent API {pool.apis[anchor[0]].name}")
    tools = gold + extra
    rng.shuffle(tools)
    return tools


def plan_dialog(pool: APIPool, cfg: DialogsConfig, type_: str, seed: int, level: int | None = None,
                attempt: int = 0) -> DialogPlan:
    """Plan one dialog of ``type_`` from ``seed`` (deterministic); PlanError when the pool cannot supply it.

    The type's planner (:data:`PLANNERS`) decides the exchanges; then, for every type, history exchanges,
    the candidate list and the system prompt."""
    if type_ not in PLANNERS:
        raise PlanError(f"unknown dialog type {type_!r}")
    rng = random.Random(seed)
    level = _level_draw(cfg, rng) if level is None else max(0, min(4, level))
    style = _style(rng)
    planned = PLANNERS[type_](pool, cfg, rng, level, style)
    exchanges = _with_history(pool, cfg, rng, level, planned)
    tools = _candidates(pool, cfg, rng, level, type_, exchanges, planned.intent_leaves)
    system = rng.choice(SYSTEM_PROMPTS)
    if planned.profile:
        facts = "; ".join(f"{param_words(p)}: {v}" for p, v in planned.profile.items())
        system += f"\nWhat you know about the user: {facts}."
    return DialogPlan(seed=seed, type=type_, level=level, domain=planned.gold_domain, system=system,
                      profile=planned.profile, tools=tools, exchanges=exchanges, attempt=attempt)
