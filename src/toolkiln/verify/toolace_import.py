"""ToolACE's released dialogs (ShareGPT form) -> toolkiln dialog rows (ToolACE §3.2).

A record is ``{"system", "tools", "conversations": [{"from": "human" | "function_call" |
"observation" | "gpt", "value"}]}``; the candidate tools sit as a JSON list inside the
system prompt (names with spaces, Python type names). The tools go through the API
importer (:func:`toolkiln.synth.importers.normalize_api`), so names and argument
names get the same identifiers as in our pool; the tool list is cut out of the
system prompt (tools are rendered from the ``tools`` column, and the hallucination
check must not find argument values in API docs). A ``function_call`` turn becomes
an assistant turn with ``tool_calls``; an ``observation`` (a list of
``{"name", "results"}``) becomes one tool turn per result.

The public conversion names each call by the *last word* of the API name
(``"Market Trends API"`` is called as ``"API"``). With ``repair_names`` a call name
that is not a candidate is mapped to the one candidate whose original name ends
with that word (the name on the call's own result breaks ties); every repair is recorded
in ``provenance.name_repairs``. Without it the rows are kept as released, and the
rule layer rejects the calls as invented functions.

The supervised turn is the last call turn (else the last assistant answer), and
the type follows from it: ``parallel`` for several calls, ``single`` for one,
``non_tool`` for a text answer. Records that cannot be converted are returned
with their reason, not dropped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from toolkiln.calls import format_calls
from toolkiln.schema import dialogs_frame
from toolkiln.synth.importers import normalize_api, normalize_name, normalize_param_name, toolace_tool_list

ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass
class ImportResult:
    dialogs: pl.DataFrame
    failures: list[dict] = field(default_factory=list)  # {"record": i, "reason": str}
    repairs: int = 0


def _system_without_tools(system: str) -> str:
    i = system.find("[")
    if i < 0:
        return system
    try:
        _, end = json.JSONDecoder().raw_decode(system[i:])
    except json.JSONDecodeError:
        return system
    return (system[:i] + "(the tools listed separately)" + system[i + end:]).strip()


def _repair(name: str, tools: list[dict], observed: str | None) -> str | None:
    """The candidate a truncated call name stands for; ``observed`` is the name on this call's own result."""
    names = {t["name"] for t in tools}
    if name in names:
        return None
    orig = {t["name"]: (t.get("provenance") or {}).get("original_name", t["name"]) for t in tools}
    hits = [n for n, o in orig.items()
            if [normalize_name(w) for w in o.split()[-1:]] == [name] or n.endswith("_" + name.lstrip("_"))]
    if len(hits) > 1 and observed in hits:
        return observed
    return hits[0] if len(hits) == 1 else None


