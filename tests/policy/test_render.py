"""The chat rendering contract: tools as signatures, calls as format_calls strings, assistant-only masks."""

import json

import pytest

from toolkiln.calls import format_calls
from toolkiln.policy.config import RenderConfig
from toolkiln.policy.examples import build_examples, chat_ids, target_spans
from toolkiln.policy.render import (CallStyle, DialogFormatError, Markers, build_chat_template, dialog_messages, fit_tools,
                                    normalise_messages, prompt_messages, render_text, row_tools)

TOOLS = [{"name": "weather.get_forecast", "description": "Get the weather forecast for a city, for some days.",
          "parameters": {"type": "object", "required": ["city"], "properties": {
              "city": {"type": "string", "description": "City name"}, "days": {"type": "integer"},
              "unit": {"type": "string", "enum": ["c", "f"]},
              "stops": {"type": "array", "items": {"type": "object"}}}}}]


def test_tools_render_as_compact_signatures():
    text = render_text(build_chat_template(), [{"role": "user", "content": "hi"}], TOOLS, add_generation_prompt=True)
    assert text == ('<|system|>weather.get_forecast(city: str, days?: int, unit?: "c"|"f", stops?: list[dict]) - '
                    'Get the weather forecast for a city, for some days.\n<|end|><|user|>hi<|end|><|assistant|>')


def test_openai_wrapped_tools_render_the_same_and_options_apply():
    tpl = build_chat_template()
    wrapped = [{"type": "function", "function": TOOLS[0]}]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert render_text(tpl, msgs, wrapped) == render_text(tpl, msgs, TOOLS)
    short = build_chat_template(tool_description_chars=7, param_descriptions=True, render_system=False)
    text = render_text(short, msgs, TOOLS)
    assert "Be brief." not in text
    assert "city: str (City name)" in text
    assert ") - Get the\n" in text


def test_markers_cannot_break_the_template():
    with pytest.raises(ValueError, match="quote"):
        build_chat_template(Markers(end="it's"))


def test_normalise_renders_calls_from_tool_calls_and_drops_thought():
    calls = [{"name": "f", "arguments": {"a": 1, "b": "x", "c": [True, None]}}]
    msgs = normalise_messages([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "I will call f", "tool_calls": calls, "thought": {"why": "because"}},
        {"role": "tool", "name": "f", "content": {"ok": 1}},
    ])
    assert msgs[1] == {"role": "assistant", "content": format_calls(calls), "name": ""}
    assert msgs[1]["content"] == '[f(a=1, b="x", c=[True, None])]'
    assert msgs[2] == {"role": "tool", "content": '{"ok": 1}', "name": "f"}
    with pytest.raises(DialogFormatError, match=r"dialog d7: messages\[0\].role"):
        normalise_messages([{"role": "robot", "content": "x"}], "d7")


def test_dialog_cuts_follow_the_target_turn(dialogs):
    row = next(r for r in dialogs.to_dicts() if r["type"] == "dependent")
    n = len(json.loads(row["messages"]))
    assert row["target_turn"] == 3
    assert [m["role"] for m in prompt_messages(row)] == ["system", "user", "assistant", "tool"]
    assert len(dialog_messages(row, "target")) == 1 + 4
    assert len(dialog_messages(row, "full")) == 1 + n
    assert dialog_messages(row, "target")[-1]["content"] == row["target"]
    bad = {**row, "target_turn": 2}
    with pytest.raises(DialogFormatError, match=f"dialog {row['id']}: messages\\[2\\].*expected 'assistant'"):
        dialog_messages(bad)
    with pytest.raises(DialogFormatError, match="not valid JSON"):
        row_tools({**row, "tools": "[{"})


