import math

import pytest
import torch

from toolkiln.adapt.losses import mae, moment_distance, pseudo_label_loss, pseudo_weight, rce, sigmoid_ramp


def test_rce_equals_scaled_mae():
    torch.manual_seed(0)
    logits, y = torch.randn(32, 10), torch.randint(0, 10, (32,))
    for A in (-4.0, -2.0, -7.5):
        assert torch.allclose(rce(logits, y, A), (-A / 2) * mae(logits, y), atol=1e-6)


def test_rce_is_bounded_and_zero_when_confidently_right():
    y = torch.tensor([3, 3])
    sure_right = torch.full((1, 10), -50.0).index_fill(1, torch.tensor([3]), 50.0)
    sure_wrong = torch.full((1, 10), -50.0).index_fill(1, torch.tensor([5]), 50.0)
    out = rce(torch.cat([sure_right, sure_wrong]), y, A=-4.0)
    assert out[0] == pytest.approx(0.0, abs=1e-6)
    assert out[1] == pytest.approx(4.0, abs=1e-5)  # the bound -A: a wrong label costs at most this
    # while CE on the confidently wrong sample is unbounded
    assert torch.nn.functional.cross_entropy(sure_wrong, y[:1]) > 50


def test_rce_gradient_flows():
    logits = torch.randn(4, 10, requires_grad=True)
    rce(logits, torch.tensor([0, 1, 2, 3])).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_adaptive_weight_schedule():
    total, start, w_max = 100, 0.3, 2.0
    ws = [pseudo_weight(s, total, start, w_max, "adaptive") for s in range(total + 1)]
    assert all(w == 0.0 for w in ws[:30])  # nothing before pseudo-labels start
    assert ws[30] == pytest.approx(0.0)  # the ramp starts from 0 ...
    assert all(b >= a for a, b in zip(ws[30:], ws[31:]))  # ... grows monotonically ...
    assert ws[-1] == pytest.approx(w_max * (2 / (1 + math.exp(-10)) - 1))  # ... and saturates near w_max
    assert ws[65] == pytest.approx(w_max * sigmoid_ramp(0.5))


def test_fixed_weight_schedule_and_bad_name():
    assert pseudo_weight(10, 100, 0.3, 1.5, "fixed") == 0.0
    assert pseudo_weight(30, 100, 0.3, 1.5, "fixed") == 1.5
    assert pseudo_weight(99, 100, 0.3, 1.5, "fixed") == 1.5
    with pytest.raises(ValueError, match="weight_schedule"):
        pseudo_weight(50, 100, 0.3, 1.0, "cosine")


def test_pseudo_label_loss_masking_and_kinds():
    torch.manual_seed(1)
    logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    none = torch.zeros(8, dtype=torch.bool)
    assert pseudo_label_loss(logits, y, none) == 0
    half = torch.arange(8) < 4
    ce = pseudo_label_loss(logits, y, half, kind="ce")
    expected = torch.nn.functional.cross_entropy(logits[:4], y[:4], reduction="sum") / 8  # mean over the batch
    assert ce == pytest.approx(float(expected), rel=1e-5)
    arce = pseudo_label_loss(logits, y, half, kind="arce", alpha=1.0, beta=1.0)
    assert arce == pytest.approx(float(expected + rce(logits[:4], y[:4]).sum() / 8), rel=1e-5)
    with pytest.raises(ValueError, match="loss"):
        pseudo_label_loss(logits, y, half, kind="focal")


def test_moment_distance():
    torch.manual_seed(2)
    a = torch.randn(64, 8)
    assert moment_distance([a, a.clone()]) < 1e-3
    assert moment_distance([a, a + 1.0]) > 2.0
    z = torch.zeros(16, 8, requires_grad=True)
    moment_distance([z, z * 1.0]).backward()  # identical (e.g. dead) features: the gradient stays finite
    assert torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="at least two domains"):
        moment_distance([a])
