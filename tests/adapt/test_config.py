import pytest

from toolkiln.adapt.config import ADNTConfig
from toolkiln.config import ParamsError, load_params, params_from_dict


def test_defaults_equal_params_yaml(repo_root):
    assert load_params(repo_root / "params.yaml").adnt == ADNTConfig()


def test_smoke_profile_is_valid(repo_root):
    p = load_params(repo_root / "params.yaml", profiles=(repo_root / "profiles" / "smoke.adnt.yaml",))
    assert p.adnt.protocol.seeds == [0] and p.adnt.train.steps < ADNTConfig().train.steps


@pytest.mark.parametrize("section, expect", [
    ({"data": {"n_train": 1500, "n_test": 500}}, "expected <= 1797"),
    ({"data": {"domains": ["mnist", "mnist"]}}, "at least 2 distinct domains"),
    ({"protocol": {"methods": ["adnt", "fixmatch"]}}, "adnt.protocol.methods.1"),
    ({"method": {"attention": "reverse"}}, "adnt.method.attention"),
    ({"method": {"pseudo_threshold": 1.5}}, "adnt.method.pseudo_threshold"),
    ({"train": {"lr": "fast"}}, "adnt.train.lr"),
    ({"typo": 1}, "adnt.typo: unknown key"),
])
def test_bad_values_are_named(section, expect):
    with pytest.raises(ParamsError, match=expect.replace(".", r"\.")):
        params_from_dict({"adnt": section}, "params.yaml")
