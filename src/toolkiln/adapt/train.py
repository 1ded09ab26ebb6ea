"""Training loops: ADNT, its ablations and the in-house baselines (ADNT arXiv 2208.02947 §3).

Every method shares the backbone (``nets``), the optimiser, the step count and
the batch composition — each step draws ``batch_size`` images from every source
and (when the method uses it) from the unlabelled target — so accuracy
differences come from the adaptation objective alone.

ADNT's step (reconstructed; see ``fusion`` and ``losses`` for the open choices)::

    h   = F(x_s1 .. x_sS, x_t)              features of all domains
    h~  = CADM(h, domain)                   contrary-attention domain fusion
    L   = mean_{v in (h, h~)} CE(C(v_s), y_s)                       sources
        + w(t) * mean_{v in (h, h~)} ARCE(C(v_t), y^_t, mask_t)     target pseudo-labels

The classifier is trained on both the plain and the fused features, so at test
time it predicts ``C(F(x))`` and needs no other domain at hand; the pseudo-labels
come from that same predictor and are refreshed every ``refresh_every`` steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

from toolkiln.adapt.fusion import DomainFusion
from toolkiln.adapt.losses import moment_distance, pseudo_label_loss, pseudo_weight, sigmoid_ramp
from toolkiln.adapt.nets import Classifier, DomainDiscriminator, grad_reverse, make_backbone, to_tensor
from toolkiln.adapt.pseudo import predict_logits, refresh, with_symmetric_noise

# ablation name -> override of ADNTMethodConfig
ABLATION_OVERRIDES = {
    "adnt": {},
    "adnt_no_attention": {"attention": "none"},
    "adnt_ordinary_attention": {"attention": "ordinary"},
    "adnt_ce": {"loss": "ce"},
    "adnt_rce": {"ce_alpha": 0.0},  # the bounded reverse term alone
    "adnt_fixed_weight": {"weight_schedule": "fixed"},
}


@dataclass
class Task:
    """One leave-one-domain-out task as tensors. ``target_y_hidden`` is for diagnostics only.

    ``backbone`` (optional) returns a fresh ``(F, C)`` for non-image inputs, e.g. an MLP over dialog
    embeddings; its feature size must equal ``cfg.model.feature_dim``. Default: the CNN of ``nets``.
    """

    target: str
    sources: list[str]
    Xs: list[torch.Tensor]
    ys: list[torch.Tensor]
    Xt: torch.Tensor
    target_y_hidden: torch.Tensor
    Xt_test: torch.Tensor
    yt_test: torch.Tensor
    n_classes: int = 10
    backbone: Callable[[], tuple[nn.Module, nn.Module]] | None = None


def make_task(domains: dict, target: str) -> Task:
    """Leave ``target`` out of ``domains`` (name -> Domain); the others are the labelled sources."""
    if target not in domains:
        raise ValueError(f"target domain {target!r} not in {sorted(domains)}")
    srcs = [n for n in domains if n != target]
    t = domains[target]
    return Task(target, srcs, [to_tensor(domains[s].X_train) for s in srcs],
                [torch.from_numpy(domains[s].y_train) for s in srcs], to_tensor(t.X_train),
                torch.from_numpy(t.y_train), to_tensor(t.X_test), torch.from_numpy(t.y_test))


class BatchStream:
    """Endless shuffled mini-batches of indices into ``n`` items, from a seeded generator."""

    def __init__(self, n: int, batch: int, gen: torch.Generator):
        self.n, self.batch, self.gen = n, min(batch, n), gen
        self.perm, self.pos = torch.randperm(n, generator=gen), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx


@dataclass
class RunResult:
    method: str
    target: str
    seed: int
    acc: float
    seconds: float
    cpu_seconds: float  # process CPU time: with one torch thread per worker, a load-independent cost
    history: list[dict] = field(default_factory=list)


def accuracy(predict, X: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    return float((predict_logits(predict, X, batch).argmax(1) == y).float().mean())


class _Predictor(nn.Module):
    def __init__(self, F: nn.Module, C: nn.Module):
        super().__init__()
        self.F, self.C = F, C

    def forward(self, x):
        return self.C(self.F(x))


class _MultiHeadPredictor(nn.Module):
    """M3SDA inference: average of the per-source classifiers' softmax (returned as log-probs)."""

    def __init__(self, F: nn.Module, heads: nn.ModuleList):
        super().__init__()
        self.F, self.heads = F, heads

    def forward(self, x):
        h = self.F(x)
        return torch.stack([torch.softmax(c(h), 1) for c in self.heads]).mean(0).clamp_min(1e-12).log()


