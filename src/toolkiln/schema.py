"""The artifact formats every stage agrees on (docs/architecture.md (#api-pool, #dialogs)).

Canonical API (one row of ``data/api_pool.parquet``; JSON-valued columns are
JSON strings so Parquet stays flat and polars stays fast):

=================  ======  ====================================================
column             type    meaning
=================  ======  ====================================================
name               str     valid Python identifier, dots allowed (``weather.get_forecast``)
description        str     what the API does
parameters         str     JSON Schema object: ``{"type":"object","properties":{…},"required":[…]}``
returns            str     JSON Schema of the result (usually an object)
domain             str     top level of the API context tree
category           str     coarse category
functionalities    list    fine-grained leaves the API covers
diversity_level    int     1 (one leaf, few params) … 3 (several leaves, nested params)
provenance         str     JSON: generator, seed, parent example, evolution ops applied
=================  ======  ====================================================

An API as a dict (``api_to_dict``) is the OpenAI function format plus
``returns``/``domain``/``category``/``functionalities``.

Dialog (one row of ``data/dialogs.parquet``):

=================  ======  ====================================================
id                 str     stable id (hash of content)
type               str     ``single | parallel | dependent | non_tool | clarification``
domain             str     domain of the dialog's APIs
system             str     system prompt (format instructions; tools are rendered from ``tools``)
tools              str     JSON list of canonical API dicts offered to the assistant (gold + distractors)
messages           str     JSON list of turns (see below)
target_turn        int     index into ``messages`` of the assistant turn that is supervised/evaluated
target             str     Python-call list of that turn (``[f(a=1)]``), or ``""`` when it answers in text
calls              str     JSON list of every call in the dialog: ``{"turn", "name", "arguments"}``
apis               list    names of the APIs actually called (gold) — the split is by these
n_candidates       int     len(tools)
n_calls            int     number of calls in the dialog
n_turns            int     len(messages)
provenance         str     JSON: seed, agents/backends, consistency votes, complexity scores
=================  ======  ====================================================

A turn is ``{"role": "user"|"assistant"|"tool", "content": str}`` plus, for an
assistant tool turn, ``"tool_calls": [{"name", "arguments"}]`` and
``"thought": {"tool": …, "why": …, "arguments": {arg: source}}`` (formalised
thinking), and for a tool turn ``"name"`` (the API that produced it).
Evaluation: prompt = system + tools + ``messages[:target_turn]``; the expected
answer is ``target`` (``""`` => correct iff the model makes no call, BFCL's
irrelevance semantics; used for non_tool and for the clarifying question).
For ``dependent`` dialogs the target turn is the call that consumes an earlier
tool result.

Thought details as ``generate_dialogs`` writes them (additive): ``tool``
is the called name(s) joined by ", "; ``arguments`` is keyed by the argument name,
or ``"<call index>.<arg>"`` when the turn makes several calls, and each source is
``{"from": "user", "turn": i, "text": <what the user said, list for arrays/objects>,
"canonical": <value>}`` (``canonical`` only when the words differ from the value,
e.g. "May 3rd, 2024" -> "2024-05-03"), ``{"from": "system", "text": ...}`` (a
user-profile fact in the system prompt) or ``{"from": "tool", "turn": i, "api":
..., "field": "results[0].id"}``. LLM-written thoughts may give plain strings.
Provenance keys: ``seed``, ``slot``, ``attempt``, ``level`` (complexity 0-4),
``agents``, ``votes`` (``[{"turn", "expect", "n", "top", "counts"}]``, plus
``noisy_winner`` when a simulated mistake survived the vote), ``exchanges``,
``follow_up``, ``style``, ``profile``, ``intent_api`` (non_tool: the API the
request needs, not offered — the split counts it as the dialog's API),
``llm_keys`` (request keys in the stage's LLM trace), ``complexity``.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

DIALOG_TYPES = ("single", "parallel", "dependent", "non_tool", "clarification")

API_SCHEMA = {
    "name": pl.Utf8,
    "description": pl.Utf8,
    "parameters": pl.Utf8,
    "returns": pl.Utf8,
    "domain": pl.Utf8,
    "category": pl.Utf8,
    "functionalities": pl.List(pl.Utf8),
    "diversity_level": pl.Int64,
    "provenance": pl.Utf8,
}

DIALOG_SCHEMA = {
    "id": pl.Utf8,
    "type": pl.Utf8,
    "domain": pl.Utf8,
    "system": pl.Utf8,
    "tools": pl.Utf8,
    "messages": pl.Utf8,
    "target_turn": pl.Int64,
    "target": pl.Utf8,
    "calls": pl.Utf8,
    "apis": pl.List(pl.Utf8),
    "n_candidates": pl.Int64,
    "n_calls": pl.Int64,
    "n_turns": pl.Int64,
    "provenance": pl.Utf8,
}


def api_to_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A pool row (JSON columns as strings) -> the API as a plain dict."""
    return {
        "name": row["name"],
        "description": row["description"],
        "parameters": json.loads(row["parameters"]) if isinstance(row["parameters"], str) else row["parameters"],
        "returns": json.loads(row["returns"]) if isinstance(row["returns"], str) else row["returns"],
        "domain": row.get("domain", ""),
        "category": row.get("category", ""),
        "functionalities": list(row.get("functionalities") or []),
    }


def api_from_dict(api: dict[str, Any], *, diversity_level: int = 1, provenance: dict | None = None) -> dict[str, Any]:
    """An API dict -> a pool row (JSON columns serialised)."""
    return {
        "name": api["name"],
        "description": api.get("description", ""),
        "parameters": json.dumps(api.get("parameters", {}), ensure_ascii=False, sort_keys=True),
        "returns": json.dumps(api.get("returns", {}), ensure_ascii=False, sort_keys=True),
        "domain": api.get("domain", ""),
        "category": api.get("category", ""),
        "functionalities": list(api.get("functionalities", [])),
        "diversity_level": int(api.get("diversity_level", diversity_level)),
        "provenance": json.dumps(provenance or api.get("provenance") or {}, ensure_ascii=False, sort_keys=True),
    }


def apis_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=API_SCHEMA)


def dialogs_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=DIALOG_SCHEMA)
