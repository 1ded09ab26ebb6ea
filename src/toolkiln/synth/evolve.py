"""Adaptation and evolution operators (ToolACE §3.1, "adaptation" and "evolution").

*Adaptation* decides what an API will be before it is written: a domain, a
diversity level, and a sampled subtree of the API context tree whose
fine-grained functionalities become the API's capabilities (:func:`sample_spec`).

*Evolution* rewrites an API under ToolACE's diversity indicators — add
functionality, add parameters, add constraints, mutate parameter types (incl.
nesting into arrays/objects), update the return value — each an explicit pure
operator ``(api, rng, ...) -> (api, note)`` on a canonical API dict, registered in
:data:`OPERATORS`. The example buffer keeps recent APIs per domain; a new API takes
its house style (naming, shared optional parameters) from a buffered example, and
feeds back into the buffer.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from dataclasses import dataclass, field

from toolkiln.synth.config import SynthConfig
from toolkiln.synth.tree import ContextTree
from toolkiln.synth.vocab import GENERIC, TRIGGERS, ParamTemplate, match_templates

OPS = ("add_functionality", "add_parameters", "add_constraints", "mutate_types", "update_returns")
_TEMPLATE_BY_NAME: dict[str, ParamTemplate] = {}
for _rx, _tpls in TRIGGERS:
    for _t in _tpls:
        _TEMPLATE_BY_NAME.setdefault(_t.name, _t)
for _t in GENERIC.values():
    _TEMPLATE_BY_NAME.setdefault(_t.name, _t)


@dataclass(frozen=True)
class APISpec:
    """Everything decided before an API is realised (by the simulator or an LLM)."""

    uid: int
    domain: str  # slug
    domain_name: str
    category: str  # slug
    category_name: str
    leaves: tuple[str, ...]  # first = primary functionality
    level: int  # diversity level 1..3
    ops: tuple[str, ...]  # evolution operators to apply, in order
    example: dict | None = None  # an API from the example buffer (canonical dict)
    seed: int = 0


@dataclass
class ExampleBuffer:
    """Per-domain FIFO of recent APIs (ToolACE's example buffer)."""

    capacity: int
    _items: dict[str, deque] = field(default_factory=dict)

    def add(self, domain: str, api: dict) -> None:
        self._items.setdefault(domain, deque(maxlen=self.capacity)).append(api)

    def sample(self, domain: str, rng: random.Random) -> dict | None:
        items = self._items.get(domain)
        return items[rng.randrange(len(items))] if items else None

    def size(self, domain: str) -> int:
        return len(self._items.get(domain, ()))


def steps_for_level(level: int, max_steps: int) -> int:
    # Level 1 APIs stay as simple as their leaf; level 3 gets the full evolution budget.
    return round(max_steps * (level - 1) / 2)


def sample_ops(level: int, cfg: SynthConfig, rng: random.Random) -> tuple[str, ...]:
    ev = cfg.evolution
    weights = [ev.add_functionality, ev.add_parameters, ev.add_constraints, ev.mutate_types, ev.update_returns]
    n = steps_for_level(level, ev.max_steps)
    if n == 0 or sum(weights) == 0:
        return ()
    return tuple(rng.choices(OPS, weights=weights, k=n))


def sample_spec(tree: ContextTree, cfg: SynthConfig, rng: random.Random, uid: int, buffer: ExampleBuffer | None) -> APISpec:
    """Adaptation: pick domain, level and a subtree of functionalities for one new API."""
    dom = tree.domains[rng.randrange(len(tree.domains))]
    cat = dom.categories[rng.randrange(len(dom.categories))]
    level = rng.choices((1, 2, 3), weights=cfg.diversity_weights)[0]
    k = rng.randint(1, min(cfg.max_leaves[level - 1], len(cat.functionalities)))
    leaves = rng.sample(cat.functionalities, k)
    if level == 3 and len(dom.categories) > 1 and rng.random() < 0.3:
        # richest APIs span a sibling category of the same subtree (e.g. forecasts + alerts)
        other = dom.categories[rng.randrange(len(dom.categories))]
        if other.slug != cat.slug:
            leaves.append(rng.choice(other.functionalities))
    example = buffer.sample(dom.slug, rng) if buffer is not None else None
    return APISpec(uid=uid, domain=dom.slug, domain_name=dom.name, category=cat.slug, category_name=cat.name,
                   leaves=tuple(leaves), level=level, ops=sample_ops(level, cfg, rng), example=example,
                   seed=rng.getrandbits(32))


# ---------------------------------------------------------------- operators


def _props(api: dict) -> dict:
    return api["parameters"].setdefault("properties", {})


def _add_param(api: dict, tpl: ParamTemplate, required: bool) -> bool:
    props = _props(api)
    if tpl.name in props:
        return False
    props[tpl.name] = copy.deepcopy(tpl.schema)
    if required:
        api["parameters"].setdefault("required", []).append(tpl.name)
    return True


def add_functionality(api: dict, rng: random.Random, leaf: str) -> tuple[dict, str]:
    """Extend the API with another fine-grained functionality: its parameters join as optional ones."""
    api = copy.deepcopy(api)
    added = [t.name for t in match_templates(leaf) if _add_param(api, t, required=False)]
    api["functionalities"] = list(api.get("functionalities", [])) + [leaf]
    api["description"] = api["description"].rstrip(".") + f". Also supports: {leaf}."
    return api, f"add_functionality({leaf!r}; params {added})"


def add_parameters(api: dict, rng: random.Random) -> tuple[dict, str]:
    """Add one or two optional, commonly useful parameters."""
    api = copy.deepcopy(api)
    free = [g for g in GENERIC.values() if g.name not in _props(api)]
    chosen = rng.sample(free, min(len(free), rng.randint(1, 2)))
    for t in chosen:
        _add_param(api, t, required=False)
    return api, f"add_parameters({[t.name for t in chosen]})"


_GENERIC_CONSTRAINTS = {
    "string": ({"maxLength": 256}, {"minLength": 1}),
    "integer": ({"minimum": 0}, {"minimum": 1, "maximum": 1000}),
    "number": ({"minimum": 0}, {"minimum": 0, "maximum": 1e6}),
    "array": ({"minItems": 1}, {"maxItems": 50}, {"uniqueItems": True}),
}


def _constrainable(schema: dict) -> bool:
    return schema.get("type") in _GENERIC_CONSTRAINTS and "enum" not in schema


def add_constraints(api: dict, rng: random.Random) -> tuple[dict, str]:
    """Tighten one parameter: a range, pattern, enum or format (from its template when known)."""
    api = copy.deepcopy(api)
    props = _props(api)
    names = [n for n, s in props.items() if _constrainable(s)]
    if not names:
        return api, "add_constraints(none applicable)"
    name = rng.choice(names)
    schema = props[name]
    tpl = _TEMPLATE_BY_NAME.get(name)
    options = [c for c in (tpl.constraints if tpl and tpl.schema.get("type") == schema.get("type") else ())
               if not set(c) & set(schema)]
    if not options:
        options = [c for c in _GENERIC_CONSTRAINTS[schema["type"]] if not set(c) & set(schema)]
    if not options:
        return api, f"add_constraints({name}: already constrained)"
    c = copy.deepcopy(rng.choice(options))
    if "enum" in c:
        # an enum replaces free-form constraints; a default outside the enum would be a contradiction
        for k in ("pattern", "format", "minLength", "maxLength"):
            schema.pop(k, None)
        if "default" in schema and schema["default"] not in c["enum"]:
            schema.pop("default")
    schema.update(c)
    return api, f"add_constraints({name}: {sorted(c)})"


def _plural(name: str) -> str:
    if name.endswith("y") and not name.endswith(("ay", "ey", "oy", "uy")):
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "sh", "ch")):
        return name + "es"
    return name + "s"


