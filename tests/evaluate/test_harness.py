"""evaluate_dialogs / evaluate_bfcl with scripted outputs; run_evaluation and the stage on a tiny random checkpoint."""

from __future__ import annotations

import json
import math

import polars as pl
import torch
import pytest

from toolkiln.evaluate.config import EvaluateConfig
from toolkiln.evaluate.harness import HFGenerator, evaluate_bfcl, evaluate_dialogs, run_evaluation

CFG = EvaluateConfig(bfcl_categories=[], batch_size=2, max_new_tokens=8)


def scripted(outputs: dict[str, str | None], seen: list | None = None):
    """generate_fn answering by the last user turn (the dialogs' user turns are distinct)."""
    def gen(prompts):
        if seen is not None:
            seen.extend(prompts)
        return [outputs[[m for m in p["messages"] if m["role"] == "user"][-1]["content"]] for p in prompts]
    return gen


def users(df: pl.DataFrame) -> dict[str, str]:
    return {r["id"]: [m for m in json.loads(r["messages"]) if m["role"] == "user"][-1]["content"] for r in df.to_dicts()}


def test_gold_outputs_score_perfectly_and_prompts_stop_before_the_target(dialogs):
    u = users(dialogs)
    gold = {u[r["id"]]: r["target"] or "Sorry, I can't do that with these tools." for r in dialogs.to_dicts()}
    seen: list = []
    df, m = evaluate_dialogs(dialogs, scripted(gold, seen), CFG)
    assert df["correct"].all() and m["accuracy"] == 1.0 and m["partial_credit"] == 1.0
    assert "generation" not in m  # a scripted generate_fn reports no cost
    assert set(m["by_group"]) == {"single", "parallel", "dependent", "non_tool", "clarification"}
    dep = next(p for p in seen if p["messages"][-1]["role"] == "tool")  # dependent: ends with the tool result
    assert [t["name"] for t in dep["tools"]] == ["hotel.search", "hotel.book"]
    assert dep["messages"][0]["role"] == "system" and "hotel.book" not in dep["messages"][-2]["content"]


def test_error_types_and_partial_credit(dialogs):
    u = users(dialogs)
    by_id = {
        "d0": '[weather.get_forecast(city="Lyon", days=2)]',  # wrong value
        "d1": '```python\n[weather.get_forecast(city="Rome")]\n```',  # one of two parallel calls
        "d2": "[hotel.book(hotel_id=result['id'], nights=3)]",  # refused: subscript
        "d3": '[fx.convert(amount=1, source="EUR", target="USD")]',  # a call where none is due
        "d4": "[hotel.book(hotel_id=__import__('os').getpid(), nights=1)]",  # refused call attempt
    }
    df, m = evaluate_dialogs(dialogs, scripted({u[k]: v for k, v in by_id.items()}), CFG)
    got = dict(zip(df["id"], df["error_type"]))
    assert got == {"d0": "wrong_value", "d1": "wrong_count", "d2": "unparsable", "d3": "call_on_irrelevance",
                   "d4": "call_on_irrelevance"}
    credit = dict(zip(df["id"], df["partial_credit"]))
    assert 0 < credit["d0"] < 1 and credit["d1"] == pytest.approx(0.5) and credit["d2"] == 0 and credit["d3"] == 0
    assert m["accuracy"] == 0 and m["error_types"]["call_on_irrelevance"] == 2 and m["unparsable_rate"] == 0.2
    assert "Subscript" in df.filter(pl.col("id") == "d2")["parse_error"][0]


def test_a_text_reply_on_a_call_target_is_no_call_and_a_broken_call_list_unparsable(dialogs):
    u = users(dialogs)
    by_id = {
        "d0": "Which city do you mean, and for how many days?",  # answers in text where a call is due
        "d1": '[# Get the forecast\nweather.get_forecast(city="Rome", days=',  # a call list cut off mid-way
        "d2": "[hotel.book(hotel_id=result['id'], nights=3)]",  # a call attempt refused (subscript)
        "d3": "I can't do that with these tools.",  # text where text is due: correct
        "d4": "Which hotel do you mean?",
    }
    df, m = evaluate_dialogs(dialogs, scripted({u[k]: v for k, v in by_id.items()}), CFG)
    got = dict(zip(df["id"], df["error_type"]))
    assert got["d0"] == "no_call" and got["d1"] == "unparsable"
    assert df.filter(pl.col("id") == "d0")["detail"][0] == "a text reply where a call was expected"
    assert got["d2"] == "unparsable" and df.filter(pl.col("id").is_in(["d3", "d4"]))["correct"].all()
    assert m["error_types"] == {"no_call": 1, "unparsable": 2}


