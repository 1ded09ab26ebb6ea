"""What each DVC stage really depends on, derived from its code, compared with ``dvc.yaml``.

DVC's cache is only as correct as the ``deps`` and ``params`` a stage lists: an edit to a
module the stage imports but does not list, or to a params key it reads but does not list,
leaves its outputs stale while ``dvc status`` calls them fresh. This module derives, by
static analysis of the stage script named in each stage's ``cmd``:

* **modules** — every project file the script imports, transitively (imports inside
  functions included, ``if TYPE_CHECKING:`` blocks excluded, each package's
  ``__init__.py`` included). ``toolkiln.config`` aggregates every section's config
  module; those are followed only for the sections the stage reads, because a section
  the stage never reads cannot change its outputs.
* **params** — every ``params.yaml`` key the stage reads: attribute chains rooted at
  ``ctx.params`` (through aliases such as ``p = ctx.params``), followed into project
  functions the config objects are passed to, down to the deepest key actually used.
  Wherever a config object escapes the analysis (stored on an object, passed to a third
  party, a method called on it) the whole subtree counts as read: the derivation may
  over-state what a stage reads, never under-state it.

Two things are exempt, each for a stated reason (:data:`EXEMPT_PARAMS`,
:data:`EXEMPT_MODULES`): the ``runtime`` section (how fast or where work runs, never
what it produces) and MLflow tracking (a side channel no DVC output depends on).

``python -m toolkiln.dagcheck [dvc.yaml]`` prints what each stage misses; exit 1 if any.
"""

from __future__ import annotations

import ast
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path


# params.yaml roots no stage needs to list, and why
EXEMPT_PARAMS: dict[str, str] = {
    "runtime": "how fast or where the work runs (concurrency, timeouts, retries, cache folder), never what it produces",
    "tracking": "where MLflow logs go; no DVC output depends on it",
}
# project modules no stage needs to list, and why
EXEMPT_MODULES: dict[str, str] = {
    "src/toolkiln/tracking.py": "MLflow logging only; it writes no DVC output",
}

_CTX = ("<ctx>",)  # the stage_context object; ``ctx.params`` is the params root ()
_CONFIG_MODULE = "toolkiln.config"
Path_ = tuple[str, ...]


# --------------------------------------------------------------------------- params schema
def _model_of(annotation):
    """The pydantic Section class behind an annotation, or None for a leaf value."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # Optional[Section] and the like
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def _model_at(path: Path_):
    from toolkiln.config import Params

    model = Params
    for key in path:
        if model is None or key not in model.model_fields:
            return None
        model = _model_of(model.model_fields[key].annotation)
    return model


def _is_field(path: Path_, attr: str) -> bool:
    model = _model_at(path)
    return model is not None and attr in model.model_fields


def section_modules() -> dict[str, str]:
    """params.yaml section -> the module defining its config class."""
    from toolkiln.config import Params

    out = {}
    for name, f in Params.model_fields.items():
        m = _model_of(f.annotation)
        if m is not None:
            out[name] = m.__module__
    return out


# --------------------------------------------------------------------------- module index
class ModuleIndex:
    """Project modules under ``src/`` (plus stage scripts), parsed once each."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.src = repo / "src"
        self._trees: dict[str, ast.Module] = {}
        self._files: dict[str, Path] = {}

    def file(self, mod: str) -> Path | None:
        if mod in self._files:
            return self._files[mod]
        base = self.src.joinpath(*mod.split("."))
        for cand in (base.with_suffix(".py"), base / "__init__.py"):
            if cand.is_file():
                self._files[mod] = cand
                return cand
        return None

    def add_script(self, name: str, path: Path) -> None:
        self._files[name] = path

    def is_package(self, mod: str) -> bool:
        f = self.file(mod)
        return f is not None and f.name == "__init__.py"

    def tree(self, mod: str) -> ast.Module:
        if mod not in self._trees:
            self._trees[mod] = ast.parse(self.file(mod).read_text(), filename=str(self.file(mod)))
        return self._trees[mod]

    def rel(self, mod: str) -> str:
        return self.file(mod).relative_to(self.repo).as_posix()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside ``if TYPE_CHECKING:`` bodies (never executed)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    skip |= {id(n) for n in ast.walk(stmt)}
    return skip


def _abs_module(index: ModuleIndex, mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    pkg = mod if index.is_package(mod) else mod.rpartition(".")[0]
    for _ in range(node.level - 1):
        pkg = pkg.rpartition(".")[0]
    return f"{pkg}.{node.module}" if node.module else pkg


def _imports(index: ModuleIndex, mod: str, drop: set[str] = frozenset()) -> set[str]:
    """Project modules ``mod`` imports anywhere (functions included, TYPE_CHECKING excluded), less ``drop``."""
    tree = index.tree(mod)
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _abs_module(index, mod, node)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if index.file(f"{base}.{a.name}")}
    out = set()
    for name in found - set(drop):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            if index.file(".".join(parts[:i])):
                out.add(".".join(parts[:i]))
    return out