def mutate_types(api: dict, rng: random.Random) -> tuple[dict, str]:
    """Change a parameter's type: scalar -> array, a pair of scalars -> nested object, or add an array of objects."""
    api = copy.deepcopy(api)
    props = _props(api)
    req = api["parameters"].setdefault("required", [])
    scalars = [n for n, s in props.items() if s.get("type") in ("string", "integer", "number") and not n.endswith("_id")]
    choice = rng.random()
    if choice < 0.4 and scalars:
        name = rng.choice(scalars)
        new = _plural(name)
        if new not in props:
            item = props.pop(name)
            desc = item.pop("description", name)
            item.pop("default", None)
            props[new] = {"type": "array", "description": f"One or more values; each: {desc}", "items": item,
                          "minItems": 1}
            if name in req:
                req[req.index(name)] = new
            return api, f"mutate_types({name} -> array {new})"
    if choice < 0.7 and len(scalars) >= 2:
        a, b = rng.sample(scalars, 2)
        group = "location" if {"latitude", "longitude"} & {a, b} else rng.choice(["options", "criteria", "details", "spec"])
        if group not in props:
            sub_req = [n for n in (a, b) if n in req]
            obj = {"type": "object", "description": f"Grouped settings: {a} and {b}.",
                   "properties": {a: props.pop(a), b: props.pop(b)}}
            if sub_req:
                obj["required"] = sub_req
            props[group] = obj
            api["parameters"]["required"] = [r for r in req if r not in (a, b)] + ([group] if sub_req else [])
            return api, f"mutate_types({a},{b} -> object {group})"
    if "filters" not in props:
        props["filters"] = {
            "type": "array", "description": "Conditions the results must satisfy.", "maxItems": 10,
            "items": {"type": "object", "description": "One condition.",
                      "properties": {"field": {"type": "string", "description": "Field name."},
                                     "operator": {"type": "string", "description": "Comparison.",
                                                  "enum": ["eq", "ne", "lt", "lte", "gt", "gte", "contains"]},
                                     "value": {"type": "string", "description": "Value to compare with."}},
                      "required": ["field", "operator", "value"]}}
        return api, "mutate_types(add array<object> filters)"
    return api, "mutate_types(none applicable)"


