import numpy as np
import torch

from toolkiln.adapt.config import ModelConfig
from toolkiln.adapt.nets import DomainDiscriminator, grad_reverse, make_backbone, to_tensor
from toolkiln.adapt.pseudo import pseudo_labels_from_logits, refresh


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