def test_assistant_mask_is_exactly_the_assistant_turns(dialogs, tokenizer):
    for row in dialogs.to_dicts()[:10]:
        msgs = dialog_messages(row, "target")
        tools = row_tools(row)
        out = tokenizer.apply_chat_template(msgs, tools=tools, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
        supervised = tokenizer.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=False)
        expected = "".join(m["content"] + "<|end|>" for m in msgs if m["role"] == "assistant")
        assert supervised == expected
        # the evaluation prompt is a token prefix of the training text: train and eval see the same context
        prompt = tokenizer.apply_chat_template(prompt_messages(row), tools=tools, add_generation_prompt=True,
                                               tokenize=True, return_dict=True)["input_ids"]
        assert ids[:len(prompt)] == prompt
        assert tokenizer.decode(ids[len(prompt):], skip_special_tokens=True) == (row["target"] or msgs[-1]["content"])


def test_fit_tools_drops_distractors_last_first_never_gold():
    tools = [{"name": n} for n in ["a", "gold", "b", "c"]]
    kept, dropped = fit_tools(tools, {"gold"}, lambda ts: 10 * len(ts), 25)
    assert [t["name"] for t in kept] == ["a", "gold"] and dropped == 2
    kept, dropped = fit_tools(tools, {"gold"}, lambda ts: 10 * len(ts), 5)
    assert [t["name"] for t in kept] == ["gold"] and dropped == 3


def test_build_examples_counts_dropped_tools_and_skips(dialogs, tokenizer):
    rows = dialogs.to_dicts()[:10]
    lengths = [len(chat_ids(tokenizer, dialog_messages(r), row_tools(r))) for r in rows]
    budget = sorted(lengths)[5]
    ex, stats = build_examples(rows, tokenizer, RenderConfig(max_length=budget))
    assert stats["examples"] + stats["skipped_too_long"] == 10
    assert stats["rows_with_tools_dropped"] >= 1 and stats["tools_dropped"] >= stats["rows_with_tools_dropped"]
    for e in ex:
        assert e["n_tokens"] <= budget
        names = {t["name"] for t in json.loads(e["tools"])}
        row = next(r for r in rows if r["id"] == e["id"])
        assert set(row["apis"]) <= names  # the gold APIs always survive
    for full, start in target_spans(tokenizer, ex):
        assert 0 < start < len(full)


def test_tools_only_and_first_sentence_rendering():
    tpl = build_chat_template(render_system=False, first_sentence=True)
    tools = [{**TOOLS[0], "description": "Get the forecast; part of Weather. Also supports: tides."}]
    msgs = [{"role": "system", "content": "Answer with calls. What you know: email a@b.c"}, {"role": "user", "content": "hi"}]
    text = render_text(tpl, msgs, tools)
    assert "Answer with calls" not in text and ") - Get the forecast\n" in text
    # without tools (e.g. BFCL-style prompts whose system message carries the docs) the system prompt is kept
    assert render_text(tpl, msgs, None).startswith("<|system|>Answer with calls. What you know: email a@b.c\n<|end|>")


def test_description_first_puts_a_comment_line_above_each_signature():
    tpl = build_chat_template(render_system=False, first_sentence=True, description_first=True)
    second = {"name": "weather.get_tides", "description": "List tide times. More text.",
              "parameters": {"type": "object", "properties": {}}}
    text = render_text(tpl, [{"role": "user", "content": "hi"}], [TOOLS[0], second], add_generation_prompt=True)
    assert text == ('<|system|># Get the weather forecast for a city, for some days\n'
                    'weather.get_forecast(city: str, days?: int, unit?: "c"|"f", stops?: list[dict])\n'
                    '# List tide times\nweather.get_tides()\n<|end|><|user|>hi<|end|><|assistant|>')
    # no description, or descriptions cut to nothing: no comment line at all
    bare = render_text(build_chat_template(description_first=True, tool_description_chars=0), [], TOOLS)
    assert "#" not in bare and bare.startswith("<|system|>weather.get_forecast(")


def test_call_arguments_follow_the_signature_order_unless_as_given():
    row = {"id": "d1", "system": "", "target_turn": 1, "tools": json.dumps(TOOLS), "messages": json.dumps([
        {"role": "user", "content": "two days of Paris in f"},
        {"role": "assistant", "tool_calls": [{"name": "weather.get_forecast",
                                              "arguments": {"unit": "f", "days": 2, "city": "Paris", "zz": 1}}]}])}
    assert dialog_messages(row, style=CallStyle(arg_order="signature"))[-1]["content"] == \
        '[weather.get_forecast(city="Paris", days=2, unit="f", zz=1)]'
    assert dialog_messages(row)[-1]["content"] == \
        '[weather.get_forecast(unit="f", days=2, city="Paris", zz=1)]'
    with pytest.raises(ValueError, match="arg_order"):
        CallStyle(arg_order="alphabetical")