def update_returns(api: dict, rng: random.Random) -> tuple[dict, str]:
    """Enrich the return value: request metadata, pagination, or a nested detail object."""
    api = copy.deepcopy(api)
    rets = api.setdefault("returns", {"type": "object", "properties": {}})
    rprops = rets.setdefault("properties", {})
    options = []
    if "metadata" not in rprops:
        options.append(("metadata", {"type": "object", "description": "Request metadata.", "properties": {
            "request_id": {"type": "string", "description": "Unique id of this request."},
            "generated_at": {"type": "string", "format": "date-time", "description": "When the response was produced."}}}))
    if "next_cursor" not in rprops and any(v.get("type") == "array" for v in rprops.values()):
        options.append(("next_cursor", {"type": "string", "description": "Cursor for the next page; empty when done."}))
    if "warnings" not in rprops:
        options.append(("warnings", {"type": "array", "description": "Non-fatal issues.", "items": {"type": "string"}}))
    if "source" not in rprops:
        options.append(("source", {"type": "object", "description": "Where the data came from.", "properties": {
            "provider": {"type": "string", "description": "Data provider."},
            "last_updated": {"type": "string", "format": "date-time", "description": "Freshness of the data."}}}))
    if not options:
        return api, "update_returns(none applicable)"
    key, schema = rng.choice(options)
    rprops[key] = schema
    return api, f"update_returns(+{key})"


OPERATORS = {
    "add_functionality": add_functionality,
    "add_parameters": add_parameters,
    "add_constraints": add_constraints,
    "mutate_types": mutate_types,
    "update_returns": update_returns,
}
