"""The preference update with TRL (SimPO through CPOTrainer, DPO) on a tiny checkpoint; the merged result reloads."""

import polars as pl
import pytest
import torch

from toolkiln.itool.config import PreferenceConfig
from toolkiln.itool.pairs import pairs_frame
from toolkiln.itool.preference import preference_round, preference_rows, save_round

RIGHT = '[weather.get_forecast(city="Paris", days=3)]'
WRONG = '[weather.get_forecast(city="Rome", days=3)]'


def _pairs(prompt: str, n: int = 4) -> pl.DataFrame:
    prefix = "[weather.get_forecast(city="
    return pairs_frame(
        [
            {
                "dialog_id": f"d{i}",
                "type": "single",
                "round": 1,
                "seed": 0,
                "prompt": prompt,
                "prefix": prefix,
                "chosen": '"Paris", ',
                "rejected": '"Rome", ',
                "chosen_rollout": RIGHT,
                "rejected_rollout": WRONG,
                "chosen_value": 1.0,
                "rejected_value": 0.67,
                "gap": 0.33,
                "chosen_visits": 2,
                "rejected_visits": 1,
                "depth": 3,
                "overlap": 0.6,
                "gold": RIGHT,
            }
            for i in range(n)
        ]
    )


def test_pair_rows_in_both_completion_modes():
    pairs = _pairs("P:")
    frag = preference_rows(pairs, "fragment")[0]
    assert frag == {"prompt": "P:[weather.get_forecast(city=", "chosen": '"Paris", ', "rejected": '"Rome", '}
    roll = preference_rows(pairs, "rollout")[0]
    assert roll["chosen"] == '"Paris", days=3)]' and roll["rejected"] == '"Rome", days=3)]'
    bad = pairs.with_columns(pl.lit("[other()]").alias("chosen_rollout"))
    with pytest.raises(ValueError, match="chosen rollout does not continue"):
        preference_rows(bad, "rollout")


@pytest.mark.parametrize("algorithm", ["simpo", "dpo"])
def test_preference_round_trains_lora_and_saves_a_plain_checkpoint(tiny_policy, train_dialogs, tmp_path, algorithm):
    import torch
    from transformers import AutoModelForCausalLM

    from toolkiln.itool.deficiency import render_prompts
    from toolkiln.itool.rounds import load_checkpoint

    folder, cfg = tiny_policy
    _, tok, _ = load_checkpoint(folder, cfg)
    (p,) = render_prompts(train_dialogs.head(1).to_dicts(), tok, cfg.render)[0]
    pcfg = PreferenceConfig(
        algorithm=algorithm,
        batch_size=2,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        beta=2.5 if algorithm == "simpo" else 0.1,
        lora_r=4,
        lora_alpha=8,
    )
    res, tok = preference_round(_pairs(p.text), folder, cfg, pcfg, seed=0, round_=1)
    assert res.metrics["train_steps"] == 2 and res.metrics["algorithm"] == algorithm and res.metrics["round"] == 1
    assert res.curves and all("loss" in c for c in res.curves if c["step"] > 0)
    assert not hasattr(res.model, "peft_config")  # merged
    out = tmp_path / f"round_{algorithm}"
    save_round(res.model, tok, out, folder)
    reloaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    before = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    changed = [
        n for (n, a), (_, b) in zip(reloaded.named_parameters(), before.named_parameters()) if not torch.equal(a, b)
    ]
    assert changed and all("proj" in n for n in changed)  # only the adapted projections moved
    assert (out / "toolkiln_call_style.json").read_text() == (folder / "toolkiln_call_style.json").read_text()


