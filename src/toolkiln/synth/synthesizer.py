"""API synthesisers: one interface, two implementations (ToolACE §3.1).

An :class:`APISynthesizer` turns :class:`~toolkiln.synth.evolve.APISpec` s into
canonical API dicts, or into recorded rejections. The programmatic
:class:`SimulatorSynthesizer` (embedded default, seeded, deterministic) writes the
API from the vocabulary and applies the spec's evolution operators; the
:class:`LLMSynthesizer` prompts any chat backend with the same spec (subtree,
diversity level, example, operators to apply) and parses its JSON tolerantly.
Both go through the same validation and dedup in :mod:`toolkiln.synth.pool`.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from toolkiln.synth.evolve import OPERATORS, APISpec, add_functionality
from toolkiln.synth.importers import normalize_api
from toolkiln.synth.vocab import GENERIC, STOPWORDS, VERB_SYNONYMS, match_templates, verb_class


@dataclass
class SynthOutcome:
    spec: APISpec
    api: dict | None  # canonical dict when accepted
    reason: str | None = None  # why it was rejected
    trace: dict = field(default_factory=dict)  # ops applied, raw LLM text key, ...


class APISynthesizer(Protocol):
    name: str

    def realise(self, specs: Sequence[APISpec]) -> list[SynthOutcome]: ...


# ----------------------------------------------------------------- simulator

_WORD = re.compile(r"[a-z0-9]+")


_SPLIT = {
    "of",
    "for",
    "by",
    "with",
    "to",
    "in",
    "on",
    "from",
    "at",
    "against",
    "between",
    "across",
    "within",
    "using",
    "via",
    "into",
    "over",
    "under",
    "per",
    "about",
    "after",
    "before",
    "during",
    "when",
    "where",
    "that",
    "which",
    "and",
    "or",
    "as",
    "based",
    "given",
    "near",
    "around",
    "since",
    "until",
}
_GENERIC_HEADS = {
    "results",
    "result",
    "list",
    "details",
    "detail",
    "status",
    "number",
    "information",
    "info",
    "data",
    "summary",
    "history",
    "count",
    "value",
    "values",
    "metadata",
    "settings",
    "report",
    "statistics",
    "stats",
}
_ARTICLES = {
    "a",
    "an",
    "the",
    "its",
    "their",
    "your",
    "his",
    "her",
    "our",
    "my",
    "all",
    "any",
    "each",
    "every",
    "some",
    "current",
    "specific",
    "specified",
    "given",
    "new",
    "existing",
    "completed",
    "selected",
    "particular",
}


def object_words(leaf: str, k: int = 3) -> list[str]:
    """The API's object from a functionality: 'get the results of a vulnerability scan' -> [vulnerability, scan, results]."""
    words = _WORD.findall(leaf.lower())[1:]
    chunks, cur = [], []
    for w in words:
        if w in _SPLIT:
            chunks.append((cur, w))
            cur = []
        elif w not in _ARTICLES and not w.isdigit():
            cur.append(w)
    chunks.append((cur, None))
    head = chunks[0][0]
    if (not head or head[-1] in _GENERIC_HEADS) and len(chunks) > 1 and chunks[0][1] == "of" and chunks[1][0]:
        head = chunks[1][0][-2:] + head[-1:]
    head = [w for w in head if w not in STOPWORDS] or [w for c, _ in chunks for w in c if w not in STOPWORDS][:k]
    return head[-k:] or ["item"]


def _returns_for(cls: str, obj: str, rng: random.Random) -> dict:
    item_props = {
        "id": {"type": "string", "description": f"Identifier of the {obj}."},
        "name": {"type": "string", "description": f"Display name of the {obj}."},
    }
    extra = rng.choice(
        [
            {"updated_at": {"type": "string", "format": "date-time", "description": "Last update time."}},
            {"score": {"type": "number", "description": "Relevance or quality score."}},
            {"url": {"type": "string", "format": "uri", "description": "Link to the resource."}},
            {"status": {"type": "string", "description": "Current status."}},
        ]
    )
    item_props.update(extra)
    if cls == "list":
        return {
            "type": "object",
            "description": f"Matching {obj} records.",
            "properties": {
                "results": {
                    "type": "array",
                    "description": f"The {obj} records.",
                    "items": {"type": "object", "properties": item_props},
                },
                "total": {"type": "integer", "description": "Total number of matches."},
            },
        }
    if cls in ("create", "update"):
        return {
            "type": "object",
            "description": f"The {'created' if cls == 'create' else 'updated'} {obj}.",
            "properties": {
                "id": {"type": "string", "description": f"Identifier of the {obj}."},
                "status": {"type": "string", "description": "Resulting status.", "enum": ["ok", "pending", "queued"]},
                "timestamp": {"type": "string", "format": "date-time", "description": "When the change was applied."},
            },
        }
    if cls == "delete":
        return {
            "type": "object",
            "description": "Outcome of the operation.",
            "properties": {
                "success": {"type": "boolean", "description": "Whether the operation succeeded."},
                "message": {"type": "string", "description": "Human-readable outcome."},
            },
        }
    if cls == "compute":
        return {
            "type": "object",
            "description": "Computed result.",
            "properties": {
                "value": {"type": "number", "description": "The computed value."},
                "unit": {"type": "string", "description": "Unit of the value."},
                "details": {
                    "type": "object",
                    "description": "Intermediate values.",
                    "properties": {
                        "inputs_used": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Inputs considered.",
                        }
                    },
                },
            },
        }
    return {"type": "object", "description": f"The requested {obj} data.", "properties": item_props}


