"""Dialog rows -> chat messages and the chat template that renders them (iTool arXiv 2501.09766 §3; DESIGN.md §2.4).

One template serves training, scoring and evaluation, so the text the policy learns
from is byte-identical to the prompt it is later asked to complete:

* the system turn carries the dialog's system prompt (optionally left out when tools
  are given: ``render_system=False``) and the candidate tools, one compact *signature line* per tool — ``name(city: str, days?: int, unit?: "c"|"f") - description``
  — because a from-scratch model must learn to copy names and argument names from
  context, and the call it must write (``[name(city="Paris")]``) starts the same way;
* user / assistant / tool turns follow, each closed by the end marker; every
  assistant turn sits inside ``{% generation %}`` so TRL's ``assistant_only_loss``
  supervises exactly those tokens (the end marker included, so the model learns to stop);
* ``tools=`` is the canonical API dict list of ``schema.py`` (OpenAI's
  ``{"type": "function", "function": {...}}`` wrapping is accepted too), i.e.
  ``tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True)``.

Assistant tool turns are rendered from ``content``, which :func:`normalise_messages`
sets to ``toolkiln.calls.format_calls(tool_calls)``; the formalised-thinking rationale
(``thought``) is not rendered, since the evaluated output is the call list alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from toolkiln.calls import format_calls


@dataclass(frozen=True)
class Markers:
    """Turn markers. From-scratch tokenizers get them as special tokens; foreign tokenizers as text + their EOS."""

    system: str = "<|system|>"
    user: str = "<|user|>"
    assistant: str = "<|assistant|>"
    tool: str = "<|tool|>"
    end: str = "<|end|>"
    pad: str = "<|pad|>"

    def specials(self) -> list[str]:
        return [self.pad, self.end, self.system, self.user, self.assistant, self.tool]


_TEMPLATE = r"""
{%- macro ty(p) -%}
{%- if p is mapping and p['enum'] is defined and p['enum'] -%}{{ p['enum'] | map('tojson') | join('|') }}
{%- elif p is mapping and p['type'] is defined and p['type'] is string -%}
{%- if p['type'] == 'array' -%}list{% if p['items'] is defined and p['items'] is mapping %}[{{ ty(p['items']) }}]{% endif %}
{%- else -%}{{ {'string': 'str', 'integer': 'int', 'number': 'float', 'boolean': 'bool', 'object': 'dict', 'null': 'None'}.get(p['type'], p['type']) }}
{%- endif -%}
{%- else -%}any
{%- endif -%}
{%- endmacro -%}
{%- set ns = namespace(sys='', start=0) -%}
{%- if messages and messages[0]['role'] == 'system' -%}
{%- set ns.sys = messages[0]['content'] or '' -%}
{%- set ns.start = 1 -%}
{%- endif -%}
{{- '@@SYSTEM@@' -}}
{%- if ns.sys and (@@RENDER_SYSTEM@@ or not tools) -%}{{ ns.sys }}{{ '\n' }}{%- endif -%}
{%- if tools -%}
{%- for t in tools -%}
{%- set f = t['function'] if t['function'] is defined and t['function'] is mapping else t -%}
{%- set ps = f['parameters'] if f['parameters'] is defined and f['parameters'] is mapping else {} -%}
{%- set props = ps['properties'] if ps['properties'] is defined and ps['properties'] is mapping else {} -%}
{%- set req = ps['required'] if ps['required'] is defined and ps['required'] else [] -%}
{%- set d = f['description'] if f['description'] is defined and f['description'] is string else '' -%}
{%- if @@FIRST_SENTENCE@@ %}{% set d = d.split('. ')[0].split('; ')[0].rstrip('.') %}{% endif -%}
{%- if @@DESC_FIRST@@ and d and @@DESC_CHARS@@ > 0 %}# {{ d[:@@DESC_CHARS@@] }}{{ '\n' }}{% endif -%}
{{- f['name'] }}(
{%- for pn, p in props.items() -%}
{{ pn }}{{ '' if pn in req else '?' }}: {{ ty(p) }}
{%- if @@PARAM_DESC@@ and p is mapping and p['description'] is defined and p['description'] %} ({{ p['description'] }}){% endif %}
{%- if not loop.last %}, {% endif -%}
{%- endfor -%}
)
{%- if not @@DESC_FIRST@@ and d and @@DESC_CHARS@@ > 0 %} - {{ d[:@@DESC_CHARS@@] }}{% endif %}{{ '\n' }}
{%- endfor -%}
{%- endif -%}
{{- '@@END@@' -}}
{%- for m in messages[ns.start:] -%}
{%- if m['role'] == 'user' -%}
{{- '@@USER@@' }}{{ m['content'] or '' }}{{ '@@END@@' -}}
{%- elif m['role'] == 'assistant' -%}
{{- '@@ASSISTANT@@' -}}{% generation %}{{ m['content'] or '' }}{{ '@@END@@' }}{% endgeneration %}
{%- elif m['role'] == 'tool' -%}
{{- '@@TOOL@@' }}{% if m['name'] is defined and m['name'] %}{{ m['name'] }}: {% endif %}{{ m['content'] or '' }}{{ '@@END@@' -}}
{%- elif m['role'] == 'system' -%}
{{- '@@SYSTEM@@' }}{{ m['content'] or '' }}{{ '@@END@@' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '@@ASSISTANT@@' }}{%- endif -%}
"""


def build_chat_template(markers: Markers = Markers(), *, render_system: bool = True, tool_description_chars: int = 80,
                        first_sentence: bool = False, param_descriptions: bool = False,
                        description_first: bool = False) -> str:
    """The Jinja chat template (``{% generation %}`` around assistant turns) for these markers and options."""
    subs = {
        "@@SYSTEM@@": markers.system, "@@USER@@": markers.user, "@@ASSISTANT@@": markers.assistant,
        "@@TOOL@@": markers.tool, "@@END@@": markers.end,
        "@@RENDER_SYSTEM@@": "true" if render_system else "false",
        "@@PARAM_DESC@@": "true" if param_descriptions else "false",
        "@@DESC_CHARS@@": str(int(tool_description_chars)),
        "@@FIRST_SENTENCE@@": "true" if first_sentence else "false",
        "@@DESC_FIRST@@": "true" if description_first else "false",
    }
    text = _TEMPLATE.strip()
    for key, value in subs.items():
        # Markers become Jinja string literals; a quote inside one would end the literal early.
        if "'" in value or "\\" in value:
            raise ValueError(f"chat template marker {value!r}: expected no quote or backslash characters")
        text = text.replace(key, value)
    return text


def render_text(chat_template: str, messages: Sequence[Mapping], tools: Sequence[Mapping] | None = None, *,
                add_generation_prompt: bool = False) -> str:
    """Render without a tokenizer (used to build the tokenizer's training corpus)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template([list(messages)], tools=list(tools) if tools else None,
                                        chat_template=chat_template, add_generation_prompt=add_generation_prompt)
    return rendered[0]


