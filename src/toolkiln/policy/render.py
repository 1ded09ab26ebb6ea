"""Dialog rows -> chat messages and the chat template that renders them (iTool arXiv 2501.09766 §3; docs/architecture.md#training).

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
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

from toolkiln.calls import format_call, format_calls


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


# ChatML (SmolLM2, Qwen, ...): a turn is "<|im_start|>role\n ... <|im_end|>\n"; the tool role is written as a role
# name like any other (ChatML has no fixed role list), so a base model reads tool results as a distinct speaker.
CHATML = Markers(
    system="<|im_start|>system\n",
    user="<|im_start|>user\n",
    assistant="<|im_start|>assistant\n",
    tool="<|im_start|>tool\n",
    end="<|im_end|>\n",
    pad="<|im_end|>",
)


def markers_for(tokenizer) -> Markers:
    """The turn markers a tokenizer was trained with: this project's specials, ChatML, or plain text + its EOS."""
    vocab = tokenizer.get_vocab()
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return CHATML
    if all(m in vocab for m in Markers().specials()):
        return Markers()
    if tokenizer.eos_token is None:
        raise ValueError("tokenizer has no eos_token and no known turn markers; cannot end assistant turns")
    # A foreign vocabulary: the markers are plain text and the turn ends at the model's own EOS token.
    return Markers(end=tokenizer.eos_token, pad=tokenizer.pad_token or tokenizer.eos_token)


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


