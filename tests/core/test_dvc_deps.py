"""A correct cache: every stage lists the project modules it imports and the params it reads.

The derivation (``toolkiln.dagcheck``) reads each stage script named in ``dvc.yaml``, follows
its imports transitively and its ``ctx.params`` reads into the functions they are passed
to. The first test holds the real ``dvc.yaml`` to it; the others show on tiny fixture
repositories that the derivation finds what a stage misses (so the first test can fail).
"""

import textwrap
from pathlib import Path

import yaml

from toolkiln.dagcheck import EXEMPT_PARAMS, check_dvc_yaml
from toolkiln.dvcfile import resolved_stages

# Stage -> deps / params it is known to miss (none today). A miss not listed here fails the test.
KNOWN_MISSES: dict[str, dict[str, set[str]]] = {}


def test_every_stage_lists_the_modules_it_imports_and_the_params_it_reads(repo_root):
    checks = check_dvc_yaml(repo_root)
    stages = resolved_stages(repo_root)  # foreach groups expanded: the round stages are checked per round
    assert set(checks) == {n for n, s in stages.items() if "stages/" in str(s.get("cmd"))}, "a stage was not analysed"
    problems = []
    for name, r in checks.items():
        known = KNOWN_MISSES.get(name, {"deps": set(), "params": set()})
        new_deps = sorted(set(r.missing_deps) - known["deps"])
        new_params = sorted(set(r.missing_params) - known["params"])
        if new_deps or new_params or r.listed_exempt_params:
            problems.append(
                f"{name}: add deps {new_deps}, params {new_params}"
                + (f"; remove {r.listed_exempt_params}" if r.listed_exempt_params else "")
                + "".join(f"\n    {p} read at {r.where.get(p)}" for p in new_params)
            )
    assert not problems, "dvc.yaml misses what stages use (python -m toolkiln.dagcheck):\n" + "\n".join(problems)
    # the derivation is not vacuous on the real repo
    assert "src/toolkiln/callparse.py" in checks["verify"].modules
    assert "src/toolkiln/adapt/report.py" in checks["adnt_dialogs"].modules
    assert {"llm.temperature", "llm.max_tokens"} <= set(checks["synthesize_apis"].params)
    assert "src/toolkiln/itool/mcts.py" in checks["mcts_pairs_round@1"].modules


def test_no_stage_lists_the_runtime_section(repo_root):
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    for name, st in stages.items():
        for p in st.get("params", []) or []:
            keys = [p] if isinstance(p, str) else [k for ks in p.values() for k in ks]
            assert not any(k.split(".")[0] in EXEMPT_PARAMS for k in keys), f"{name} lists {keys}"
    assert "runtime" in yaml.safe_load((repo_root / "params.yaml").read_text())


# ------------------------------------------------------------------ the derivation on fixture repos
def _repo(tmp_path: Path, files: dict[str, str], stage: dict) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": stage}}))
    return tmp_path


# the fixture's "project" package is toolkiln itself (the params schema is the real Params):
# each fixture writes a throwaway toolkiln/ tree under tmp_path/src
BASE = {
    "src/toolkiln/__init__.py": "",
    "src/toolkiln/config.py": """
        from toolkiln.synth.config import SynthConfig
        from toolkiln.adapt.config import ADNTConfig
    """,
    "src/toolkiln/synth/__init__.py": "",
    "src/toolkiln/synth/config.py": "",
    "src/toolkiln/adapt/__init__.py": "",
    "src/toolkiln/adapt/config.py": "",
    "src/toolkiln/stage.py": "from toolkiln.config import Params\nfrom toolkiln.tracking import stage_run\n",
    "src/toolkiln/tracking.py": "",
}


def test_transitive_import_missing_from_deps_is_reported(tmp_path):
    files = {
        **BASE,
        "src/toolkiln/lib.py": "def run(cfg):\n    from toolkiln import helper\n    return helper.go(cfg.n_apis)\n",
        "src/toolkiln/helper.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toolkiln import typing_only\n"
        "def go(n):\n    return n\n",
        "src/toolkiln/typing_only.py": "",
        "stages/s.py": """
                 def main():
                     from toolkiln.stage import stage_context
                     from toolkiln.lib import run
                     with stage_context("s") as ctx:
                         run(ctx.params.synth)
             """,
    }
    stage = {
        "cmd": "python stages/s.py",
        "deps": ["stages/s.py", "src/toolkiln/lib.py", "src/toolkiln/stage.py", "src/toolkiln/config.py"],
        "params": ["synth.n_apis"],
    }
    r = check_dvc_yaml(_repo(tmp_path, files, stage))["s"]
    assert "src/toolkiln/helper.py" in r.missing_deps  # imported inside a function, two hops away
    assert "src/toolkiln/__init__.py" in r.missing_deps  # a package's __init__ runs on import
    assert "src/toolkiln/synth/config.py" in r.missing_deps  # the config module of a section it reads
    assert "src/toolkiln/typing_only.py" not in r.modules  # never executed
    assert "src/toolkiln/adapt/config.py" not in r.modules  # a section it does not read
    assert "src/toolkiln/tracking.py" not in r.missing_deps  # exempt: MLflow only
    assert r.params == ["synth.n_apis"] and not r.missing_params


def test_params_read_through_calls_aliases_and_copies(tmp_path):
    files = {
        **BASE,
        "src/toolkiln/lib.py": """
                 def run(cfg, *, temp):
                     inner = tune(cfg)
                     return inner.max_steps, temp
                 def tune(c):
                     return c.evolution.model_copy(update={"max_steps": 1})
                 def whole(cfg):
                     return cfg.model_dump()
             """,
        "stages/s.py": """
                 def main():
                     from toolkiln.stage import stage_context
                     from toolkiln.lib import run, whole
                     with stage_context("s") as ctx:
                         p = ctx.params
                         run(p.synth, temp=p.llm.temperature)
                         whole(p.adnt.train)
                         ctx.params.runtime.llm.concurrency
             """,
    }
    stage = {"cmd": "python stages/s.py --x", "deps": ["stages/s.py", "src"], "params": ["synth.n_apis", "runtime"]}
    r = check_dvc_yaml(_repo(tmp_path, files, stage))["s"]
    assert r.missing_params == ["adnt.train", "llm.temperature", "synth.evolution.max_steps"]
    assert r.where["synth.evolution.max_steps"] == "src/toolkiln/lib.py:4"  # read where the copy is used
    assert "runtime.llm.concurrency" not in r.params  # exempt: cannot change outputs
    assert r.listed_exempt_params == ["runtime"] and not r.ok
    assert not r.missing_deps  # "src" covers every module


def test_a_config_escaping_the_analysis_counts_as_read_whole(tmp_path):
    files = {
        **BASE,
        "src/toolkiln/lib.py": "class Holder:\n    def __init__(self, cfg):\n        self.cfg = cfg\n",
        "stages/s.py": """
                 import json
                 def main():
                     from toolkiln.stage import stage_context
                     from toolkiln.lib import Holder
                     with stage_context("s") as ctx:
                         Holder(ctx.params.dialogs)
                         json.dumps(ctx.params.verify.rules)
             """,
    }
    stage = {"cmd": "python stages/s.py", "deps": ["stages", "src"], "params": ["dialogs.n_dialogs"]}
    r = check_dvc_yaml(_repo(tmp_path, files, stage))["s"]
    assert r.missing_params == ["dialogs", "verify.rules"]
