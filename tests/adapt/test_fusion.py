import torch

from toolkiln.adapt.fusion import DomainFusion, attention_weights


def _batch():
    torch.manual_seed(0)
    h = torch.randn(12, 16)
    domain = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    return h, domain


def test_shapes_and_rows_are_distributions_over_other_domains():
    h, domain = _batch()
    same = domain[:, None] == domain[None, :]
    A, has_key = attention_weights(h, h, same, contrary=True, temperature=0.1)
    assert A.shape == (12, 12) and has_key.all()
    assert torch.allclose(A.sum(1), torch.ones(12))
    assert (A[same] == 0).all()  # never attends within its own domain
    out = DomainFusion(16, 8)(h, domain)
    assert out.shape == h.shape


def test_contrary_attends_to_dissimilar_ordinary_to_similar():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])  # similar, orthogonal, opposite
    mask = torch.zeros(1, 3, dtype=torch.bool)
    A_con, _ = attention_weights(q, k, mask, contrary=True, temperature=0.1)
    A_ord, _ = attention_weights(q, k, mask, contrary=False, temperature=0.1)
    assert A_con.argmax() == 2 and A_ord.argmax() == 0
    assert A_con[0, 2] > 0.99 and A_ord[0, 0] > 0.99


def test_single_domain_batch_is_left_unchanged():
    h = torch.randn(5, 16)
    out = DomainFusion(16, 8)(h, torch.zeros(5, dtype=torch.long))
    assert torch.equal(out, h)


def test_residual_scale_and_memory():
    h, domain = _batch()
    f = DomainFusion(16, 8, gamma=0.0)
    assert torch.allclose(f(h, domain), h)
    f = DomainFusion(16, 8, gamma=0.5)
    mem, mem_dom = torch.randn(6, 16), torch.tensor([0, 0, 0, 1, 1, 1])
    out = f(h[:4], torch.full((4,), 2), mem, mem_dom)  # target items fused with a source memory
    assert out.shape == (4, 16) and not torch.allclose(out, h[:4])


def test_gradients_flow_to_features_and_projections():
    h, domain = _batch()
    h.requires_grad_(True)
    f = DomainFusion(16, 8, mode="contrary")
    f(h, domain).pow(2).sum().backward()
    assert h.grad.abs().sum() > 0
    for p in (f.W_q.weight, f.W_k.weight, f.W_v.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_bad_mode():
    import pytest

    with pytest.raises(ValueError, match="contrary"):
        DomainFusion(16, 8, mode="reverse")