def test_no_pairs_is_a_clear_error(tiny_policy):
    folder, cfg = tiny_policy
    with pytest.raises(ValueError, match="0 preference pairs"):
        preference_round(pairs_frame([]), folder, cfg, PreferenceConfig(), seed=0, round_=1)
    # allowed only when asked for (itool.pairs.min_pairs: 0): the policy comes back untouched, recorded as such
    res, _ = preference_round(pairs_frame([]), folder, cfg, PreferenceConfig(), seed=0, round_=1, allow_empty=True)
    assert res.metrics["updated"] is False and res.metrics["pairs"] == 0 and res.curves == []
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in before.items())


def test_balance_pairs_caps_text_preferring_pairs_smallest_gap_first():
    from toolkiln.itool.preference import balance_pairs

    base = _pairs("P:", n=8).with_columns(pl.Series("gap", [0.2, 0.9, 0.5, 0.3, 0.8, 0.4, 0.6, 0.7]))
    text = {0, 1, 2, 3, 4, 5}  # six pairs prefer "Which city?" (a text reply), two a call
    pairs = base.with_columns(
        pl.Series("prefix", ["" if i in text else p for i, p in enumerate(base["prefix"])]),
        pl.Series("chosen", ["Which city?" if i in text else c for i, c in enumerate(base["chosen"])]),
        pl.Series("chosen_rollout", ["Which city?" if i in text else RIGHT for i in range(8)]),
        pl.Series("rejected_rollout", [WRONG] * 8),
        pl.Series("chosen_value", [1.0] * 8),
        pl.Series("rejected_value", [1.0 - g for g in [0.2, 0.9, 0.5, 0.3, 0.8, 0.4, 0.6, 0.7]]),
    )
    kept, counts = balance_pairs(pairs, 0.5)
    # two call pairs allow two text pairs at a 50% share: the two widest gaps (d1: 0.9, d4: 0.8), order kept
    assert kept["dialog_id"].to_list() == ["d1", "d4", "d6", "d7"]
    assert counts == {"pairs_text": 2, "pairs_call": 2, "pairs_dropped": 4}
    assert balance_pairs(pairs, 0.0)[0]["dialog_id"].to_list() == ["d6", "d7"]
    everything, counts = balance_pairs(pairs, 1.0)
    assert everything.height == 8 and counts["pairs_dropped"] == 0
    assert balance_pairs(pairs, 0.75)[1]["pairs_text"] == 6  # 6 / 8 = 0.75: all fit


def test_a_round_of_only_text_pairs_with_no_text_share_is_a_clear_error(tiny_policy):
    pairs = _pairs("P:").with_columns(
        pl.lit("").alias("prefix"), pl.lit("Which city?").alias("chosen"), pl.lit("Which city?").alias("chosen_rollout")
    )
    folder, cfg = tiny_policy
    with pytest.raises(ValueError, match="max_text_share 0.0 left 0 of 4 pairs"):
        preference_round(pairs, folder, cfg, PreferenceConfig(max_text_share=0.0), seed=0, round_=1)


@pytest.mark.parametrize("algorithm", ["simpo", "dpo"])
def test_sft_weight_adds_the_chosen_nll_to_the_loss(tiny_policy, train_dialogs, algorithm):
    from toolkiln.itool.deficiency import render_prompts
    from toolkiln.itool.rounds import load_checkpoint

    folder, cfg = tiny_policy
    _, tok, _ = load_checkpoint(folder, cfg)
    (p,) = render_prompts(train_dialogs.head(1).to_dicts(), tok, cfg.render)[0]
    losses = {}
    for w in (0.0, 1.0):
        pcfg = PreferenceConfig(
            algorithm=algorithm, batch_size=2, max_steps=1, lora_r=4, lora_alpha=8, sft_weight=w, logging_steps=1
        )
        res, _ = preference_round(_pairs(p.text, n=2), folder, cfg, pcfg, seed=0, round_=1)
        losses[w] = res.metrics["train_loss_mean"]
        assert res.metrics["sft_weight"] == w
    # one step from the same weights: the NLL of the chosen completion (> 0 for a random model) comes on top
    assert losses[1.0] > losses[0.0] + 0.5