def test_call_comments_repeat_the_tool_lines_description_and_still_parse(tmp_path):
    from toolkiln.callparse import parse_calls

    tools = [TOOLS[0], {"name": "weather.get_tides", "description": "List tide times. More.",
                        "parameters": {"type": "object", "properties": {"port": {"type": "string"}}}},
             {"name": "bare", "parameters": {"type": "object", "properties": {}}}]
    calls = [{"name": "weather.get_forecast", "arguments": {"days": 2, "city": "Paris"}},
             {"name": "weather.get_tides", "arguments": {"port": "Brest # 2"}}, {"name": "bare", "arguments": {}}]
    row = {"id": "d1", "system": "", "target_turn": 1, "tools": json.dumps(tools), "messages": json.dumps([
        {"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": calls}])}
    style = CallStyle(arg_order="signature", comments=True)
    target = dialog_messages(row, style=style)[-1]["content"]
    assert target == ('[# Get the weather forecast for a city, for some days\n'
                      'weather.get_forecast(city="Paris", days=2),\n'
                      '# List tide times\nweather.get_tides(port="Brest # 2"),\nbare()]')
    # each comment is the tool list's own line, so the name after it is a copy of what follows it there
    text = render_text(build_chat_template(render_system=False, first_sentence=True, description_first=True),
                       dialog_messages(row, style=style), tools)
    assert "# List tide times\nweather.get_tides(" in text.split("<|user|>")[0]
    for strict in (False, True):
        parsed = parse_calls(target, strict=strict)
        assert parsed.error is None and [c["name"] for c in parsed.calls] == [c["name"] for c in calls]
        assert parsed.calls[1]["arguments"] == {"port": "Brest # 2"}
    style.save(tmp_path)
    assert CallStyle.load(tmp_path) == style
    assert CallStyle.load(tmp_path / "elsewhere") == CallStyle()  # a folder toolkiln did not write: plain calls
    (tmp_path / CallStyle.FILE).write_text('{"comments": true, "colour": 1}')
    with pytest.raises(ValueError, match="colour"):
        CallStyle.load(tmp_path)


def test_call_style_follows_the_render_config():
    cfg = RenderConfig(tool_description="full", tool_description_chars=12, call_comments=True, arg_order="as_given")
    assert CallStyle.from_render(cfg) == CallStyle(arg_order="as_given", comments=True, first_sentence=False,
                                                   description_chars=12)


@pytest.mark.parametrize("comments", [True, False])
def test_call_openings_are_the_first_call_of_a_target_up_to_its_parenthesis(comments):
    from toolkiln.policy.render import call_openings

    tools = [TOOLS[0], {"type": "function", "function": {"name": "weather.get_tides", "description": "Tides. More."}},
             {"name": "bare"}, {"description": "no name: not callable"}]
    style = CallStyle(arg_order="signature", comments=comments)
    openings = dict(call_openings(tools, style))
    assert list(openings) == ["weather.get_forecast", "weather.get_tides", "bare"]
    for name, opening in openings.items():
        # the target turn of a dialog whose first call goes to this tool starts with exactly this text
        row = {"id": "d", "system": "", "target_turn": 1, "tools": json.dumps(tools), "messages": json.dumps([
            {"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"name": name, "arguments": {}},
                                                                                  {"name": "bare", "arguments": {}}]}])}
        target = dialog_messages(row, style=style)[-1]["content"]
        assert target.startswith(opening) and opening.endswith(f"{name}(")
    assert openings["weather.get_tides"] == ("[# Tides\nweather.get_tides(" if comments else "[weather.get_tides(")
    assert openings["bare"] == "[bare("  # no description: no comment line
