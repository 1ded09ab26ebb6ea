"""BFCL v4 single-turn categories from the ``bfcl-eval`` package, and BFCL's prompt (docs/architecture.md#evaluation).

The package ships each category as ``bfcl_eval/data/BFCL_v4_<category>.json``
and its ground truth as ``data/possible_answer/BFCL_v4_<category>.json`` (JSON
Lines despite the extension). An entry has ``question`` (turns, each a list of
chat messages; one turn in the single-turn categories), ``function`` (the docs
offered) and, except for (ir)relevance, ``ground_truth`` —
``[{func_name: {param: [accepted values]}}]``, where ``""`` among the values
marks an optional parameter.

Prompt-based (non-FC) models get BFCL's default system prompt
(``ret_fmt=python&tool_call_tag=False&func_doc_fmt=json&prompt_fmt=plaintext&style=classic``)
with the function docs as indented JSON; the text is assembled from the
templates in ``bfcl_eval.constants.default_prompts`` (imported, not copied), and
when the question has its own system message BFCL's prompt goes first.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from importlib import resources
from pathlib import Path

from toolkiln.evaluate.config import BFCL_CATEGORIES

# Categories whose items the AST matcher (or the relevance rule) scores; Java/JS need
# tree-sitter decoding and source-string type conversion, which are out of scope (see bench/bfcl_agreement.py).
SUPPORTED_CATEGORIES = BFCL_CATEGORIES
AST_CATEGORIES = tuple(c for c in BFCL_CATEGORIES if "relevance" not in c)
RELEVANCE_CATEGORIES = tuple(c for c in BFCL_CATEGORIES if "relevance" in c)


def data_dir() -> Path:
    try:
        root = resources.files("bfcl_eval")
    except ModuleNotFoundError:
        raise RuntimeError("BFCL data needs the bfcl-eval package: `pip install --no-deps bfcl-eval==2026.3.23`") from None
    return Path(str(root)) / "data"


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
    return rows


@lru_cache(maxsize=32)
def _load(category: str) -> tuple[dict, ...]:
    if category not in SUPPORTED_CATEGORIES:
        raise ValueError(f"BFCL category {category!r}: expected one of {', '.join(SUPPORTED_CATEGORIES)} "
                         "(single-turn Python AST and relevance categories)")
    d = data_dir()
    questions = _read_jsonl(d / f"BFCL_v4_{category}.json")
    answers = {}
    if category in AST_CATEGORIES:
        answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(d / "possible_answer" / f"BFCL_v4_{category}.json")}
    out = []
    for q in questions:
        if category in AST_CATEGORIES and q["id"] not in answers:
            raise ValueError(f"BFCL {category}: entry {q['id']} has no possible answer")
        out.append({"id": q["id"], "category": category, "question": q["question"], "function": q["function"],
                    "ground_truth": answers.get(q["id"], [])})
    return tuple(out)


def load_category(category: str, limit: int = 0, seed: int = 0) -> list[dict]:
    """Entries of one category; ``limit > 0`` takes a seeded sample of that size (in file order)."""
    entries = list(_load(category))
    if 0 < limit < len(entries):
        keep = sorted(random.Random(f"{seed}:{category}").sample(range(len(entries)), limit))
        entries = [entries[i] for i in keep]
    return [json.loads(json.dumps(e)) for e in entries]  # callers may mutate; the cache stays pristine


def system_prompt(functions: list[dict]) -> str:
    """BFCL's default system prompt for prompt-based models, with ``functions`` as indented JSON."""
    from bfcl_eval.constants import default_prompts as P

    style = P.PROMPT_STYLE_TEMPLATES["classic"]
    return P.PROMPT_TEMPLATE_MAPPING["plaintext"].format(
        persona=style["persona"],
        task=style["task"],
        tool_call_format=style["tool_call_no_tag"].format(output_format=P.OUTPUT_FORMAT_MAPPING["python"],
                                                          param_types=P.PARAM_TYPE_MAPPING["python"]),
        multiturn_behavior=style["multiturn_behavior"],
        available_tools=style["available_tools"].format(format="json", functions=json.dumps(functions, indent=4)),
    )


def prompt_messages(entry: dict) -> list[dict]:
    """Chat messages for a single-turn entry: BFCL's system prompt (merged with the entry's own) + the turn."""
    if len(entry["question"]) != 1:
        raise ValueError(f"BFCL entry {entry['id']}: {len(entry['question'])} turns; expected a single-turn entry")
    turn = [dict(m) for m in entry["question"][0]]
    sys_text = system_prompt(entry["function"])
    if turn and turn[0]["role"] == "system":
        turn[0]["content"] = sys_text + "\n\n" + turn[0]["content"]
    else:
        turn.insert(0, {"role": "system", "content": sys_text})
    return turn
