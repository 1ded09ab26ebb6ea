"""The API context tree: domains -> coarse categories -> fine-grained functionalities.

ToolACE §3.1 ("speciation") builds a hierarchical API context tree from API
documentation; its tree has ~30 domains, 390 coarse categories and ~3,400
fine-grained functionalities. Ours is versioned data: one YAML file per domain in
``data/api_context_tree/``. An LLM backend may grow it (new leaves are appended to
the same files), so the loader is strict: any malformed file is an error naming
the file and the key, before synthesis starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class TreeError(ValueError):
    """A tree file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Category:
    name: str
    slug: str
    functionalities: tuple[str, ...]


@dataclass(frozen=True)
class Domain:
    name: str
    slug: str
    description: str
    categories: tuple[Category, ...]


@dataclass
class ContextTree:
    domains: tuple[Domain, ...]
    _by_slug: dict[str, Domain] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_slug = {d.slug: d for d in self.domains}

    def domain(self, slug: str) -> Domain:
        return self._by_slug[slug]

    @property
    def n_categories(self) -> int:
        return sum(len(d.categories) for d in self.domains)

    @property
    def n_functionalities(self) -> int:
        return sum(len(c.functionalities) for d in self.domains for c in d.categories)

    def only(self, slugs: list[str] | tuple[str, ...]) -> "ContextTree":
        """The tree cut to the domains ``slugs`` names (all of it when empty); an unknown slug is an error
        naming the known ones."""
        if not slugs:
            return self
        unknown = [s for s in slugs if s not in self._by_slug]
        if unknown:
            raise TreeError(f"synth.domains: unknown domain slugs {unknown}; the tree has {sorted(self._by_slug)}")
        keep = set(slugs)
        return ContextTree(tuple(d for d in self.domains if d.slug in keep))

    def stats(self) -> dict[str, int]:
        return {
            "domains": len(self.domains),
            "categories": self.n_categories,
            "functionalities": self.n_functionalities,
        }


def _req(mapping: dict, key: str, kind: type, where: str):
    if key not in mapping:
        raise TreeError(f"{where}: missing key '{key}'")
    val = mapping[key]
    if not isinstance(val, kind):
        raise TreeError(f"{where}.{key}: expected {kind.__name__}, got {type(val).__name__} {val!r:.60}")
    return val


def parse_domain(data: object, where: str) -> Domain:
    if not isinstance(data, dict):
        raise TreeError(
            f"{where}: expected a mapping with domain/slug/description/categories, got {type(data).__name__}"
        )
    unknown = set(data) - {"domain", "slug", "description", "categories"}
    if unknown:
        raise TreeError(f"{where}: unknown keys {sorted(unknown)}")
    name = _req(data, "domain", str, where)
    slug = _req(data, "slug", str, where)
    if not SLUG_RE.match(slug):
        raise TreeError(f"{where}.slug: {slug!r} is not a lowercase snake_case identifier")
    desc = data.get("description", "")
    cats_raw = _req(data, "categories", list, where)
    if not cats_raw:
        raise TreeError(f"{where}.categories: empty")
    cats, seen = [], set()
    for i, c in enumerate(cats_raw):
        cw = f"{where}.categories[{i}]"
        if not isinstance(c, dict):
            raise TreeError(f"{cw}: expected a mapping, got {type(c).__name__}")
        unknown = set(c) - {"name", "slug", "functionalities"}
        if unknown:
            raise TreeError(f"{cw}: unknown keys {sorted(unknown)}")
        cslug = _req(c, "slug", str, cw)
        if not SLUG_RE.match(cslug):
            raise TreeError(f"{cw}.slug: {cslug!r} is not a lowercase snake_case identifier")
        if cslug in seen:
            raise TreeError(f"{cw}.slug: duplicate category slug {cslug!r}")
        seen.add(cslug)
        leaves = _req(c, "functionalities", list, cw)
        bad = [j for j, f in enumerate(leaves) if not isinstance(f, str) or not f.strip()]
        if bad or not leaves:
            raise TreeError(
                f"{cw}.functionalities: must be a non-empty list of non-empty strings (bad items {bad[:5]})"
            )
        cats.append(Category(_req(c, "name", str, cw), cslug, tuple(f.strip() for f in leaves)))
    return Domain(name, slug, desc if isinstance(desc, str) else "", tuple(cats))


def load_tree(folder: str | Path) -> ContextTree:
    """Load every ``*.yaml`` in ``folder`` (sorted, so the tree is deterministic)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise TreeError(f"{folder}: no *.yaml domain files")
    domains, seen = [], {}
    for f in files:
        try:
            data = yaml.load(f.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise TreeError(f"{f}: invalid YAML: {exc}") from None
        d = parse_domain(data, str(f))
        if d.slug in seen:
            raise TreeError(f"{f}: domain slug {d.slug!r} already defined in {seen[d.slug]}")
        seen[d.slug] = f
        domains.append(d)
    return ContextTree(tuple(domains))
