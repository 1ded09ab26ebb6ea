"""The API pool as the dialog planner needs it (ToolACE arXiv 2409.00920 §3.2).

Parses every canonical API once (``toolkiln.schema.api_to_dict``), caches its JSON
for the ``tools`` column, groups APIs by domain and category for same-domain
distractors, and indexes *dependencies*: pairs (A, B) where a field of A's result
can feed a required parameter of B (``search_events -> results[0].id`` feeds
``get_event_details(event_id=...)``; a ``user_id`` field feeds a ``user_id``
parameter), so dependent dialogs chain calls that really compose.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from toolkiln.dialogs.surface import functionality
from toolkiln.dialogs.values import singular
from toolkiln.schema import api_to_dict
from toolkiln.argcheck import compile_parameters, json_type

_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass
class APIInfo:
    idx: int
    name: str
    api: dict
    json: str
    domain: str
    category: str
    leaves: frozenset
    props: dict
    required: list[str]
    optional: list[str]
    intent: str
    checker: Any = None

    def check(self, arguments: dict) -> list[tuple[str, str]]:
        if self.checker is None:
            self.checker = compile_parameters(self.name, self.api.get("parameters"))
        return self.checker(arguments)


@dataclass
class LinkSlot:
    """Required parameter ``param`` of API ``b`` can be fed by any (a, path, field schema) in ``sources``."""

    b: int
    param: str
    sources: list = field(default_factory=list)


def _return_fields(returns: Any) -> list[tuple[str, str, dict]]:
    """(field name, path, schema) of scalar fields at the top level and in the first item of top-level arrays."""
    out = []
    props = returns.get("properties") if isinstance(returns, dict) else None
    if not isinstance(props, dict):
        return out
    for k, s in props.items():
        if not isinstance(s, dict):
            continue
        t = json_type(s)
        if t in ("string", "integer"):
            out.append((k, k, s))
        elif t == "array" and isinstance(s.get("items"), dict) and isinstance(s["items"].get("properties"), dict):
            for k2, s2 in s["items"]["properties"].items():
                if isinstance(s2, dict) and json_type(s2) in ("string", "integer"):
                    out.append((k2, f"{k}[0].{k2}", s2))
    return out


class APIPool:
    """Indexed canonical APIs (the rows of ``data/api_pool.parquet``)."""

    def __init__(self, apis: list[dict]):
        if not apis:
            raise ValueError("API pool is empty: dialog generation needs at least one API")
        self.apis: list[APIInfo] = []
        seen: set[str] = set()
        for i, a in enumerate(apis):
            name = a.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"API pool row {i}: missing name")
            if name in seen:
                raise ValueError(f"API pool row {i}: duplicate API name {name!r}")
            seen.add(name)
            params = a.get("parameters") if isinstance(a.get("parameters"), dict) else {}
            props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
            req = [r for r in params.get("required") or [] if r in props]
            self.apis.append(APIInfo(
                idx=i, name=name, api=a, json=json.dumps(a, ensure_ascii=False), domain=a.get("domain") or "general",
                category=a.get("category") or "", leaves=frozenset(a.get("functionalities") or [a.get("description", "")]),
                props=props, required=req, optional=[k for k in props if k not in req], intent=functionality(a)))
        self.by_name = {a.name: a for a in self.apis}
        self.by_domain: dict[str, list[int]] = {}
        self.by_category: dict[tuple[str, str], list[int]] = {}
        for a in self.apis:
            self.by_domain.setdefault(a.domain, []).append(a.idx)
            self.by_category.setdefault((a.domain, a.category), []).append(a.idx)
        self.domains = sorted(self.by_domain)
        self.link_slots = self._index_links()

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> "APIPool":
        missing = [c for c in ("name", "description", "parameters", "returns") if c not in df.columns]
        if missing:
            raise ValueError(f"API pool: missing columns {missing}; expected the toolkiln.schema.API_SCHEMA columns")
        apis = []
        for i, row in enumerate(df.iter_rows(named=True)):
            try:
                apis.append(api_to_dict(row))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"API pool row {i} ({row.get('name')!r}): unreadable JSON column ({exc})") from None
        return cls(apis)

    def __len__(self) -> int:
        return len(self.apis)

    # -------------------------------------------------------------- dependencies
    def _index_links(self) -> list[LinkSlot]:
        by_field: dict[tuple[str, str], list] = {}
        ids_by_token: dict[tuple[str, str], list] = {}
        for a in self.apis:
            # The API's own name says what its result's "id" identifies (search_flights -> flight).
            tokens = {singular(t) for t in _TOKEN.findall(a.name.lower())}
            for fname, path, s in _return_fields(a.api.get("returns")):
                by_field.setdefault((a.domain, fname), []).append((a.idx, path, s))
                if fname == "id":
                    for t in tokens:
                        ids_by_token.setdefault((a.domain, t), []).append((a.idx, path, s))
        slots = []
        for b in self.apis:
            for p in b.required:
                s = b.props[p]
                if not isinstance(s, dict) or json_type(s) not in ("string", "integer") or "enum" in s:
                    continue
                # A namesake of b (same base name, another namespace) is a near-duplicate, not a first step.
                base = b.name.split(".")[-1]
                ok = lambda x: x[0] != b.idx and self.apis[x[0]].name.split(".")[-1] != base  # noqa: B023 (used in this iteration only)
                sources = [x for x in by_field.get((b.domain, p), []) if ok(x)]
                if p.endswith("_id"):
                    stem = singular(p[:-3].split("_")[-1])
                    sources += [x for x in ids_by_token.get((b.domain, stem), []) if ok(x)]
                if p.endswith("_url"):
                    sources += [x for x in by_field.get((b.domain, "url"), []) if ok(x)]
                if sources:
                    slots.append(LinkSlot(b.idx, p, sources))
        return slots

    # -------------------------------------------------------------- sampling
    def distractors(self, gold: list[int], k: int, rng: random.Random, same_category: float,
                    exclude_leaves: frozenset = frozenset()) -> list[int]:
        """Up to ``k`` same-domain APIs that are not gold and share no functionality with the gold APIs."""
        if k <= 0 or not gold:
            return []
        g0 = self.apis[gold[0]]
        banned = set(gold)
        leaves = set(exclude_leaves)
        for g in gold:
            leaves |= self.apis[g].leaves
        names = {self.apis[g].name.split(".")[-1] for g in gold}
        cat = self.by_category.get((g0.domain, g0.category), [])
        dom = self.by_domain.get(g0.domain, [])
        out: list[int] = []
        for _ in range(k * 6):
            if len(out) >= k:
                break
            src = cat if (rng.random() < same_category and len(cat) > len(gold)) else dom
            c = src[rng.randrange(len(src))]
            a = self.apis[c]
            if c in banned or a.leaves & leaves or a.name.split(".")[-1] in names:
                continue
            banned.add(c)
            out.append(c)
        return out
