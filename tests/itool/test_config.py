"""The itool params section: iTool's defaults, and bad values fail before any work with the key named."""

import pytest
import yaml

from toolkiln.config import ParamsError, load_params


def test_repo_params_carry_itools_defaults(repo_root):
    it = load_params(repo_root / "params.yaml").itool
    assert (it.deficiency.ratio, it.deficiency.mode) == (0.3, "perplexity")
    assert (it.mcts.c, it.mcts.width, it.mcts.depth, it.mcts.iterations, it.mcts.temperature) == (1.0, 3, 3, 5, 1.5)
    assert (it.pairs.min_gap, it.pairs.max_overlap, it.pairs.min_chosen) == (0.1, 0.95, -0.3)
    assert (it.preference.algorithm, it.preference.beta, it.preference.gamma) == ("simpo", 2.5, 0.5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"deficiency": {"mode": "random"}}, "itool.deficiency.mode"),
        ({"mcts": {"width": 1}}, "itool.mcts.width: got 1"),
        ({"preference": {"algorithm": "ppo"}}, "itool.preference.algorithm"),
        ({"pairs": {"gap": 0.2}}, "itool.pairs.gap: unknown key"),
    ],
)
def test_bad_itool_params_name_the_key(tmp_path, override, message):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"itool": override}))
    with pytest.raises(ParamsError, match=message):
        load_params(p)