def test_a_broken_call_on_a_no_call_item_is_correct_but_counted_apart(dialogs):
    u = users(dialogs)
    by_id = {
        "d0": '[weather.get_forecast(city="Paris", days=2)]',
        "d1": "Which city?",
        "d2": "Which hotel?",
        "d3": "[fx.convert(amount=",  # BFCL: undecodable on a no-call item = no call = correct
        "d4": "Which hotel do you mean?",  # a real abstention
    }
    df, m = evaluate_dialogs(dialogs, scripted({u[k]: v for k, v in by_id.items()}), CFG)
    row = df.filter(pl.col("id") == "d3")
    assert row["correct"][0] and row["detail"][0].startswith("counted as no call")
    assert m["correct_unparsable"] == 1 and m["by_group"]["non_tool"]["correct_unparsable"] == 1
    assert m["by_group"]["clarification"]["correct_unparsable"] == 0 and df.filter(pl.col("id") == "d4")["correct"][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sorry, none of these tools can do that.", True),
        ("Which account (checking or savings) do you mean?", True),  # parentheses in prose are not a call
        ("[get_weather(city='Paris')]", False),
        ("Sure: get_weather(city='Paris')", False),
        ('{"name": "get_weather", "arguments": {}}', False),
        ("```python\nget_weather(\n```", False),
        ("   ", False),
        (None, False),
    ],
)
def test_is_text_reply(text, expected):
    from toolkiln.callparse import is_text_reply

    assert is_text_reply(text) is expected


def test_unanswered_and_bad_rows_are_recorded_not_raised(dialogs):
    bad = dialogs.with_columns(pl.when(pl.col("id") == "d0").then(pl.lit("[f(x=")).otherwise(pl.col("target"))
                               .alias("target"))
    bad = bad.with_columns(pl.when(pl.col("id") == "d1").then(pl.lit("{broken")).otherwise(pl.col("messages"))
                           .alias("messages"))
    df, m = evaluate_dialogs(bad, lambda prompts: [None] * len(prompts), CFG)
    got = dict(zip(df["id"], df["error_type"]))
    assert got["d0"] == got["d1"] == "bad_input" and got["d2"] == "not_generated"
    assert m["n_bad_input"] == 2 and m["n"] == 3 and m["error_types"] == {"not_generated": 3}


def test_generate_fn_must_answer_every_prompt(dialogs):
    with pytest.raises(ValueError, match="returned 1 texts for 5"):
        evaluate_dialogs(dialogs, lambda prompts: ["[]"], CFG)


def test_bfcl_slice_with_scripted_answers():
    from toolkiln.calls import format_calls
    from toolkiln.evaluate import bfcl
    from toolkiln.evaluate.agreement import answer_calls

    cfg = EvaluateConfig(bfcl_categories=["simple_python", "irrelevance"], bfcl_limit=3)
    golds = [format_calls(answer_calls(e["ground_truth"])) for e in bfcl.load_category("simple_python", 3, seed=0)]
    irrelevant_call = f"[{bfcl.load_category('irrelevance', 3, seed=0)[0]['function'][0]['name']}()]"

    def gen(prompts):  # prompts come category by category, in the configured order
        assert all(p["tools"] is None and p["messages"][0]["content"].startswith("You are an expert") for p in prompts)
        return golds[:2] + [golds[2][:-3]] + [irrelevant_call, "I cannot help with that.", "[]"]

    df, m = evaluate_bfcl(cfg.bfcl_categories, gen, cfg, seed=0)
    assert df.height == 6 and list(m["by_group"]) == ["irrelevance", "simple_python"]
    assert m["by_group"]["simple_python"]["error_types"] == {"unparsable": 1}  # the truncated third answer
    assert m["by_group"]["simple_python"]["accuracy"] == pytest.approx(2 / 3)
    assert m["by_group"]["irrelevance"]["error_types"] == {"call_on_irrelevance": 1}