def record_to_row(rec: dict, index: int, *, repair_names: bool = True) -> tuple[dict, int]:
    """One ShareGPT record -> (dialog row, number of repaired call names); raises ValueError naming the problem."""
    system = rec.get("system")
    if not isinstance(system, str):
        raise ValueError("record has no 'system' string")
    raw = toolace_tool_list(system)
    extra = rec.get("tools") or []
    if isinstance(extra, str):
        extra = json.loads(extra or "[]")
    tools = [normalize_api(t, lenient=True) for t in raw + list(extra)]
    conv = rec.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise ValueError("record has no conversations")
    msgs: list[dict] = []
    repairs: list[dict] = []
    for k, turn in enumerate(conv):
        who, value = turn.get("from"), turn.get("value", "")
        if who in ROLE:
            msgs.append({"role": ROLE[who], "content": value})
        elif who == "function_call":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                msgs.append({"role": "assistant", "content": value})  # kept as written; the rules flag it
                continue
            calls = parsed if isinstance(parsed, list) else [parsed]
            nxt = conv[k + 1] if k + 1 < len(conv) and conv[k + 1].get("from") == "observation" else None
            obs_names = []
            if nxt is not None:
                try:
                    obs_names = [normalize_name(o.get("name", "")) for o in json.loads(nxt["value"]) if isinstance(o, dict)]
                except (json.JSONDecodeError, ValueError, TypeError, AttributeError):
                    obs_names = []
            tcs = []
            for j, c in enumerate(calls):
                if not isinstance(c, dict):
                    continue
                name = normalize_name(str(c.get("name", "")))
                # Results come back in call order, so the j-th result names the j-th call's API.
                fixed = _repair(name, tools, obs_names[j] if j < len(obs_names) else None) if repair_names else None
                if fixed:
                    repairs.append({"turn": len(msgs), "from": name, "to": fixed})
                    name = fixed
                args = c.get("arguments") or {}
                if isinstance(args, dict):
                    args = {normalize_param_name(a): v for a, v in args.items()}
                tcs.append({"name": name, "arguments": args})
            msgs.append({"role": "assistant", "content": "", "tool_calls": tcs})
        elif who == "observation":
            try:
                results = json.loads(value)
            except json.JSONDecodeError:
                results = None
            if isinstance(results, list) and all(isinstance(o, dict) for o in results) and results:
                for o in results:
                    msgs.append({"role": "tool", "name": normalize_name(str(o.get("name") or "unnamed")),
                                 "content": json.dumps(o.get("results", o), ensure_ascii=False)})
            else:
                msgs.append({"role": "tool", "name": "", "content": value})
        else:
            raise ValueError(f"turn {k}: unknown speaker {who!r}")
    call_turns = [i for i, m in enumerate(msgs) if m.get("tool_calls")]
    text_turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant" and not m.get("tool_calls")]
    if not call_turns and not text_turns:
        raise ValueError("conversation has no assistant turn")
    tt = call_turns[-1] if call_turns else text_turns[-1]
    target_calls = msgs[tt].get("tool_calls") or []
    calls = [{"turn": i, "name": c["name"], "arguments": c["arguments"]} for i in call_turns for c in msgs[i]["tool_calls"]]
    type_ = "parallel" if len(target_calls) > 1 else "single" if target_calls else "non_tool"
    try:
        target = format_calls(target_calls) if target_calls else ""
    except (TypeError, ValueError):
        target = json.dumps(target_calls, ensure_ascii=False)  # not renderable: the format rule reports it
    row = {
        "type": type_, "domain": "toolace", "system": _system_without_tools(system),
        "tools": json.dumps(tools, ensure_ascii=False), "messages": json.dumps(msgs, ensure_ascii=False),
        "target_turn": tt, "target": target, "calls": json.dumps(calls, ensure_ascii=False),
        "apis": sorted({c["name"] for c in calls}), "n_candidates": len(tools), "n_calls": len(calls),
        "n_turns": len(msgs),
        "provenance": json.dumps({"source": "ToolACE (Team-ACE/ToolACE, Apache-2.0)", "record": index,
                                  "name_repairs": repairs}, ensure_ascii=False),
    }
    row["id"] = "toolace-" + hashlib.sha256((row["messages"] + row["tools"]).encode()).hexdigest()[:16]
    return row, len(repairs)


def import_toolace_dialogs(records: Iterable[dict], *, repair_names: bool = True) -> ImportResult:
    rows, failures, repairs = [], [], 0
    for i, rec in enumerate(records):
        try:
            row, n = record_to_row(rec, i, repair_names=repair_names)
        except (ValueError, TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            failures.append({"record": i, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append(row)
        repairs += n
    return ImportResult(dialogs=dialogs_frame(rows), failures=failures, repairs=repairs)


def summarize(checked: pl.DataFrame, examples: int = 2) -> dict[str, Any]:
    """Per failing check: how many dialogs, and a few reasons as examples."""
    from toolkiln.verify.rules import RULE_CHECKS

    out: dict[str, Any] = {"n": checked.height, "pass_rate": float(checked["ok_rules"].mean()) if checked.height else None,
                           "checks": {}}
    for c in RULE_CHECKS:
        bad = checked.filter(~pl.col(c))
        if bad.height:
            ex = [r for rs in bad["rule_reasons"] for r in rs if r.startswith(c + ":")]
            out["checks"][c] = {"n": bad.height, "examples": ex[:examples]}
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m toolkiln.verify.toolace_import --in toolace_sample.json``: import, run the rule layer, summarise."""
    from toolkiln.verify.config import RuleConfig
    from toolkiln.verify.rules import rule_checks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="src", required=True, help="ToolACE ShareGPT JSON (a list of records)")
    ap.add_argument("--out", help="write the imported dialogs (parquet)")
    ap.add_argument("--no-repair", action="store_true", help="keep the truncated call names as released")
    ap.add_argument("--examples", type=int, default=2)
    args = ap.parse_args(argv)
    records = json.loads(Path(args.src).read_text())
    res = import_toolace_dialogs(records, repair_names=not args.no_repair)
    if args.out:
        from toolkiln.io import atomic_write_parquet

        atomic_write_parquet(args.out, res.dialogs)
    checked = rule_checks(res.dialogs, RuleConfig())
    report = {"records": len(records), "imported": res.dialogs.height, "import_failures": res.failures,
              "name_repairs": res.repairs, "rules": summarize(checked, args.examples)}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
