import numpy as np
import torch

from toolkiln.adapt.config import ModelConfig
from toolkiln.adapt.nets import DomainDiscriminator, grad_reverse, make_backbone, to_tensor
from toolkiln.adapt.pseudo import PseudoLabels, pseudo_labels_from_logits, refresh, with_symmetric_noise


def test_backbone_shapes_for_both_image_sizes():
    for size in (28, 32):
        F, C = make_backbone(ModelConfig(feature_dim=24), size)
        h = F(torch.zeros(3, 3, size, size))
        assert h.shape == (3, 24) and C(h).shape == (3, 10)
        assert DomainDiscriminator(24)(h).shape == (3,)


def test_grad_reverse_negates_and_scales():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -0.5))


def test_to_tensor_layout_and_range():
    X = np.zeros((2, 28, 28, 3), np.uint8)
    X[0, 0, 0, 2] = 255
    t = to_tensor(X)
    assert t.shape == (2, 3, 28, 28) and t.min() == -1.0 and t[0, 2, 0, 0] == 1.0


def test_pseudo_labels_threshold_coverage_precision():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [1.0, 1.0, 1.0], [0, 0, 5.0]])
    pl = pseudo_labels_from_logits(logits, 0.9)
    assert pl.label.tolist() == [0, 1, 0, 2]
    assert pl.mask.tolist() == [True, True, False, True]
    assert pl.coverage == 0.75
    assert abs(pl.precision(torch.tensor([0, 2, 0, 2])) - 2 / 3) < 1e-6


def test_refresh_runs_in_eval_mode_and_restores_training():
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = torch.nn.Dropout(0.9)
            self.seen = []

        def forward(self, x):
            self.seen.append(self.training)
            return self.drop(torch.ones(len(x), 10)) + torch.arange(10.0)

    m = Probe().train()
    pl = refresh(m, torch.zeros(7, 1), 0.0, batch=3)
    assert m.seen == [False] * 3 and m.training  # 3 batches, all in eval mode; mode restored
    assert (pl.label == 9).all()  # dropout off: deterministic argmax


def test_symmetric_noise_flips_the_asked_share_of_kept_labels_to_other_classes():
    n = 20000
    label = torch.arange(n) % 10
    mask = torch.arange(n) % 4 != 0  # a quarter not kept
    pl = PseudoLabels(label, torch.ones(n), mask)
    noisy = with_symmetric_noise(pl, 0.4, 10, torch.Generator().manual_seed(3))
    flipped = noisy.label != label
    assert not flipped[~mask].any()  # labels that are not used stay as they are
    assert abs(float(flipped[mask].float().mean()) - 0.4) < 0.02
    # uniform over the 9 wrong classes
    shift = ((noisy.label - label) % 10)[flipped]
    counts = torch.bincount(shift, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * counts[1:].float().mean()
    again = with_symmetric_noise(pl, 0.4, 10, torch.Generator().manual_seed(3))
    assert torch.equal(again.label, noisy.label)  # reproducible from the generator
    assert with_symmetric_noise(pl, 0.0, 10, torch.Generator()) is pl