def test_hf_generator_batches_like_single_prompts(tiny_checkpoint, dialogs):
    from toolkiln.evaluate.harness import dialog_prompt

    prompts = [dialog_prompt(r) for r in dialogs.to_dicts()]
    one = HFGenerator(tiny_checkpoint, batch_size=1, max_new_tokens=6)(prompts)
    many = HFGenerator(tiny_checkpoint, batch_size=5, max_new_tokens=6)(prompts)
    assert one == many and all(isinstance(t, str) for t in one)  # left padding leaves each prompt's output unchanged
    short = HFGenerator(tiny_checkpoint, batch_size=2, max_new_tokens=6, max_prompt_tokens=150)
    outs = short(prompts)
    assert any(o is None for o in outs) and set(short.skipped) == {i for i, o in enumerate(outs) if o is None}


def test_run_evaluation_end_to_end_on_a_tiny_checkpoint(tiny_checkpoint, dialogs):
    cfg = EvaluateConfig(batch_size=4, max_new_tokens=8, bfcl_categories=["simple_python", "irrelevance"],
                         bfcl_limit=2, max_prompt_tokens=4000)
    rep = run_evaluation(tiny_checkpoint, dialogs, cfg, seed=0)
    assert rep.dialogs.height == 5 and rep.bfcl.height == 4
    assert set(rep.metrics) == {"synthetic", "bfcl"}
    assert rep.metrics["bfcl"]["by_group"].keys() == {"simple_python", "irrelevance"}
    assert rep.dialogs["output"].null_count() == 0  # every prompt fits the tiny model's context
    # what each part's generation cost, counted for its own prompts (budgets are read off these)
    gen = {part: rep.metrics[part]["generation"] for part in ("synthetic", "bfcl")}
    assert gen["synthetic"]["prompts"] == 5 and gen["bfcl"]["prompts"] == 4
    assert all(g["seconds"] > 0 and 0 < g["new_tokens"] <= g["prompts"] * 8 for g in gen.values())
    # a random model rarely stops within 8 tokens: the rows that ran out of budget are counted
    assert all(0 < g["truncated"] <= g["prompts"] for g in gen.values())
    # A random model writes no valid call: call items fail, (ir)relevance items pass unless it calls by chance.
    assert not rep.dialogs.filter(pl.col("group").is_in(["single", "parallel", "dependent"]))["correct"].any()


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        HFGenerator(tmp_path)


def test_stage_writes_outputs_and_tracks(tiny_checkpoint, dialogs, tmp_path, monkeypatch):
    import yaml

    from toolkiln.io import read_json

    monkeypatch.chdir(tmp_path)
    dialogs.write_parquet(tmp_path / "test.parquet")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_dir": str(tmp_path / "art")},
        "evaluate": {"batch_size": 4, "max_new_tokens": 4, "bfcl_categories": ["parallel"], "bfcl_limit": 1}}))
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("evaluate_stage", Path(__file__).parents[2] / "stages" / "evaluate.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    stage.main(["--params", "params.yaml", "--checkpoint", str(tiny_checkpoint), "--dialogs", "test.parquet",
                "--out-dir", "out", "--metrics", "out/metrics.json", "--tag", "unit"])
    m = read_json(tmp_path / "out" / "metrics.json")
    assert m["tag"] == "unit" and m["synthetic"]["n"] == 5 and m["bfcl"]["by_group"]["parallel"]["n"] == 1
    assert pl.read_parquet(tmp_path / "out" / "dialogs.parquet").height == 5
    assert (tmp_path / "out" / "accuracy.png").stat().st_size > 0
    assert (tmp_path / "out" / "errors.csv").read_text().splitlines()[0].startswith("part,group,n,accuracy")

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["toolkiln"], filter_string="tags.`toolkiln.eval_tag` = 'unit'")
    assert len(runs) == 1 and runs.iloc[0]["metrics.synthetic.n"] == 5


def test_run_evaluation_writes_earlier_calls_in_the_checkpoints_call_style(tiny_checkpoint, dialogs, tmp_path,
                                                                           monkeypatch):
    import shutil

    from toolkiln.policy.render import CallStyle

    seen: list[dict] = []

    def record(self, prompts):
        seen.extend(prompts)
        return [""] * len(prompts)

    monkeypatch.setattr(HFGenerator, "__call__", record)
    cfg = EvaluateConfig(bfcl_categories=[], max_prompt_tokens=4000)

    def history_calls(folder) -> list[str]:
        seen.clear()
        run_evaluation(folder, dialogs, cfg)
        return [m["content"] for p in seen for m in p["messages"][:-1] if m["role"] == "assistant"
                and m["content"].startswith("[")]

    plain = history_calls(tiny_checkpoint)
    assert plain and not any(c.startswith("[# ") for c in plain)  # no style file: plain calls
    styled = tmp_path / "styled"
    shutil.copytree(tiny_checkpoint, styled)
    CallStyle(comments=True).save(styled)
    commented = history_calls(styled)
    assert len(commented) == len(plain) and all(c.startswith("[# ") for c in commented)


