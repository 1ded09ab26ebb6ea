"""Dialog rows in the formats other tools read (ToolACE arXiv 2409.00920 §3.2 data format).

* **ShareGPT / ToolACE** (``sharegpt.json``): ``{"id", "system", "conversations":
  [{"from": "user"|"assistant"|"tool", "value": ...}]}`` as ToolACE releases its
  data — the tools are in the system text as JSON, an assistant tool turn's value
  is the Python call list, and consecutive tool results form one ``tool`` turn
  holding ``[{"name", "results"}]``.
* **OpenAI messages** (``openai.jsonl``): ``{"messages", "tools"}`` as the
  chat-completions / fine-tuning API takes them, tool calls with ids and JSON
  string arguments, tool results answering them by ``tool_call_id``.
* **BFCL** (``bfcl_question.jsonl`` + ``bfcl_possible_answer.jsonl``): each
  dialog's *target turn* as a BFCL entry — the messages before it, the candidate
  functions in BFCL's doc format (``dict``/``float`` type names), and for call
  targets the possible answer ``[{func: {param: [accepted values]}}]`` with
  ``""`` marking an optional parameter that may be left out. The BFCL category
  follows from the target: one call among one / several candidates = ``simple``
  / ``multiple``; several calls = ``parallel`` (one function offered) or
  ``parallel_multiple``; no call (non-tool, clarifying question) =
  ``irrelevance``, which has no possible answer, as in BFCL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from toolkiln.calls import format_calls
from toolkiln.io import atomic_write_json, atomic_write_jsonl

_BFCL_TYPES = {"object": "dict", "number": "float", "integer": "integer", "string": "string", "boolean": "boolean",
               "array": "array", "null": "any"}
_KEEP = ("description", "enum", "default", "format", "pattern", "minimum", "maximum", "minItems", "maxItems")


def _loads(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def tool_doc(api: dict) -> dict:
    return {"name": api["name"], "description": api.get("description", ""), "parameters": api.get("parameters", {})}


# ----------------------------------------------------------------------------- ShareGPT / ToolACE

def to_sharegpt(row: dict) -> dict:
    tools = [tool_doc(t) for t in _loads(row["tools"])]
    system = f"{row['system']}\nHere is a list of functions in JSON format that you can invoke:\n{json.dumps(tools, ensure_ascii=False)}"
    conv: list[dict] = []
    for m in _loads(row["messages"]):
        if m["role"] == "tool":
            try:
                res = json.loads(m["content"])
            except ValueError:
                res = m["content"]
            item = {"name": m.get("name"), "results": res}
            if conv and conv[-1]["from"] == "tool":
                conv[-1]["_items"].append(item)
            else:
                conv.append({"from": "tool", "_items": [item]})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            conv.append({"from": "assistant", "value": format_calls(m["tool_calls"])})
        else:
            conv.append({"from": m["role"], "value": m.get("content", "")})
    for t in conv:
        if "_items" in t:
            t["value"] = json.dumps(t.pop("_items"), ensure_ascii=False)
    return {"id": row["id"], "type": row["type"], "system": system, "conversations": conv}


# ----------------------------------------------------------------------------- OpenAI messages

def to_openai(row: dict) -> dict:
    msgs: list[dict] = [{"role": "system", "content": row["system"]}]
    pending: list[tuple[str, str]] = []  # (call id, name) awaiting a result
    for i, m in enumerate(_loads(row["messages"])):
        if m["role"] == "assistant" and m.get("tool_calls"):
            tcs = []
            for j, c in enumerate(m["tool_calls"]):
                cid = f"call_{i}_{j}"
                tcs.append({"id": cid, "type": "function",
                            "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}), ensure_ascii=False)}})
                pending.append((cid, c["name"]))
            msgs.append({"role": "assistant", "content": None, "tool_calls": tcs})
        elif m["role"] == "tool":
            k = next((n for n, (_cid, name) in enumerate(pending) if name == m.get("name")), 0 if pending else None)
            cid = pending.pop(k)[0] if k is not None else f"call_{i}_orphan"
            msgs.append({"role": "tool", "tool_call_id": cid, "content": m.get("content", "")})
        else:
            msgs.append({"role": m["role"], "content": m.get("content", "")})
    tools = [{"type": "function", "function": tool_doc(t)} for t in _loads(row["tools"])]
    return {"messages": msgs, "tools": tools,
            "metadata": {"id": row["id"], "type": row["type"], "target_turn": row["target_turn"] + 1}}


# ----------------------------------------------------------------------------- BFCL

def bfcl_schema(s: Any) -> dict:
    """A JSON-Schema property -> BFCL's function-doc dialect (type names dict/float/any; nested types kept)."""
    if not isinstance(s, dict):
        return {"type": "any"}
    t = s.get("type")
    out: dict = {"type": _BFCL_TYPES.get(t, "any") if isinstance(t, str) else "any"}
    for k in _KEEP:
        if k in s:
            out[k] = s[k]
    if out["type"] == "dict":
        props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
        out["properties"] = {k: bfcl_schema(v) for k, v in props.items()}
        if s.get("required"):
            out["required"] = list(s["required"])
    if out["type"] == "array":
        out["items"] = bfcl_schema(s.get("items") if isinstance(s.get("items"), dict) else {"type": "string"})
    return out