def build_chat_template(
    markers: Markers = Markers(),
    *,
    render_system: bool = True,
    tool_description_chars: int = 80,
    first_sentence: bool = False,
    param_descriptions: bool = False,
    description_first: bool = False,
) -> str:
    """The Jinja chat template (``{% generation %}`` around assistant turns) for these markers and options."""
    subs = {
        "@@SYSTEM@@": markers.system,
        "@@USER@@": markers.user,
        "@@ASSISTANT@@": markers.assistant,
        "@@TOOL@@": markers.tool,
        "@@END@@": markers.end,
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


def render_text(
    chat_template: str,
    messages: Sequence[Mapping],
    tools: Sequence[Mapping] | None = None,
    *,
    add_generation_prompt: bool = False,
) -> str:
    """Render without a tokenizer (used to build the tokenizer's training corpus)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        [list(messages)],
        tools=list(tools) if tools else None,
        chat_template=chat_template,
        add_generation_prompt=add_generation_prompt,
    )
    return rendered[0]


# -- rows -> messages ---------------------------------------------------------------------------------------------------


class DialogFormatError(ValueError):
    """A dialog row cannot be turned into chat messages; the message names the row and the problem."""


def _loads(value: Any, what: str, row_id: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DialogFormatError(
                f"dialog {row_id}: column {what!r} is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
    return value


@dataclass(frozen=True)
class CallStyle:
    """How assistant call turns are written (the message side of ``policy.render``; travels with a checkpoint).

    ``arg_order``: ``signature`` writes keyword arguments in the order of the tool's
    signature line; ``as_given`` as the dialog stores them. ``comments``: each call is
    preceded by a Python comment line repeating its tool's description exactly as the
    tool list shows it (``first_sentence`` / ``description_chars`` must match the chat
    template's options), e.g. ``[# Get the forecast\nweather.get_forecast(city="Paris")]``.
    The comment is the call's formalised thought (ToolACE §3.2: state the capability,
    then act); with ``tool_line: description_first`` the name then follows the same line
    in the tool list, so writing it is a copy of what came after that line there.
    Comments are valid Python: every call parser reads the list unchanged.
    """

    arg_order: str = "as_given"
    comments: bool = False
    first_sentence: bool = True
    description_chars: int = 80

    FILE = "toolkiln_call_style.json"

    def __post_init__(self) -> None:
        if self.arg_order not in ("signature", "as_given"):
            raise ValueError(f"arg_order: got {self.arg_order!r}; expected signature|as_given")

    @classmethod
    def from_render(cls, render: Any) -> "CallStyle":
        """From a ``RenderConfig`` (duck-typed: this module imports no config)."""
        return cls(
            arg_order=render.arg_order,
            comments=render.call_comments,
            first_sentence=render.tool_description == "first_sentence",
            description_chars=render.tool_description_chars,
        )

    def save(self, folder) -> None:
        from pathlib import Path

        (Path(folder) / self.FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, folder) -> "CallStyle":
        """The style a checkpoint was trained with; the plain default for a folder toolkiln did not write."""
        from pathlib import Path

        path = Path(folder) / cls.FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        known = [f.name for f in fields(cls)]
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected {', '.join(known)}")
        return cls(**data)


def _function(tool: Mapping) -> Mapping:
    """The function spec of a tool: canonical dicts as they are, OpenAI's ``{"type": "function", "function": ...}`` unwrapped."""
    return tool.get("function") if isinstance(tool.get("function"), Mapping) else tool


def tool_description(tool: Mapping, first_sentence: bool, chars: int) -> str:
    """A tool's description as the chat template shows it (the same cut, kept in step by a test)."""
    d = _function(tool).get("description")
    d = d if isinstance(d, str) else ""
    if first_sentence:
        d = d.split(". ")[0].split("; ")[0].rstrip(".")
    return d[:chars] if chars > 0 else ""


def signature_order(tools: Sequence[Mapping]) -> dict[str, list[str]]:
    """Tool name -> its parameter names in the order the tool list shows them."""
    out: dict[str, list[str]] = {}
    for t in tools:
        f = _function(t)
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


def _commented_calls(calls: Sequence[Mapping], comments: Mapping[str, str]) -> str:
    parts = []
    for c in calls:
        text = format_call(c["name"], c.get("arguments", {}))
        note = comments.get(str(c.get("name")), "")
        parts.append(f"# {note}\n{text}" if note and "\n" not in note else text)
    return "[" + ",\n".join(parts) + "]"


def call_comments(tools: Sequence[Mapping], style: CallStyle) -> dict[str, str] | None:
    """Tool name -> the comment line its calls get in ``style`` (the tool list's description), or None when the
    style writes no comments."""
    if not style.comments:
        return None
    return {_tool_name(t): tool_description(t, style.first_sentence, style.description_chars) for t in tools}


def call_openings(tools: Sequence[Mapping], style: CallStyle) -> list[tuple[str, str]]:
    """(tool name, the text of an answer whose first call is to that tool, up to and including its ``(``) for each
    named tool, written exactly as call turns of ``style`` are (comment line included): the tool-choice step of
    a call list, which the preference search puts into its tree (``itool.mcts.root_openings``)."""
    comments = call_comments(tools, style)
    out = []
    for t in tools:
        name = _tool_name(t)
        if not name:
            continue
        call = [{"name": name, "arguments": {}}]
        text = _commented_calls(call, comments) if comments is not None else format_calls(call)
        out.append((name, text[: text.index(name + "(") + len(name) + 1]))
    return out


def normalise_messages(
    messages: Iterable[Mapping],
    row_id: str = "?",
    arg_order: Mapping[str, list[str]] | None = None,
    comments: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """Schema turns -> ``{"role", "content", "name"}`` dicts the template renders.

    An assistant turn with ``tool_calls`` gets ``content = format_calls(tool_calls)``
    (whatever text it carried), so the rendering of a call is the BFCL target string;
    every turn gets the same keys so the list is a uniform Arrow struct in ``datasets``.
    With ``arg_order`` (tool name -> parameter names, :func:`signature_order`) keyword
    arguments are written in signature order: the same call then always reads the same,
    and the model copies argument names in the order the tool line lists them rather
    than guessing the order a user happened to mention them (matching ignores it).
    With ``comments`` (tool name -> description line) each call gets its comment line
    (:class:`CallStyle`).
    """
    out = []
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise DialogFormatError(
                f"dialog {row_id}: messages[{i}].role: got {role!r}; expected system|user|assistant|tool"
            )
        content = m.get("content")
        calls = m.get("tool_calls") or []
        if role == "assistant" and calls:
            try:
                if arg_order is not None:
                    calls = _in_signature_order(calls, arg_order)
                content = _commented_calls(calls, comments) if comments is not None else format_calls(calls)
            except (KeyError, TypeError, ValueError) as exc:
                raise DialogFormatError(
                    f"dialog {row_id}: messages[{i}].tool_calls cannot be rendered as a call list: {exc}"
                ) from None
        elif content is not None and not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        out.append({"role": role, "content": content or "", "name": str(m.get("name") or "") if role == "tool" else ""})
    return out


def row_tools(row: Mapping) -> list[dict]:
    tools = _loads(row.get("tools") or "[]", "tools", str(row.get("id", "?")))
    if not isinstance(tools, list):
        raise DialogFormatError(
            f"dialog {row.get('id', '?')}: column 'tools': got {type(tools).__name__}; expected a JSON list"
        )
    return tools


def prompt_messages(row: Mapping, style: CallStyle = CallStyle()) -> list[dict[str, str]]:
    """The evaluation prompt of a dialog row: system + ``messages[:target_turn]`` (schema.py), normalised."""
    return dialog_messages(row, upto="prompt", style=style)


def dialog_messages(row: Mapping, upto: str = "target", style: CallStyle = CallStyle()) -> list[dict[str, str]]:
    """System turn + the dialog's turns up to the target turn (``prompt``: excluded, ``target``: included, ``full``: all).

    Call turns are written in ``style`` (:class:`CallStyle`: argument order, comment lines).
    """
    rid = str(row.get("id", "?"))
    msgs = _loads(row.get("messages") or "[]", "messages", rid)
    if not isinstance(msgs, list):
        raise DialogFormatError(f"dialog {rid}: column 'messages': got {type(msgs).__name__}; expected a JSON list")
    t = int(row.get("target_turn", -1))
    if not 0 <= t < len(msgs):
        raise DialogFormatError(f"dialog {rid}: target_turn: got {t}; expected an index into its {len(msgs)} messages")
    if msgs[t].get("role") != "assistant":
        raise DialogFormatError(
            f"dialog {rid}: messages[{t}] (the target turn) has role {msgs[t].get('role')!r}; expected 'assistant'"
        )
    cut = {"prompt": t, "target": t + 1, "full": len(msgs)}[upto]
    system = [{"role": "system", "content": row.get("system") or "", "name": ""}]
    tools = row_tools(row)
    order = signature_order(tools) if style.arg_order == "signature" else None
    comments = call_comments(tools, style)
    return system + normalise_messages(msgs[:cut], rid, order, comments)


def gold_tool_names(row: Mapping) -> set[str]:
    apis = row.get("apis")
    if apis is None:
        return set()
    return {str(a) for a in apis}


def fit_tools(
    tools: list[dict], keep: set[str], length: Callable[[list[dict]], int], max_length: int
) -> tuple[list[dict], int]:
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
    return str(_function(tool).get("name", ""))
