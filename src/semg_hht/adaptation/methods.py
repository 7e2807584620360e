"""Few-shot adaptation of a trained classifier to one new person from a few labelled recordings (the
support rows): a copy of the model, changed by one of METHODS, the original left as it was.

head       the output layer(s) (the head, and the linear path when the model has one) trained on the
           support rows; the encoder stays as trained
last       the last ``last_blocks`` encoder blocks too
full       every weight (with the small learning rate and the few steps of the settings)
prototype  no gradient step: the head's output layer becomes a blend of the trained one and the person's
           class prototypes (the mean of each class's support rows as that layer reads them: the encoder's
           features for the linear head). A nearest-prototype rule on
           squared distances is itself a linear map of the embedding, logit_c = 2 p_c.f - |p_c|^2 (the
           |f|^2 term is the same for every class), so the adapted model is an ordinary checkpoint.

The gradient methods start from the prototype blend when ``prototype_init`` is set (a linear probe first,
then fine-tuning: Kumar et al. 2022, "LP-FT"), take a fixed number of steps (nothing is chosen on the
query rows: there is no early stop on them), draw ``batch_size`` support rows per step (with replacement),
and pass them through the training recipe's own augmentation. BatchNorm keeps the running statistics it
was trained with and dropout is off: a handful of rows gives neither a usable batch statistic nor a
reason to thin the head further.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from semg_hht.choices import ADAPT_BATCHNORM as BATCHNORM
from semg_hht.choices import ADAPT_CHANNEL_ORDER as CHANNEL_ORDER
from semg_hht.choices import ADAPT_METHODS as METHODS
from semg_hht.choices import ADAPT_PROTOTYPE_RULES as PROTOTYPE_RULES
from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.errors import SemgError
from semg_hht.models.classifier import HHTClassifier


@dataclass(frozen=True)
class AdaptSettings:
    """conf/adaptation/*.yaml (the adapt.* keys of adapt.py and evaluate.py)."""

    method: str
    steps: int  # optimizer steps of the gradient methods
    lr: float
    weight_decay: float
    batch_size: int  # support rows per step, drawn with replacement
    last_blocks: int  # method=last: how many encoder blocks from the end are trained
    augment: bool  # the checkpoint's training augmentation on the support rows
    prototype_weight: float  # share of the prototype logits in the blended head (1 = nearest prototype alone)
    prototype_init: bool  # the gradient methods start from the prototype blend
    batchnorm: str = "trained"  # trained: BatchNorm statistics as trained; support: re-estimated on the support rows
    channel_order: str = "keep"  # keep: channels as recorded; search: the electrode order the support rows fit best
    time_crop: float = 0.0  # each step's support rows cut to a random stretch of at least this share of their time
    prototype_rule: str = "nearest"  # nearest: class means; lda: shrinkage LDA on the support embeddings
    prototype_windows: float = 0.0  # > 0: the prototypes also read windows of this share of each support row's time

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SemgError(f"unknown adapt.method '{self.method}'", fix=f"use one of {list(METHODS)}")
        if not 0.0 <= self.prototype_weight <= 1.0:
            raise SemgError(f"adapt.prototype_weight={self.prototype_weight} must be in [0, 1]", fix="e.g. 0.5")
        if self.batchnorm not in BATCHNORM:
            raise SemgError(f"unknown adapt.batchnorm '{self.batchnorm}'", fix=f"use one of {list(BATCHNORM)}")
        if self.channel_order not in CHANNEL_ORDER:
            raise SemgError(
                f"unknown adapt.channel_order '{self.channel_order}'", fix=f"use one of {list(CHANNEL_ORDER)}"
            )
        if self.prototype_rule not in PROTOTYPE_RULES:
            raise SemgError(
                f"unknown adapt.prototype_rule '{self.prototype_rule}'", fix=f"use one of {list(PROTOTYPE_RULES)}"
            )
        if not 0.0 <= self.prototype_windows < 1.0:
            raise SemgError(
                f"adapt.prototype_windows={self.prototype_windows} must be in [0, 1)", fix="e.g. 0.5, or 0 (off)"
            )
        if not 0.0 <= self.time_crop < 1.0:
            raise SemgError(f"adapt.time_crop={self.time_crop} must be in [0, 1)", fix="e.g. 0.5, or 0 (off)")
        if self.steps < 0 or self.batch_size < 1 or self.last_blocks < 1 or not self.lr > 0:
            raise SemgError(
                "adapt.steps >= 0, adapt.batch_size >= 1, adapt.last_blocks >= 1 and adapt.lr > 0",
                fix="see conf/adaptation/default.yaml",
            )

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> AdaptSettings:
        unknown = sorted(set(settings) - set(cls.__dataclass_fields__))
        if unknown:
            raise SemgError(f"unknown adapt keys {unknown}", fix=f"use {sorted(cls.__dataclass_fields__)}")
        return cls(**settings)

    @property
    def uses_prototypes(self) -> bool:
        return self.method == "prototype" or self.prototype_init


def output_layer(model: HHTClassifier) -> nn.Linear:
    """The head's last layer: a Linear for every head (build_head)."""
    return model.head[-1]


def channel_orders(channels: int) -> list[tuple[int, ...]]:
    """The electrode orders a new person's recordings may have against training: every rotation of the
    channels (an armband put on turned) and its mirror image (a sleeve worn the other way round, a pair
    of leads swapped), the recorded order first. Two channels: as recorded, or swapped."""
    orders: list[tuple[int, ...]] = []
    for shift in range(channels):
        turned = tuple((c + shift) % channels for c in range(channels))
        orders += [o for o in (turned, turned[::-1]) if o not in orders]
    return orders


@torch.no_grad()
def read_channels_in_best_order(model: HHTClassifier, x: torch.Tensor, y: torch.Tensor) -> None:
    """The encoder reads its input, from now on, in the candidate order (on top of its own) under which
    it explains the support rows best: the lowest mean cross entropy; a tie keeps the order it has."""
    channels = x.shape[1]
    own = model.encoder.channel_order or list(range(channels))
    candidates = [[own[c] for c in order] for order in channel_orders(channels)]
    losses = []
    for order in candidates:
        model.encoder.channel_order = order
        losses.append(nn.functional.cross_entropy(model(x), y).item())
    best = candidates[min(range(len(losses)), key=losses.__getitem__)]
    model.encoder.channel_order = None if best == list(range(channels)) else best


def trainable(model: HHTClassifier, settings: AdaptSettings) -> list[nn.Parameter]:
    """The weights a gradient method changes (the rest are frozen)."""
    modules: list[nn.Module] = [model.head]
    if model.linear_path is not None:
        modules.append(model.linear_path)
    if settings.method == "full":
        modules = [model]
    elif settings.method == "last":
        blocks = model.encoder.blocks
        if settings.last_blocks > len(blocks):
            raise SemgError(
                f"adapt.last_blocks={settings.last_blocks} but the encoder has {len(blocks)} blocks",
                fix=f"use 1..{len(blocks)} (or adapt.method=full)",
            )
        modules += list(blocks[-settings.last_blocks :])
    return [p for m in modules for p in m.parameters()]


@torch.no_grad()
def support_statistics(model: HHTClassifier, x: torch.Tensor) -> None:
    """Every BatchNorm layer's running statistics re-estimated from the support rows alone, in place
    (AdaBN, Li et al. 2018; Du et al. 2017 for sEMG across sessions): electrodes placed elsewhere shift
    every feature's mean and spread, which the normalisation can take back without a label."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the (one) batch
    model.train()
    model(x)
    model.eval()
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


def time_windows(x: torch.Tensor, share: float) -> list[torch.Tensor]:
    """Every window of ``share`` of the rows' time axis, at half-window hops (one tensor per start)."""
    width = x.shape[-1]
    length = max(1, round(share * width))
    return [x[..., s : s + length] for s in range(0, width - length + 1, max(1, length // 2))]


def linear_rule(features: torch.Tensor, y: torch.Tensor, classes: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of a linear map features -> class logits fitted on (features, y): the nearest class
    mean (squared distance, up to the per-row |f|^2) or a shrinkage LDA (sklearn, Ledoit-Wolf)."""
    if rule == "nearest":
        prototypes = torch.stack([features[y == c].mean(0) for c in range(classes)])
        return 2.0 * prototypes, -(prototypes**2).sum(1)
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(features.double().numpy(), y.numpy())
    weight = torch.from_numpy(lda.coef_).to(features.dtype)
    bias = torch.from_numpy(lda.intercept_).to(features.dtype)
    if classes == 2:  # sklearn keeps one decision function for two classes
        weight, bias = torch.cat([-weight / 2, weight / 2]), torch.cat([-bias / 2, bias / 2])
    return weight, bias


@torch.no_grad()
def prototype_head(
    model: HHTClassifier, x: torch.Tensor, y: torch.Tensor, weight: float, rule: str = "nearest", windows: float = 0.0
) -> None:
    """Blend the linear head with a prototype rule of the support rows (x, y), in place: ``rule`` nearest
    (the class means) or lda (a shrinkage LDA: class means and the spread around them), fitted on the
    rows' embeddings and, with ``windows`` > 0, on those of their time windows too (more rows for the
    spread; the encoder pools over time, so a window is read as a shorter recording). The prototype
    logits are scaled to the spread of the trained head's logits on the same rows, so ``weight`` is a
    share between two maps of like size."""
    layer = output_layer(model)
    features = model.embed(x)
    fit_features, fit_y = features, y
    if windows > 0:
        parts = time_windows(x, windows)
        fit_features = torch.cat([features, *(model.embed(p) for p in parts)])
        fit_y = y.repeat(len(parts) + 1)
    proto_w, proto_b = linear_rule(fit_features, fit_y, layer.out_features, rule)
    head_logits = features @ layer.weight.T + layer.bias
    proto_logits = features @ proto_w.T + proto_b

    def spread(logits: torch.Tensor) -> torch.Tensor:  # per-row spread across classes, averaged
        return (logits - logits.mean(1, keepdim=True)).std(1).mean().clamp_min(1e-12)

    scale = spread(head_logits) / spread(proto_logits)
    layer.weight.mul_(1.0 - weight).add_(weight * scale * proto_w)
    layer.bias.mul_(1.0 - weight).add_(weight * scale * proto_b)


def adapted_copy(
    model: HHTClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: AdaptSettings,
    augment: TimeFrequencyAugment | None,
    seed: int,
) -> HHTClassifier:
    """A copy of ``model`` adapted to the support rows (x: prepared matrices, y: class indices), in eval
    mode with no gradients, as load_classifier gives models. Every class must have a support row."""
    missing = sorted(set(range(model.hparams.num_classes)) - set(y.tolist()))
    if missing:
        names = [model.hparams.class_names[i] for i in missing]
        raise SemgError(f"no support row of class {names}", fix="give every class at least one support recording")
    model = copy.deepcopy(model).eval()
    model.requires_grad_(False)
    if settings.channel_order == "search":
        read_channels_in_best_order(model, x, y)
    if settings.batchnorm == "support":
        support_statistics(model, x)
    if settings.uses_prototypes:
        prototype_head(model, x, y, settings.prototype_weight, settings.prototype_rule, settings.prototype_windows)
    if settings.method == "prototype" or settings.steps == 0:
        return model
    params = trainable(model, settings)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    # windows of a recording, as the classic features see it: many stretches of the few support rows
    off = {"p": 0.0, "time_shift": 0.0, "time_mask": 0.0, "n_time_masks": 0, "freq_mask": 0.0, "n_freq_masks": 0}
    crop = TimeFrequencyAugment(**off, scale=0.0, noise=0.0, seed=seed, time_crop=settings.time_crop)
    with torch.random.fork_rng(devices=[]):  # the augmentation's noise draws from the global generator
        torch.manual_seed(seed)
        for _ in range(settings.steps):
            rows = torch.randint(len(y), (settings.batch_size,), generator=generator)
            batch = x[rows]
            if settings.time_crop > 0:
                batch = crop(batch)
            if settings.augment and augment is not None:
                batch = augment(batch)
            loss = model.criterion(model(batch), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.requires_grad_(False)
    return model