# -- rows -> messages ---------------------------------------------------------------------------------------------------

class DialogFormatError(ValueError):
    """A dialog row cannot be turned into chat messages; the message names the row and the problem."""


def _loads(value: Any, what: str, row_id: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DialogFormatError(f"dialog {row_id}: column {what!r} is not valid JSON ({exc.msg} at char {exc.pos})") from None
    return value


def signature_order(tools: Sequence[Mapping]) -> dict[str, list[str]]:
    """Tool name -> its parameter names in the order the tool list shows them."""
    out: dict[str, list[str]] = {}
    for t in tools:
        f = t.get("function") if isinstance(t.get("function"), Mapping) else t
        ps = f.get("parameters") if isinstance(f.get("parameters"), Mapping) else {}
        props = ps.get("properties") if isinstance(ps.get("properties"), Mapping) else {}
        out[str(f.get("name", ""))] = list(props)
    return out


def _in_signature_order(calls: Sequence[Mapping], order: Mapping[str, list[str]]) -> list[dict]:
    """Keyword arguments sorted as the called tool's signature lists them (unknown names keep their place, last)."""
    out = []
    for c in calls:
        args = c.get("arguments", {})
        names = order.get(str(c.get("name")))
        if isinstance(args, Mapping) and names:
            rank = {n: i for i, n in enumerate(names)}
            args = dict(sorted(args.items(), key=lambda kv: rank.get(kv[0], len(rank))))
        out.append({**c, "arguments": args})
    return out


def normalise_messages(messages: Iterable[Mapping], row_id: str = "?",
                       arg_order: Mapping[str, list[str]] | None = None) -> list[dict[str, str]]:
    """Schema turns -> ``{"role", "content", "name"}`` dicts the template renders.

    An assistant turn with ``tool_calls`` gets ``content = format_calls(tool_calls)``
    (whatever text it carried), so the rendering of a call is the BFCL target string;
    every turn gets the same keys so the list is a uniform Arrow struct in ``datasets``.
    With ``arg_order`` (tool name -> parameter names, :func:`signature_order`) keyword
    arguments are written in signature order: the same call then always reads the same,
    and the model copies argument names in the order the tool line lists them rather
    than guessing the order a user happened to mention them (matching ignores it).
    """
    out = []
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise DialogFormatError(f"dialog {row_id}: messages[{i}].role: got {role!r}; expected "
                                    "system|user|assistant|tool")
        content = m.get("content")
        calls = m.get("tool_calls") or []
        if role == "assistant" and calls:
            try:
                if arg_order is not None:
                    calls = _in_signature_order(calls, arg_order)
                content = format_calls(calls)
            except (KeyError, TypeError, ValueError) as exc:
                raise DialogFormatError(f"dialog {row_id}: messages[{i}].tool_calls cannot be rendered as a call "
                                        f"list: {exc}") from None
        elif content is not None and not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        out.append({"role": role, "content": content or "", "name": str(m.get("name") or "") if role == "tool" else ""})
    return out


def row_tools(row: Mapping) -> list[dict]:
    tools = _loads(row.get("tools") or "[]", "tools", str(row.get("id", "?")))
    if not isinstance(tools, list):
        raise DialogFormatError(f"dialog {row.get('id', '?')}: column 'tools': got {type(tools).__name__}; expected a JSON list")
    return tools


def prompt_messages(row: Mapping, arg_order: str = "signature") -> list[dict[str, str]]:
    """The evaluation prompt of a dialog row: system + ``messages[:target_turn]`` (schema.py), normalised."""
    return dialog_messages(row, upto="prompt", arg_order=arg_order)


def dialog_messages(row: Mapping, upto: str = "target", arg_order: str = "signature") -> list[dict[str, str]]:
    """System turn + the dialog's turns up to the target turn (``prompt``: excluded, ``target``: included, ``full``: all).

    ``arg_order``: ``signature`` writes call arguments in the order of the row's tool
    signatures (see :func:`normalise_messages`); ``as_given``: as the dialog stores them.
    """
    if arg_order not in ("signature", "as_given"):
        raise ValueError(f"arg_order: got {arg_order!r}; expected signature|as_given")
    rid = str(row.get("id", "?"))
    msgs = _loads(row.get("messages") or "[]", "messages", rid)
    if not isinstance(msgs, list):
        raise DialogFormatError(f"dialog {rid}: column 'messages': got {type(msgs).__name__}; expected a JSON list")
    t = int(row.get("target_turn", -1))
    if not 0 <= t < len(msgs):
        raise DialogFormatError(f"dialog {rid}: target_turn: got {t}; expected an index into its {len(msgs)} messages")
    if msgs[t].get("role") != "assistant":
        raise DialogFormatError(f"dialog {rid}: messages[{t}] (the target turn) has role {msgs[t].get('role')!r}; "
                                "expected 'assistant'")
    cut = {"prompt": t, "target": t + 1, "full": len(msgs)}[upto]
    system = [{"role": "system", "content": row.get("system") or "", "name": ""}]
    order = signature_order(row_tools(row)) if arg_order == "signature" else None
    return system + normalise_messages(msgs[:cut], rid, order)


def gold_tool_names(row: Mapping) -> set[str]:
    apis = row.get("apis")
    if apis is None:
        return set()
    return {str(a) for a in apis}


def fit_tools(tools: list[dict], keep: set[str], length: Callable[[list[dict]], int], max_length: int) -> tuple[list[dict], int]:
    """Drop distractor tools (last first; never one named in ``keep``) until ``length(tools) <= max_length``.

    Deterministic: the candidate order of the row decides what goes. Returns the
    kept tools and how many were dropped (the caller decides what an example that
    still does not fit means).
    """
    kept = list(tools)
    dropped = 0
    n = length(kept)
    while n > max_length:
        idx = next((i for i in range(len(kept) - 1, -1, -1) if _tool_name(kept[i]) not in keep), None)
        if idx is None:
            break
        del kept[idx]
        dropped += 1
        n = length(kept)
    return kept, dropped


def _tool_name(tool: Mapping) -> str:
    f = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
    return str(f.get("name", ""))