def _setup(cfg, task: Task, seed: int):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    F, C = task.backbone() if task.backbone else make_backbone(cfg.model, task.Xt.shape[-1])
    streams = [BatchStream(len(y), cfg.train.batch_size, gen) for y in task.ys]
    tstream = BatchStream(len(task.Xt), cfg.train.batch_size, gen)
    return F, C, streams, tstream


def _adam(cfg, *modules):
    params = [p for m in modules for p in m.parameters()]
    return torch.optim.Adam(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)


def _source_batch(task: Task, streams):
    idx = [s.next() for s in streams]
    return [X[i] for X, i in zip(task.Xs, idx)], [y[i] for y, i in zip(task.ys, idx)]


def train_source_only(task: Task, cfg, seed: int) -> tuple[nn.Module, list[dict]]:
    """Source-combined baseline: CE on all sources, the target never seen."""
    F, C, streams, _ = _setup(cfg, task, seed)
    opt = _adam(cfg, F, C)
    for _ in range(cfg.train.steps):
        xs, ys = _source_batch(task, streams)
        loss = Fn.cross_entropy(C(F(torch.cat(xs))), torch.cat(ys))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return _Predictor(F, C), []


def train_dann(task: Task, cfg, seed: int) -> tuple[nn.Module, list[dict]]:
    """DANN (Ganin et al. 2016): a source-vs-target discriminator behind a gradient reversal layer."""
    F, C, streams, tstream = _setup(cfg, task, seed)
    D = DomainDiscriminator(cfg.model.feature_dim, cfg.dann.hidden)
    opt = _adam(cfg, F, C, D)
    for step in range(cfg.train.steps):
        xs, ys = _source_batch(task, streams)
        xt = task.Xt[tstream.next()]
        h = F(torch.cat(xs + [xt]))
        n_s = sum(len(y) for y in ys)
        lam = cfg.dann.weight * sigmoid_ramp(step / cfg.train.steps)
        d_label = torch.cat([torch.ones(n_s), torch.zeros(len(xt))])
        loss = Fn.cross_entropy(C(h[:n_s]), torch.cat(ys)) + \
            Fn.binary_cross_entropy_with_logits(D(grad_reverse(h, lam)), d_label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return _Predictor(F, C), []


def train_m3sda(task: Task, cfg, seed: int) -> tuple[nn.Module, list[dict]]:
    """M3SDA moment matching (Peng et al. 2019): one classifier per source, k=2 moment distance over
    all domain pairs (sources and target); inference averages the source classifiers."""
    F, _, streams, tstream = _setup(cfg, task, seed)
    heads = nn.ModuleList([Classifier(cfg.model.feature_dim, task.n_classes, cfg.model.dropout)
                           for _ in task.sources])
    opt = _adam(cfg, F, heads)
    for step in range(cfg.train.steps):
        xs, ys = _source_batch(task, streams)
        xt = task.Xt[tstream.next()]
        h = F(torch.cat(xs + [xt]))
        # ramped like DANN: at full weight from step 0 the distance is minimised by collapsing h to 0
        lam = cfg.m3sda.weight * sigmoid_ramp(step / cfg.train.steps)
        parts = list(torch.split(h, [len(x) for x in xs] + [len(xt)]))
        cls = torch.stack([Fn.cross_entropy(c(hs), y) for c, hs, y in zip(heads, parts, ys)]).mean()
        loss = cls + lam * moment_distance(parts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return _MultiHeadPredictor(F, heads), []


def train_adnt(task: Task, cfg, seed: int, overrides: dict | None = None) -> tuple[nn.Module, list[dict]]:
    """ADNT: contrary-attention domain fusion + ARCE on refreshed, confidence-thresholded pseudo-labels."""
    m = cfg.method.model_copy(update=overrides or {})
    F, C, streams, tstream = _setup(cfg, task, seed)
    fusion = None if m.attention == "none" else DomainFusion(
        cfg.model.feature_dim, m.attn_dim, m.attention, m.attn_temperature, m.fusion_gamma)
    opt = _adam(cfg, F, C, *([fusion] if fusion else []))
    predictor = _Predictor(F, C)
    S, steps = len(task.sources), cfg.train.steps
    pl, history = None, []
    noise_gen = torch.Generator().manual_seed(seed + 7919)  # its own stream: noise 0 leaves the run unchanged
    for step in range(steps):
        w = pseudo_weight(step, steps, m.pseudo_start, m.weight_max, m.weight_schedule, m.ramp_gamma)
        if step / steps >= m.pseudo_start and (pl is None or step % m.refresh_every == 0):
            pl = refresh(predictor, task.Xt, m.pseudo_threshold, cfg.train.eval_batch)
            if m.pseudo_noise > 0:
                pl = with_symmetric_noise(pl, m.pseudo_noise, task.n_classes, noise_gen)
            history.append({"step": step, "weight": w, "coverage": pl.coverage,
                            "precision": pl.precision(task.target_y_hidden)})
        xs, ys = _source_batch(task, streams)
        ti = tstream.next()
        x = torch.cat(xs + [task.Xt[ti]])
        domain = torch.cat([torch.full((len(xi),), d) for d, xi in enumerate(xs)] + [torch.full((len(ti),), S)])
        h = F(x)  # (B_total, d)
        views = [h] if fusion is None else [h, fusion(h, domain)]
        n_s, y_s = sum(len(y) for y in ys), torch.cat(ys)
        loss = 0.0
        for v in views:
            logits = C(v)
            loss = loss + Fn.cross_entropy(logits[:n_s], y_s) / len(views)
            if pl is not None and w > 0:
                loss = loss + w * pseudo_label_loss(logits[n_s:], pl.label[ti], pl.mask[ti], kind=m.loss,
                                                    alpha=m.ce_alpha, beta=m.rce_beta, A=m.rce_A) / len(views)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return predictor, history


def run_method(method: str, task: Task, cfg, seed: int) -> RunResult:
    """Train ``method`` on ``task`` with ``seed`` and measure its target test accuracy."""
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "source_only":
        model, hist = train_source_only(task, cfg, seed)
    elif method == "dann":
        model, hist = train_dann(task, cfg, seed)
    elif method == "m3sda":
        model, hist = train_m3sda(task, cfg, seed)
    elif method in ABLATION_OVERRIDES:
        model, hist = train_adnt(task, cfg, seed, ABLATION_OVERRIDES[method])
    elif method.startswith("skada_"):
        from toolkiln.adapt.skada_ref import run_skada

        acc = run_skada(method, task, cfg, seed)
        return RunResult(method, task.target, seed, acc, time.perf_counter() - t0, time.process_time() - c0)
    else:
        raise ValueError(f"unknown method {method!r}")
    acc = accuracy(model, task.Xt_test, task.yt_test, cfg.train.eval_batch)
    return RunResult(method, task.target, seed, acc, time.perf_counter() - t0, time.process_time() - c0, hist)


def single_source_gap(domains: dict, cfg, seed: int) -> np.ndarray:
    """Domain-gap matrix ``G[i, j]``: accuracy on domain j's test split of a model trained on domain i alone."""
    names = list(domains)
    G = np.zeros((len(names), len(names)))
    gap_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": cfg.data.gap_steps})})
    for i, src in enumerate(names):
        d = domains[src]
        task = Task(src, [src], [to_tensor(d.X_train)], [torch.from_numpy(d.y_train)], to_tensor(d.X_train[:1]),
                    torch.from_numpy(d.y_train[:1]), to_tensor(d.X_test), torch.from_numpy(d.y_test))
        model, _ = train_source_only(task, gap_cfg, seed + i)
        for j, tgt in enumerate(names):
            G[i, j] = accuracy(model, to_tensor(domains[tgt].X_test), torch.from_numpy(domains[tgt].y_test))
    return G