def _name_variants(verb: str, obj: list[str], spec: APISpec, style: dict) -> list[str]:
    syn = VERB_SYNONYMS.get(verb, [verb])
    base_verbs = [syn[style.get("verb_index", 0) % len(syn)]] + [s for s in syn if s != syn[0]]
    cores = []
    for v in base_verbs:
        cores.append(f"{v}_{'_'.join(obj)}")
        if len(obj) > 1:
            cores.append(f"{v}_{'_'.join(obj[-2:])}")
    cores += [
        f"{c}_{sfx}" for c in cores[:2] for sfx in ("v2", "detailed", "by_" + spec.category.split("_")[0], "advanced")
    ]
    ns_cat = spec.category
    ns_dom = spec.domain.split("_")[0]
    out = []
    for c in cores:
        if style.get("dotted"):
            out += [f"{ns_dom}.{c}", f"{ns_cat}.{c}", c]
        else:
            out += [c, f"{ns_dom}_{c}", f"{ns_cat}_{c}"]
    return [re.sub(r"_+", "_", n) for n in out]


def house_style(example: dict | None, rng: random.Random) -> dict:
    """What a new API inherits from its buffered example: naming convention and shared optional params."""
    if example is None:
        return {"dotted": rng.random() < 0.3, "verb_index": rng.randrange(3), "shared": []}
    props = example.get("parameters", {}).get("properties", {})
    shared = [n for n in ("language", "limit", "page", "fields", "timezone", "include_details") if n in props]
    return {
        "dotted": "." in example["name"],
        "verb_index": rng.randrange(3),
        "shared": shared[:1],
        "example": example["name"],
    }


def base_api(spec: APISpec, rng: random.Random, style: dict) -> dict:
    """Write the level-1 API for the spec's primary functionality."""
    leaf = spec.leaves[0]
    verb = leaf.split()[0].lower()
    cls = verb_class(verb)
    obj = object_words(leaf)
    obj_phrase = " ".join(obj)
    params: dict = {"type": "object", "properties": {}, "required": []}
    api = {
        "name": "",
        "description": "",
        "parameters": params,
        "returns": _returns_for(cls, obj_phrase, rng),
        "domain": spec.domain,
        "category": spec.category,
        "functionalities": [leaf],
    }
    tpls = match_templates(leaf)
    for i, t in enumerate(tpls):
        params["properties"][t.name] = json.loads(json.dumps(t.schema))
        if i < 3 and "default" not in t.schema:
            params["required"].append(t.name)
    ident = f"{obj[-1]}_id"
    if cls in ("read", "update", "delete") and not params["required"]:
        params["properties"][ident] = {"type": "string", "description": f"Identifier of the {obj[-1]}."}
        params["required"].append(ident)
    if cls == "list" and "query" not in params["properties"] and (not tpls or rng.random() < 0.5):
        params["properties"]["query"] = json.loads(json.dumps(GENERIC["query"].schema))
        if not params["required"]:
            params["required"].append("query")
    if cls == "list" and rng.random() < 0.6:
        params["properties"]["limit"] = json.loads(json.dumps(GENERIC["limit"].schema))
    if cls == "create" and len(params["properties"]) < 2:
        params["properties"]["name"] = {"type": "string", "description": f"Name of the new {obj[-1]}."}
        params["required"].append("name")
    if cls == "update" and len(params["properties"]) < 2:
        params["properties"]["note"] = {"type": "string", "description": "What changed and why."}
    if cls == "delete" and rng.random() < 0.5:
        params["properties"]["reason"] = {"type": "string", "description": "Reason for the operation."}
    for name in style.get("shared", []):
        tpl = GENERIC.get(name)
        if tpl and name not in params["properties"]:
            params["properties"][name] = json.loads(json.dumps(tpl.schema))
    openers = [
        "{Leaf}.",
        "{Leaf} in the {cat} service.",
        "{Leaf}; part of {dom} {cat}.",
        "{Leaf}. Results are returned as JSON.",
    ]
    api["description"] = rng.choice(openers).format(
        Leaf=leaf[0].upper() + leaf[1:], cat=spec.category_name.lower(), dom=spec.domain_name
    )
    api["_verb"] = verb
    api["_obj"] = obj
    return api