def bfcl_function(api: dict) -> dict:
    params = api.get("parameters") if isinstance(api.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    return {"name": api["name"], "description": api.get("description", ""),
            "parameters": {"type": "dict", "properties": {k: bfcl_schema(v) for k, v in props.items()},
                           "required": [r for r in params.get("required") or [] if r in props]}}


def _as_schema_type(v: Any, s: Any) -> Any:
    """Numbers of ``number`` parameters as floats (BFCL's ``float``; its nested type check is exact)."""
    s = s if isinstance(s, dict) else {}
    t = s.get("type")
    if t == "number" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if t == "array" and isinstance(v, list):
        return [_as_schema_type(x, s.get("items")) for x in v]
    if t == "object" and isinstance(v, dict):
        props = s.get("properties") or {}
        return {k: _as_schema_type(x, props.get(k)) for k, x in v.items()}
    return v


def _possible(v: Any, s: Any) -> Any:
    """One accepted value in BFCL's possible-answer shape (dicts map keys to lists of accepted values)."""
    v = _as_schema_type(v, s)
    if isinstance(v, dict):
        props = (s or {}).get("properties") or {}
        return {k: [_possible(x, props.get(k))] for k, x in v.items()}
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        items = (s or {}).get("items") or {}
        return [{k: [_possible(x, (items.get("properties") or {}).get(k))] for k, x in d.items()} for d in v]
    return v


def bfcl_ground_truth(calls: list[dict], apis: dict[str, dict]) -> list[dict]:
    out = []
    for c in calls:
        api = apis.get(c["name"], {})
        params = api.get("parameters") or {}
        props = params.get("properties") or {}
        required = set(params.get("required") or [])
        gt = {}
        for p, s in props.items():
            if p in c.get("arguments", {}):
                acc = [_possible(c["arguments"][p], s)]
                if p not in required and isinstance(s, dict) and "default" in s and c["arguments"][p] == s["default"]:
                    acc.append("")
                gt[p] = acc
            elif p not in required:
                gt[p] = [""]
        out.append({c["name"]: gt})
    return out


def bfcl_category(row: dict, target_calls: list[dict]) -> str:
    if not target_calls:
        return "irrelevance"
    if len(target_calls) == 1:
        return "simple" if row["n_candidates"] == 1 else "multiple"
    return "parallel" if row["n_candidates"] == 1 else "parallel_multiple"


def _bfcl_messages(row: dict) -> list[dict]:
    msgs = [{"role": "system", "content": row["system"]}]
    for m in _loads(row["messages"])[: row["target_turn"]]:
        if m["role"] == "assistant" and m.get("tool_calls"):
            msgs.append({"role": "assistant", "content": format_calls(m["tool_calls"])})
        else:
            msgs.append({"role": m["role"], "content": m.get("content", "")})
    return msgs


def to_bfcl(row: dict, index: int) -> tuple[dict, dict | None]:
    """(question entry, possible-answer entry or None for irrelevance) of a row's target turn."""
    tools = _loads(row["tools"])
    msgs = _loads(row["messages"])
    target = msgs[row["target_turn"]].get("tool_calls") or []
    cat = bfcl_category(row, target)
    qid = f"{cat}_{index}"
    question = {"id": qid, "question": [_bfcl_messages(row)], "function": [bfcl_function(t) for t in tools],
                "category": cat, "toolkiln_id": row["id"], "toolkiln_type": row["type"]}
    if cat == "irrelevance":
        return question, None
    return question, {"id": qid, "ground_truth": bfcl_ground_truth(target, {t["name"]: t for t in tools})}


# ----------------------------------------------------------------------------- writing

def write_exports(splits: dict[str, pl.DataFrame], out_dir: str | Path, formats: Iterable[str]) -> dict:
    """Write every format for every split under ``out_dir/<split>/``; returns counts per file."""
    out_dir = Path(out_dir)
    counts: dict[str, int] = {}
    formats = list(formats)
    for name, df in splits.items():
        rows = df.to_dicts()
        d = out_dir / name
        d.mkdir(parents=True, exist_ok=True)
        if "sharegpt" in formats:
            atomic_write_json(d / "sharegpt.json", [to_sharegpt(r) for r in rows], indent=None)
            counts[f"{name}/sharegpt.json"] = len(rows)
        if "openai" in formats:
            atomic_write_jsonl(d / "openai.jsonl", [to_openai(r) for r in rows])
            counts[f"{name}/openai.jsonl"] = len(rows)
        if "bfcl" in formats:
            qs, ans = [], []
            for i, r in enumerate(rows):
                q, a = to_bfcl(r, i)
                qs.append(q)
                if a is not None:
                    ans.append(a)
            atomic_write_jsonl(d / "bfcl_question.jsonl", qs)
            atomic_write_jsonl(d / "bfcl_possible_answer.jsonl", ans)
            counts[f"{name}/bfcl_question.jsonl"] = len(qs)
            counts[f"{name}/bfcl_possible_answer.jsonl"] = len(ans)
    return counts
