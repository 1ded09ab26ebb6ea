"""Our parser + matcher vs bfcl-eval's official decoder + checker on the packaged BFCL v4 data.

A deterministic sample per category (the full run is bench/bfcl_agreement.py). Select with
``pytest -m bfcl_agreement``.
"""

from __future__ import annotations

import copy
import sys

import pytest

pytest.importorskip("bfcl_eval")

from toolkiln.evaluate import bfcl  # noqa: E402
from toolkiln.evaluate.agreement import INTENTIONAL, run_agreement  # noqa: E402
from toolkiln.evaluate.oracle import load_oracle  # noqa: E402

pytestmark = pytest.mark.bfcl_agreement
SAMPLE = 40


@pytest.fixture(scope="module")
def oracle():
    return load_oracle()


@pytest.mark.parametrize("category", bfcl.SUPPORTED_CATEGORIES)
def test_verdicts_agree_or_differ_only_by_design(oracle, category):
    entries = bfcl.load_category(category, limit=SAMPLE, seed=0)
    reports = run_agreement(entries, oracle, modes=("structured", "text"))
    structured, text = reports["structured"][category], reports["text"][category]
    assert structured.entries == len(entries)
    # Checker vs checker: every verdict equal, and both verdicts occur (the comparison is not vacuous).
    assert structured.agree == structured.cases, structured.as_dict()["differences"]
    assert 0 < structured.official_correct < structured.cases
    # Decoder + checker vs parser + matcher: differences only where documented as intentional.
    undocumented = [d for d in text.differences if d["perturbation"] not in INTENTIONAL]
    assert not undocumented, undocumented[:3]


def test_intentional_differences_go_the_documented_way(oracle):
    entry = next(e for e in bfcl.load_category("simple_python") if e["id"] == "simple_python_1")  # math.factorial(number=5)
    reports = run_agreement([entry], oracle, modes=("text",))
    diffs = {d["perturbation"]: d for d in reports["text"]["simple_python"].differences}
    assert "arithmetic" in diffs  # number=4+1: BFCL eval()s it to 5, we refuse
    assert diffs["arithmetic"]["official"]["correct"] and not diffs["arithmetic"]["ours"]["correct"]
    assert diffs["arithmetic"]["ours"]["error_type"] == "unparsable"


def test_system_prompt_is_bfcls(oracle):
    utils = sys.modules["bfcl_eval.model_handler.utils"]
    from bfcl_eval.constants.default_prompts import DEFAULT_SYSTEM_PROMPT_FORMAT

    for category in ("simple_python", "live_multiple"):
        for entry in bfcl.load_category(category, limit=3, seed=1):
            assert bfcl.system_prompt(entry["function"]) == utils.formulate_system_prompt(
                DEFAULT_SYSTEM_PROMPT_FORMAT, entry["function"])
            theirs = utils.system_prompt_pre_processing_chat_model(copy.deepcopy(entry["question"][0]),
                                                                   entry["function"], entry["id"])
            assert bfcl.prompt_messages(entry) == theirs


def test_entry_with_own_system_message_keeps_it_after_bfcls():
    entry = next(e for c in ("live_simple", "live_multiple") for e in bfcl.load_category(c)
                 if e["question"][0][0]["role"] == "system")
    msgs = bfcl.prompt_messages(entry)
    assert msgs[0]["role"] == "system" and msgs[0]["content"].startswith("You are an expert in composing functions.")
    assert msgs[0]["content"].endswith(entry["question"][0][0]["content"])
    assert sum(m["role"] == "system" for m in msgs) == 1


def test_oracle_stand_ins_do_not_leak(oracle):
    for name in ("bfcl_eval.constants.model_config", "bfcl_eval.model_handler.parser.java_parser"):
        mod = sys.modules.get(name)
        assert mod is None or getattr(mod, "__file__", None), f"stand-in {name} left in sys.modules"


def test_categories_and_sampling():
    assert len(bfcl.load_category("simple_python")) == 400
    a, b = bfcl.load_category("parallel", limit=5, seed=3), bfcl.load_category("parallel", limit=5, seed=3)
    assert [e["id"] for e in a] == [e["id"] for e in b] and len(a) == 5
    assert [e["id"] for e in bfcl.load_category("parallel", limit=5, seed=4)] != [e["id"] for e in a]
    with pytest.raises(ValueError, match="simple_java"):
        bfcl.load_category("simple_java")