class SimulatorSynthesizer:
    """Programmatic API writer: deterministic given each spec's seed."""

    name = "simulator"

    def __init__(self, taken_names: set[str] | None = None):
        # Names already in the pool: a real designer would not publish a second API under a taken name.
        self.taken = taken_names if taken_names is not None else set()

    def realise_one(self, spec: APISpec) -> SynthOutcome:
        rng = random.Random(spec.seed)
        style = house_style(spec.example, rng)
        api = base_api(spec, rng, style)
        verb, obj = api.pop("_verb"), api.pop("_obj")
        notes = []
        for leaf in spec.leaves[1:]:
            api, note = add_functionality(api, rng, leaf)
            notes.append(note)
        for op in spec.ops:
            if op == "add_functionality":
                continue  # the subtree's leaves were added above; the op's weight shaped how many were sampled
            api, note = OPERATORS[op](api, rng)
            notes.append(note)
        for cand in _name_variants(verb, obj, spec, style):
            if cand not in self.taken:
                api["name"] = cand
                break
        else:
            return SynthOutcome(spec, None, "duplicate_name: every name variant is taken", {"ops": notes})
        self.taken.add(api["name"])
        return SynthOutcome(spec, api, None, {"ops": notes, "example": style.get("example")})

    def realise(self, specs: Sequence[APISpec]) -> list[SynthOutcome]:
        return [self.realise_one(s) for s in specs]


# ------------------------------------------------------------------ LLM path

SYSTEM_PROMPT = (
    "You design realistic web APIs for a tool-use dataset. Reply with ONE JSON object only, no prose, in this format: "
    '{"name": "snake_case_or.dotted_identifier", "description": "...", "parameters": {"type": "object", '
    '"properties": {"<param>": {"type": "string|integer|number|boolean|array|object", "description": "..."}}, '
    '"required": ["..."]}, "returns": {"type": "object", "properties": {...}}}. Use JSON Schema keywords only '
    "(enum, minimum, maximum, pattern, format, items, properties, required, default)."
)

# the reply's shape as a JSON Schema (structured outputs); a local model is handed the opening `{"name": "`
API_REPLY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "parameters": {"type": "object"},
        "returns": {"type": "object"},
    },
    "required": ["name", "description", "parameters"],
}

OP_INSTRUCTIONS = {
    "add_functionality": "cover all the listed functionalities in one API",
    "add_parameters": "add one or two useful optional parameters",
    "add_constraints": "constrain at least one parameter (a range, pattern, enum or format)",
    "mutate_types": "use at least one array or nested object parameter",
    "update_returns": "return a rich, nested result object",
}


def build_prompt(spec: APISpec) -> list[dict]:
    lines = [
        f"Domain: {spec.domain_name}",
        f"Category: {spec.category_name}",
        "Functionalities the API must provide:",
    ] + [f"- {leaf}" for leaf in spec.leaves]
    lines.append(f"Diversity level: {spec.level} of 3 ({['simple', 'moderate', 'rich'][spec.level - 1]}).")
    wanted = sorted({OP_INSTRUCTIONS[o] for o in spec.ops})
    if wanted:
        lines.append("Requirements: " + "; ".join(wanted) + ".")
    if spec.example is not None:
        ex = {k: spec.example[k] for k in ("name", "description", "parameters", "returns") if k in spec.example}
        lines.append("An API from the same domain, as an example of the expected style (do not copy it):")
        lines.append(json.dumps(ex, ensure_ascii=False))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


class LLMSynthesizer:
    """Prompts a chat backend with the spec; unusable replies become recorded rejections."""

    name = "llm"

    def __init__(self, backend, model: str = "", temperature: float = 0.7, max_tokens: int = 1024):
        self.backend = backend
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens

    def realise(self, specs: Sequence[APISpec]) -> list[SynthOutcome]:
        from toolkiln.llm.base import ChatRequest
        from toolkiln.llm.parse import extract_json

        reqs = [
            ChatRequest(
                messages=tuple(build_prompt(s)),
                model=self.model,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=s.seed,
                tag=f"api:{s.uid}",
                response_format="json_schema",
                schema=API_REPLY_SCHEMA,
            )
            for s in specs
        ]
        results = self.backend.chat_many(reqs, desc="synthesize_apis (llm)")
        out = []
        for spec, req, res in zip(specs, reqs, results):
            trace = {"request_key": req.key(), "attempts": res.attempts, "cached": res.cached}
            if not res.ok or not res.texts:
                out.append(SynthOutcome(spec, None, f"llm_error: {res.error}", trace))
                continue
            obj, err = extract_json(res.texts[0])
            if err is not None or not isinstance(obj, dict):
                out.append(
                    SynthOutcome(
                        spec, None, f"unparsable: {err or 'not a JSON object'}", {**trace, "text": res.texts[0][:500]}
                    )
                )
                continue
            try:
                api = normalize_api(obj)
            except ValueError as exc:
                out.append(SynthOutcome(spec, None, f"malformed_api: {exc}", {**trace, "text": res.texts[0][:500]}))
                continue
            api.update(domain=spec.domain, category=spec.category, functionalities=list(spec.leaves))
            out.append(SynthOutcome(spec, api, None, trace))
        return out