def module_closure(index: ModuleIndex, script: str, read_sections: set[str]) -> set[str]:
    sect = section_modules()
    wanted_cfg = {sect[s] for s in read_sections if s in sect}
    all_cfg = set(sect.values())
    todo, seen = [script], {script}
    while todo:
        mod = todo.pop()
        if mod == _CONFIG_MODULE:
            deps = _imports(index, mod, drop=all_cfg - wanted_cfg)
        else:
            deps = _imports(index, mod)
        for d in deps - seen:
            seen.add(d)
            todo.append(d)
    return seen


# --------------------------------------------------------------------------- params reads
@dataclass
class _Func:
    module: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    skip_first: bool  # methods: self / cls


class ParamReads:
    """Interprocedural, flow-insensitive analysis of which params keys a stage reads."""

    MAX_DEPTH = 12

    def __init__(self, index: ModuleIndex):
        self.index = index
        self._memo: dict[tuple, tuple] = {}
        self._ns: dict[str, dict[str, tuple]] = {}
        self._stack: set[tuple] = set()

    # name resolution ---------------------------------------------------------
    def _namespace(self, mod: str) -> dict[str, tuple]:
        """Names bound in ``mod``: ('def', node) / ('class', node) / ('module', name) / ('from', module, name)."""
        if mod in self._ns:
            return self._ns[mod]
        ns: dict[str, tuple] = self._ns.setdefault(mod, {})
        tree = self.index.tree(mod)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                ns[node.name] = ("def", node)
            elif isinstance(node, ast.ClassDef):
                ns[node.name] = ("class", node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        ns.setdefault(a.asname, ("module", a.name))
                    else:
                        ns.setdefault(a.name.split(".")[0], ("module", a.name.split(".")[0]))
            elif isinstance(node, ast.ImportFrom):
                base = _abs_module(self.index, mod, node)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    ns.setdefault(
                        a.asname or a.name, ("module", sub) if self.index.file(sub) else ("from", base, a.name)
                    )
        return ns

    def _lookup(self, mod: str, name: str, depth: int = 0):
        if depth > 8 or not self.index.file(mod):
            return None
        b = self._namespace(mod).get(name)
        if b is None:
            return None
        if b[0] in ("def", "class"):
            return (mod, b[0], b[1])
        if b[0] == "module":
            return (b[1], "module", None) if self.index.file(b[1]) else None
        return self._lookup(b[1], b[2], depth + 1)

    def _callee(self, mod: str, func: ast.expr) -> _Func | None:
        target = None
        if isinstance(func, ast.Name):
            target = self._lookup(mod, func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = self._lookup(mod, func.value.id)
            if owner and owner[1] == "module":
                target = self._lookup(owner[0], func.attr)
            elif owner and owner[1] == "class":  # Cls.classmethod(...) / Cls.staticmethod(...)
                for item in owner[2].body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == func.attr:
                        decos = {d.id for d in item.decorator_list if isinstance(d, ast.Name)}
                        return _Func(owner[0], item, skip_first="staticmethod" not in decos)
                return None
        if target is None:
            return None
        if target[1] == "def":
            return _Func(target[0], target[2], skip_first=False)
        if target[1] == "class":
            for item in target[2].body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return _Func(target[0], item, skip_first=True)
        return None  # a dataclass / pydantic model / unknown: the caller counts the argument as read whole

    # the analysis --------------------------------------------------------------
    def stage(self, script_mod: str) -> dict[Path_, str]:
        """Params paths the stage reads -> where (``file:line``) the first such read was found."""
        return self._analyse(script_mod, self.index.tree(script_mod), {"ctx": _CTX}, 0)[0]

    def _call(self, fn: _Func, bindings: dict[str, Path_], depth: int) -> tuple[dict[Path_, str], Path_ | None]:
        """What calling ``fn`` with params objects bound to some arguments reads, and the params path it
        returns (``return cfg.model_copy(...)``), if any."""
        key = (fn.module, fn.node.lineno, fn.node.name, tuple(sorted(bindings.items())))
        if key in self._memo:
            return self._memo[key]
        if key in self._stack or depth > self.MAX_DEPTH:
            return {p: f"{self.index.rel(fn.module)}:{fn.node.lineno}" for p in bindings.values()}, None  # conservative
        self._stack.add(key)
        try:
            out = self._analyse(fn.module, fn.node, bindings, depth + 1)
        finally:
            self._stack.discard(key)
        self._memo[key] = out
        return out

    def _analyse(
        self, mod: str, scope: ast.AST, env: dict[str, Path_], depth: int
    ) -> tuple[dict[Path_, str], Path_ | None]:
        env = dict(env)
        parents = {}
        for node in ast.walk(scope):
            for child in ast.iter_child_nodes(node):
                parents[child] = node

        def resolve(node) -> Path_ | None:
            if isinstance(node, ast.Name):
                return env.get(node.id)
            if isinstance(node, ast.Attribute):
                base = resolve(node.value)
                if base is None:
                    return None
                if base == _CTX:
                    return () if node.attr == "params" else None
                return base + (node.attr,) if _is_field(base, node.attr) else None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "model_copy":
                # a copy with some fields replaced: everything else still comes from params
                base = resolve(node.func.value)
                return base if base not in (None, _CTX) else None
            if isinstance(node, ast.Call):  # a project function returning (part of) a params object it was given
                fn = self._callee(mod, node.func)
                if fn is None:
                    return None
                bindings = {}
                for a in node.args:
                    pa = resolve(a)
                    name = _param_name(fn, node, a, None) if pa not in (None, _CTX) else None
                    if name:
                        bindings[name] = pa
                for k in node.keywords:
                    pa = resolve(k.value)
                    name = _param_name(fn, node, k.value, k.arg) if pa not in (None, _CTX) and k.arg else None
                    if name:
                        bindings[name] = pa
                return self._call(fn, bindings, depth)[1] if bindings else None
            return None

        def dumped(call: ast.Call, base: Path_) -> list[Path_] | None:
            """``cfg.model_dump[_json](include=/exclude={literal keys})``: exactly those fields."""
            model = _model_at(base)
            if model is None:
                return None
            keys = list(model.model_fields)
            if not any(kw.arg in ("include", "exclude") for kw in call.keywords):
                return None  # everything: read it whole
            for kw in call.keywords:
                if kw.arg in ("include", "exclude"):
                    try:
                        lit = set(ast.literal_eval(kw.value))
                    except (ValueError, TypeError, SyntaxError):
                        return None
                    keys = [k for k in keys if (k in lit) == (kw.arg == "include")]
            return [base + (k,) for k in keys]

        # aliases: ``x = <params expression>`` (to a fixpoint; conflicting aliases keep the shorter common prefix)
        changed = True
        while changed:
            changed = False
            for node in ast.walk(scope):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    p = resolve(node.value)
                    if p is None:
                        continue
                    for t in targets:
                        if isinstance(t, ast.Name) and env.get(t.id) != p:
                            old = env.get(t.id)
                            new = p if old is None else _common(old, p)
                            if new != old:
                                env[t.id] = new
                                changed = True

        reads: dict[Path_, str] = {}
        ret: Path_ | None = None
        where = self.index.rel(mod)

        def add(p: Path_, node: ast.AST) -> None:
            reads.setdefault(p, f"{where}:{node.lineno}")

        for node in ast.walk(scope):
            if not isinstance(node, (ast.Name, ast.Attribute, ast.Call)):
                continue
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                continue
            p = resolve(node)
            if p is None:
                continue
            par = parents.get(node)
            if isinstance(par, ast.Attribute) and par.value is node:
                if p == _CTX or _is_field(p, par.attr):
                    continue  # the longer chain is handled at the parent
                if par.attr == "model_copy":
                    continue  # resolved as an alias of ``p`` at the call
                call = parents.get(par)
                if par.attr in ("model_dump", "model_dump_json") and isinstance(call, ast.Call) and call.func is par:
                    fields = dumped(call, p)
                    if fields is not None:
                        for f in fields:
                            add(f, node)
                        continue
                add(p, node)  # a method or property of a config object: read it whole
                continue
            if p == _CTX:
                continue  # ctx.run / ctx.log: not params
            if isinstance(par, ast.Return):
                ret = p if ret is None else _common(ret, p)
                continue  # read where the caller uses it
            if isinstance(par, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and par.value is node:
                targets = par.targets if isinstance(par, ast.Assign) else [par.target]
                if all(isinstance(t, ast.Name) for t in targets):
                    continue  # an alias, analysed through its uses
            call, kw = None, None
            if isinstance(par, ast.Call) and node in par.args:
                call = par
            elif isinstance(par, ast.keyword) and isinstance(parents.get(par), ast.Call):
                call, kw = parents[par], par.arg
            if call is not None:
                fn = self._callee(mod, call.func)
                pname = _param_name(fn, call, node, kw) if fn is not None else None
                if pname is not None:
                    for k, v in self._call(fn, {pname: p}, depth)[0].items():
                        reads.setdefault(k, v)
                    continue
            add(p, node)
        return reads, ret


def _common(a: Path_, b: Path_) -> Path_:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _param_name(fn: _Func, call: ast.Call, arg: ast.expr, kw: str | None) -> str | None:
    a = fn.node.args
    positional = [x.arg for x in a.posonlyargs + a.args]
    if fn.skip_first:
        positional = positional[1:]
    if kw is not None:
        names = positional + [x.arg for x in a.kwonlyargs]
        return kw if kw in names else None
    i = call.args.index(arg)
    if any(isinstance(x, ast.Starred) for x in call.args[:i]):
        return None
    return positional[i] if i < len(positional) else None


# --------------------------------------------------------------------------- dvc.yaml
@dataclass
class StageCheck:
    stage: str
    script: str
    modules: list[str]  # repo-relative files the stage imports (exemptions removed)
    params: list[str]  # dotted keys the stage reads (exemptions removed)
    where: dict[str, str] = field(default_factory=dict)  # key -> file:line of a read
    missing_deps: list[str] = field(default_factory=list)
    missing_params: list[str] = field(default_factory=list)
    listed_exempt_params: list[str] = field(default_factory=list)  # e.g. a stage listing ``runtime``

    @property
    def ok(self) -> bool:
        return not (self.missing_deps or self.missing_params or self.listed_exempt_params)


_SCRIPT = re.compile(r"\bpython3?\s+(stages/[\w/]+\.py)\b")


def listed_params(stage: dict) -> list[str]:
    out = []
    for p in stage.get("params", []) or []:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, dict):
            for f, keys in p.items():
                if f in ("params.yaml",):
                    out += list(keys or [])
    return out


def listed_deps(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", []) or []]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in deps)


def check_stage(repo: Path, name: str, stage: dict, index: ModuleIndex | None = None) -> StageCheck | None:
    m = _SCRIPT.search(stage.get("cmd", "") if isinstance(stage.get("cmd"), str) else " ".join(stage.get("cmd", [])))
    if not m:
        return None
    index = index or ModuleIndex(repo)
    script_mod = f"__stage__.{name}"
    index.add_script(script_mod, repo / m.group(1))
    reads = ParamReads(index).stage(script_mod)
    keys = sorted({".".join(p) for p in reads if p})
    where = {".".join(p) or "<all params>": w for p, w in reads.items()}
    if () in reads:
        keys = ["<all params>"]
    sections = {p[0] for p in reads if p} | (set(section_modules()) if () in reads else set())
    mods = module_closure(index, script_mod, sections)
    files = sorted({index.rel(mo) for mo in mods} - set(EXEMPT_MODULES))
    params_kept = [k for k in keys if k.split(".")[0] not in EXEMPT_PARAMS]
    deps, listed = listed_deps(stage), listed_params(stage)
    res = StageCheck(name, m.group(1), files, params_kept, where)
    res.missing_deps = [f for f in files if not _covered(f, deps)]
    for k in params_kept:
        if k == "<all params>":
            res.missing_params.append(k)
        elif not any(k == lp or k.startswith(lp + ".") for lp in listed):
            res.missing_params.append(k)
    res.listed_exempt_params = [lp for lp in listed if lp.split(".")[0] in EXEMPT_PARAMS]
    return res


def check_dvc_yaml(repo: str | Path = ".", dvc_yaml: str = "dvc.yaml") -> dict[str, StageCheck]:
    from toolkiln.dvcfile import resolved_stages

    repo = Path(repo).resolve()
    stages = resolved_stages(repo, dvc_yaml)  # the round stages are foreach templates in the raw file
    index = ModuleIndex(repo)
    out = {}
    for name, st in stages.items():
        r = check_stage(repo, name, st, index)
        if r is not None:
            out[name] = r
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m toolkiln.dagcheck", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repo", default=".")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print each stage's derived modules and params")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.repo).resolve() / "src"))
    bad = 0
    for name, r in check_dvc_yaml(args.repo).items():
        status = "ok" if r.ok else "MISSING"
        print(f"{name} ({r.script}): {status}")
        if args.verbose:
            print("  modules:", ", ".join(r.modules))
            print("  params: ", ", ".join(r.params))
        for d in r.missing_deps:
            print(f"  deps:   + {d}")
        for p in r.missing_params:
            print(f"  params: + {p}  (read at {r.where.get(p, '?')})")
        for p in r.listed_exempt_params:
            print(f"  params: - {p} (exempt: {EXEMPT_PARAMS[p.split('.')[0]]})")
        bad += not r.ok
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
