"""params.yaml -> typed configs: bad files fail before any work, naming key, value and expectation."""

import pydantic
import pytest
import yaml

from toolkiln.config import ParamsError, deep_merge, load_params, main


def write(tmp_path, text):
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def test_repo_params_load(repo_root):
    p = load_params(repo_root / "params.yaml")
    assert p.synth.n_apis >= 26507
    assert p.llm.backend == "simulator"


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ParamsError, match=r"synthh: unknown key"):
        load_params(write(tmp_path, "synthh: {n_apis: 3}\n"))


def test_unknown_nested_key_names_full_path(tmp_path):
    with pytest.raises(ParamsError, match=r"synth\.dedup\.thresh: unknown key"):
        load_params(write(tmp_path, "synth: {dedup: {thresh: 0.5}}\n"))


def test_wrong_type_names_value_and_expectation(tmp_path):
    with pytest.raises(ParamsError) as e:
        load_params(write(tmp_path, "synth: {n_apis: 'many'}\n"))
    msg = str(e.value)
    assert "synth.n_apis" in msg and "'many' (str)" in msg and "integer" in msg


def test_no_silent_string_to_int_coercion(tmp_path):
    with pytest.raises(ParamsError, match=r"synth\.n_apis: got '300' \(str\)"):
        load_params(write(tmp_path, "synth: {n_apis: '300'}\n"))


def test_out_of_range(tmp_path):
    with pytest.raises(ParamsError, match=r"synth\.n_apis: got -5 \(int\); expected .*greater than or equal to 1"):
        load_params(write(tmp_path, "synth: {n_apis: -5}\n"))


def test_bad_enum_choice(tmp_path):
    with pytest.raises(ParamsError, match=r"llm\.backend: got 'gpt' \(str\); expected 'simulator', 'openai' or 'transformers'"):
        load_params(write(tmp_path, "llm: {backend: gpt}\n"))


def test_cross_field_validator(tmp_path):
    with pytest.raises(ParamsError, match=r"synth: .*diversity_weights: got \[0.5, 0.5\]; expected 3"):
        load_params(write(tmp_path, "synth: {diversity_weights: [0.5, 0.5]}\n"))


def test_malformed_yaml_reports_line(tmp_path):
    with pytest.raises(ParamsError, match=r"invalid YAML at line 2, column 11: mapping values"):
        load_params(write(tmp_path, "synth:\n  n_apis: : 3\n"))


def test_top_level_not_mapping(tmp_path):
    with pytest.raises(ParamsError, match=r"top level must be a mapping"):
        load_params(write(tmp_path, "- a\n- b\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match=r"cannot read params file"):
        load_params(tmp_path / "nope.yaml")


def test_frozen_configs(repo_root):
    p = load_params(repo_root / "params.yaml")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        p.synth.n_apis = 3


def test_profile_merge_and_cli(tmp_path, repo_root):
    base = {"seed": 1, "synth": {"n_apis": 100, "dedup": {"threshold": 0.8}}}
    merged = deep_merge(base, {"synth": {"dedup": {"num_perm": 32}}})
    assert merged["synth"] == {"n_apis": 100, "dedup": {"threshold": 0.8, "num_perm": 32}}
    assert base["synth"]["dedup"] == {"threshold": 0.8}  # inputs untouched
    out = tmp_path / "merged.yaml"
    assert main(["merge", str(repo_root / "params.yaml"), str(repo_root / "profiles" / "smoke.yaml"), "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["synth"]["n_apis"] < 26507
    bad = write(tmp_path, "synth: {n_apis: 0}\n")
    assert main(["check", str(bad)]) == 2
