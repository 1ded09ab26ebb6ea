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