def test_call_list_end_stops_rows_when_their_list_closes(tiny_checkpoint):
    from transformers import AutoTokenizer

    from toolkiln.evaluate.harness import CallListEnd

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    stop = CallListEnd(tok)
    texts = ['[f(a="x]y", b=[1, 2]), g()] trailing', "I cannot help with that. [", '  [f(s="\\")"), h(x={"k": [1]})]']
    ends = []
    for text in texts:
        stop.state = None
        ids = tok(text, add_special_tokens=False)["input_ids"]
        done_at = None
        for k in range(len(ids)):
            if bool(stop(torch.tensor([ids[:k + 1]]), None)[0]):
                done_at = tok.decode(ids[:k + 1])
                break
        ends.append(done_at)
    # brackets inside strings and nested lists do not end the list; prose is left to EOS
    assert ends == ['[f(a="x]y", b=[1, 2]), g()]', None, '  [f(s="\\")"), h(x={"k": [1]})]']


def test_prefix_cache_and_call_end_keep_plain_generate_outputs(tiny_checkpoint, dialogs):
    from toolkiln.evaluate import bfcl
    from toolkiln.evaluate.harness import common_prefix, dialog_prompt

    prompts = [dialog_prompt(r) for r in dialogs.to_dicts()]
    prompts += [{"messages": bfcl.prompt_messages(e), "tools": None}
                for e in bfcl.load_category("simple_python", limit=3, seed=0)]
    plain = HFGenerator(tiny_checkpoint, batch_size=3, max_new_tokens=10, prefix_cache=False, stop_at_call_end=False)
    fast = HFGenerator(tiny_checkpoint, batch_size=3, max_new_tokens=10, model=plain.model, tokenizer=plain.tok)
    for subset in (prompts[:5], prompts[5:]):
        assert fast(subset) == plain(subset)
    # BFCL's instructions are a long shared prefix: computed once, reused by every batch
    ids = [plain.tok(plain.render(p), add_special_tokens=False)["input_ids"] for p in prompts[5:]]
    assert fast.stats["shared_prefix_tokens"] == min(common_prefix(ids), min(map(len, ids)) - 1) >= 100
    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2 and common_prefix([]) == 0


def test_prompt_lookup_decoding_keeps_greedy_outputs(tiny_checkpoint, dialogs):
    from toolkiln.evaluate import bfcl
    from toolkiln.evaluate.harness import dialog_prompt

    prompts = [dialog_prompt(r) for r in dialogs.to_dicts()]
    prompts += [{"messages": bfcl.prompt_messages(e), "tools": None}
                for e in bfcl.load_category("simple_python", limit=3, seed=0)]
    for stop in (False, True):
        ref = HFGenerator(tiny_checkpoint, batch_size=3, max_new_tokens=24, stop_at_call_end=stop)
        want = ref(prompts[:5]) + ref(prompts[5:])
        for k in (1, 5):
            look = HFGenerator(tiny_checkpoint, batch_size=3, max_new_tokens=24, stop_at_call_end=stop,
                               prompt_lookup=k, model=ref.model, tokenizer=ref.tok)
            assert look(prompts[:5]) + look(prompts[5:]) == want, (stop, k)
            counts = look.stats["prompt_lookup"]
            # drafts were tried and some kept, so fewer forward passes than new tokens (a budget-bound run)
            assert counts["drafted"] > 0 and 0 < counts["accepted"] <= counts["drafted"]
            assert counts["forward_passes"] < look.stats["new_tokens"] + 2
    with pytest.raises(ValueError, match="prompt_lookup > 0 cannot be combined with constrain_names"):
        HFGenerator(tiny_checkpoint, prompt_lookup=4, constrain_names=True, model=ref.model, tokenizer=ref.tok)


