import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures import make_dialogs  # noqa: E402

from toolkiln.policy.config import PolicyConfig, ScratchModelConfig, TokenizerConfig  # noqa: E402

TINY = ScratchModelConfig(hidden_size=32, n_layers=1, n_heads=2, n_kv_heads=2, intermediate_size=64)


@pytest.fixture(scope="session")
def dialogs():
    return make_dialogs(60, seed=1)


@pytest.fixture(scope="session")
def policy_cfg():
    return PolicyConfig(scratch=TINY, tokenizer=TokenizerConfig(vocab_size=600, min_frequency=1))


@pytest.fixture(scope="session")
def tokenizer(dialogs, policy_cfg):
    import torch

    torch.set_num_threads(1)
    from toolkiln.policy.model import build_tokenizer

    return build_tokenizer(policy_cfg, dialogs.to_dicts())
