"""A tiny policy checkpoint for the round tests: the project's own from-scratch path (tokenizer + Llama), saved as a folder."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "policy"))

from fixtures import make_dialogs  # noqa: E402

from toolkiln.policy.config import PolicyConfig, ScratchModelConfig, TokenizerConfig  # noqa: E402

TINY = ScratchModelConfig(hidden_size=32, n_layers=1, n_heads=2, n_kv_heads=2, intermediate_size=64)


@pytest.fixture(scope="session")
def train_dialogs():
    return make_dialogs(40, seed=3)


@pytest.fixture(scope="session")
def policy_cfg():
    return PolicyConfig(scratch=TINY, tokenizer=TokenizerConfig(vocab_size=600, min_frequency=1))


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory, train_dialogs, policy_cfg):
    """(checkpoint folder, PolicyConfig that loads it) of a random tiny policy."""
    import torch

    from toolkiln.policy.model import build_tokenizer, save_policy, scratch_model

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("itool") / "warmup"
    tok = build_tokenizer(policy_cfg, train_dialogs.to_dicts())
    save_policy(scratch_model(TINY, tok, seed=0), tok, folder, policy_cfg)
    return folder, policy_cfg.model_copy(update={"base_model": str(folder)})