def test_rank_tools_rewrites_a_call_list_from_the_likeliest_opening(tiny_checkpoint, dialogs):
    from toolkiln.evaluate.harness import dialog_prompt
    from toolkiln.policy.render import CallStyle, call_openings

    gen = HFGenerator(tiny_checkpoint, batch_size=2, max_new_tokens=6, rank_tools=True, dtype="float32")
    prompts = [dialog_prompt(r) for r in dialogs.to_dicts()]
    ids = [gen.tok(gen.render(p), add_special_tokens=False)["input_ids"] for p in prompts]
    multi = [i for i, p in enumerate(prompts) if len(p["tools"] or []) >= 2]
    assert multi and len(multi) < len(prompts)  # the fixture has both kinds
    # every row answers with a call list no opening starts, but one: a text answer stays as it is
    out = ["[zz(a=1)]"] * len(prompts)
    out[multi[0]] = "Which hotel do you mean?"
    if len(multi) > 2:
        out[multi[-1]] = "[# nothing to call here\n]"  # a list without a call is the decision not to call
    kept = {multi[0], *([multi[-1]] if len(multi) > 2 else [])}
    counts = {"new_tokens": 0, "truncated": 0}
    stats = gen._rank_first_calls(prompts, ids, list(range(len(prompts))), out, counts)
    assert stats == {"ranked": len(multi) - len(kept), "changed": len(multi) - len(kept)} and counts["new_tokens"] > 0
    assert out[multi[0]] == "Which hotel do you mean?"
    for i in range(len(prompts)):
        if i not in multi:
            assert out[i] == "[zz(a=1)]"  # one offered tool: nothing to choose
    for i in (i for i in multi if i not in kept):
        ops = call_openings(prompts[i]["tools"], CallStyle())
        # the winner by an uncached forward over prompt + opening, summed over the opening's tokens
        best, best_lp = None, -math.inf
        for _, text in ops:
            cont = gen.tok(text, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = gen.model(input_ids=torch.tensor([ids[i] + cont])).logits.float().log_softmax(-1)[0]
            lp = sum(float(logp[len(ids[i]) + j - 1, t]) for j, t in enumerate(cont))
            if lp > best_lp:
                best, best_lp = text, lp
        assert out[i].startswith(best[:-1]) and out[i] != "[zz(a=1)]"


def test_call_bias_moves_only_the_call_or_text_decision(tiny_checkpoint, dialogs):
    from toolkiln.evaluate.harness import dialog_prompt

    prompts = [dialog_prompt(r) for r in dialogs.to_dicts()]
    plain = HFGenerator(tiny_checkpoint, batch_size=2, max_new_tokens=8, stop_at_call_end=False)
    base = plain(prompts)
    assert not any(o.startswith("[") for o in base)  # the random model never opens a call list by itself
    calls = HFGenerator(tiny_checkpoint, batch_size=2, max_new_tokens=8, stop_at_call_end=False, call_bias=50.0,
                        model=plain.model, tokenizer=plain.tok)(prompts)
    assert all(o.startswith("[") for o in calls)
    # only the first position is biased: what follows the "[" is what greedy decoding writes after it
    x = torch.tensor([plain.tok(plain.render(prompts[0]) + "[", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        rest = plain.model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=7,
                                    pad_token_id=plain.tok.pad_token_id, eos_token_id=plain.tok.eos_token_id)
    assert calls[0] == ("[" + plain.tok.decode(rest[0, x.shape[1]:], skip_special_tokens=True)).strip()
    with pytest.raises(ValueError, match="cannot be combined with call_bias"):
        HFGenerator(tiny_checkpoint, prompt_lookup=2, call_bias=1.0, model=plain.model, tokenizer=plain.tok)


def test_ngram_drafts_continue_the_latest_earlier_occurrence():
    from toolkiln.evaluate.harness import NgramDrafts

    d = NgramDrafts([5, 6, 7, 8, 1, 5, 6, 9, 2, 5, 6])
    assert d.draft(3) == [9, 2, 5]  # "5 6" last seen before the end at index 5-6, followed by 9 2 5
    d.extend([7])
    assert d.draft(2) == [8, 1]  # the longest suffix seen before wins: "5 6 7", at the start
    assert NgramDrafts([1, 2, 3]).draft(4) == []  # the suffix "3" (or "2 3") never occurred before
    assert NgramDrafts([4, 4, 4]).draft(5) == [4]  # never its own match: "4 4" ended at index 2 -> continues "4"


def test_unseen_target_selection_and_per_type_sample(dialogs):
    from toolkiln.evaluate.harness import select_dialogs

    kinds = ["unseen", "seen", "partly_seen", "no_call", None]
    rows = [{**r, "provenance": json.dumps({"split_target": k} if k else {})}
            for r, k in zip(dialogs.to_dicts(), kinds)]
    unseen = select_dialogs(rows, EvaluateConfig(targets="unseen"), seed=0)
    assert [r["id"] for r in unseen] == [rows[0]["id"], rows[3]["id"], rows[4]["id"]]
    assert len(select_dialogs(rows, EvaluateConfig(targets="all"), seed=0)) == 5
    many = rows * 4
    sample = select_dialogs(many, EvaluateConfig(targets="all", samples_per_type=2), seed=3)
    assert sorted(r["type"] for r in sample) == sorted(list({r["type"] for r in rows}) * 2)
    assert sample == select_dialogs(many, EvaluateConfig(targets="all", samples_per_type=2), seed=3)
    df, metrics = evaluate_dialogs(pl.DataFrame(rows, schema=dialogs.schema), scripted(
        {u: "" for u in users(dialogs).values()}), EvaluateConfig(targets="all", bfcl_categories=[]))
    assert set(metrics["by_split_target"]) == {"unseen", "seen", "partly_seen", "no_call"}


def _force_first(token_id):
    """A logits processor that makes the first new token ``token_id`` (the test's stand-in for a model that
    chose to call), so the constraint on what follows can be seen on a random model."""
    state = {}

    def proc(input_ids, scores):
        start = state.setdefault("start", input_ids.shape[1])
        if input_ids.shape[1] == start:
            scores[:] = float("-inf")
            scores[:, token_id] = 0.0
        return scores

    return proc


def test_tool_name_constraint_keeps_every_name_to_the_prompts_tools(tiny_checkpoint):
    import re

    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from toolkiln.evaluate.harness import ToolNameConstraint

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    names = [["weather.get_forecast", "fx.convert"], ["hotel.book"]]
    x = torch.tensor([tok("Q: ", add_special_tokens=False)["input_ids"]] * 2)
    bracket = tok.convert_tokens_to_ids("[")
    outs = {}
    for constrained in (False, True):
        proc = ToolNameConstraint(tok)
        proc.reset(names)
        chain = [_force_first(bracket)] + ([proc] if constrained else [])
        torch.manual_seed(0)
        gen = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=True, top_k=0,
                             max_new_tokens=24, logits_processor=LogitsProcessorList(chain), pad_token_id=0,
                             eos_token_id=1)
        outs[constrained] = tok.batch_decode(gen[:, x.shape[1]:], skip_special_tokens=True)
    for out, ns in zip(outs[True], names):
        assert re.match(r"\[\s?(%s)\(" % "|".join(map(re.escape, ns)), out), out
    # the random model left alone writes no such name (so the assertion above is the constraint's doing)
    assert not any(re.match(r"\[\s?(weather\.get_forecast|fx\.convert|hotel\.book)\(", o) for o in outs[False])


def test_tool_name_constraint_follows_the_call_list_grammar(tiny_checkpoint):
    from transformers import AutoTokenizer

    from toolkiln.evaluate.harness import ToolNameConstraint, prompt_tool_names

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    proc = ToolNameConstraint(tok)

    def state_after(text):
        st = [None, 0, None, False, None]
        proc._feed(st, text)
        return st[4]

    # a name is being written after "[" and after a top-level ", ", never inside arguments, strings or prose
    assert state_after("[") == "" and state_after("[fx.con") == "fx.con"
    assert state_after('[fx.convert(amount=1, source="a, b"), ') == " "
    assert state_after("[fx.convert(amount=[1, 2]") is None and state_after("I think [") is None
    assert state_after('[f(s="),"') is None
    allowed = {proc.text[i] for i in proc.allowed(" ", ["fx.convert(", "hotel.book("])}
    assert allowed == {"f", "h"}  # one byte per token here; the space is already written
    assert {proc.text[i] for i in proc.allowed("fx.conv", ["fx.convert(", "hotel.book("])} == {"e"}
    assert {proc.text[i] for i in proc.allowed("fx.convert", ["fx.convert("])} == {"("}
    assert prompt_tool_names({"tools": [{"type": "function", "function": {"name": "a"}}, {"name": "b"}]}) == ["a", "b"]
    assert prompt_tool_names({"tools": None, "call_names": ["c"]}) == ["c"]
