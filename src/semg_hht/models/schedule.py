"""Learning-rate schedule: linear warmup, cosine decay and plateau cuts in one scheduler.

The seed steps a LambdaLR (warmup + cosine) and a ReduceLROnPlateau on the same optimizer: the
LambdaLR rewrites the learning rate from its own curve every epoch, so each plateau cut lasts
one epoch. Here the cuts are a persistent factor on the curve:

    lr(epoch) = base_lr * curve(epoch) * plateau_scale

curve is (epoch + 1) / warmup during warmup (the seed's formula), then cosine to 0 at the last
epoch (or 1 with cosine off); plateau_scale starts at 1 and is multiplied by ``factor`` whenever
the monitored metric has not improved for more than ``patience`` epochs (torch's
ReduceLROnPlateau rule), never below min_lr / base_lr. All state is plain numbers, so it
round-trips through weights-only checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from semg_hht.errors import SemgError


class WarmupCosinePlateau(LRScheduler):
    def __init__(
        self,
        optimizer: Optimizer,
        total_epochs: int,
        warmup_epochs: int,
        cosine: bool,
        plateau: dict[str, Any] | None,
        mode: str,
    ):
        if mode not in ("max", "min"):
            raise SemgError(f"scheduler.mode '{mode}'", fix="use max (accuracy) or min (loss)")
        if warmup_epochs < 0 or total_epochs < 1:
            raise SemgError("scheduler.warmup_epochs must be >= 0", fix="e.g. 5")
        self.total_epochs, self.warmup_epochs, self.cosine, self.mode = (
            total_epochs,
            warmup_epochs,
            cosine,
            mode,
        )
        plateau = dict(plateau or {})
        self.uses_plateau = bool(plateau)
        self.factor = float(plateau.pop("factor", 1.0))
        self.patience = int(plateau.pop("patience", 0))
        self.min_lr = float(plateau.pop("min_lr", 0.0))
        self.threshold = float(plateau.pop("threshold", 0.0))
        if plateau:
            raise SemgError(
                f"unknown scheduler.plateau keys {sorted(plateau)}",
                fix="use factor, patience, min_lr, threshold",
            )
        if self.uses_plateau and not 0.0 < self.factor < 1.0:
            raise SemgError(f"scheduler.plateau.factor={self.factor} must be in (0, 1)", fix="e.g. 0.5")
        self.best = -math.inf if mode == "max" else math.inf
        self.bad_epochs = 0
        self.plateau_scale = 1.0
        super().__init__(optimizer)

    def curve(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        if not self.cosine:
            return 1.0
        progress = (epoch - self.warmup_epochs) / max(1, self.total_epochs - self.warmup_epochs)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def _improved(self, metric: float) -> bool:
        """Relative threshold as torch's ReduceLROnPlateau (threshold_mode='rel')."""
        margin = abs(self.best) * self.threshold if math.isfinite(self.best) else 0.0
        return metric > self.best + margin if self.mode == "max" else metric < self.best - margin

    def observe(self, metric: float) -> None:
        """One epoch's monitored value (e.g. val/acc): may cut the plateau scale."""
        if self._improved(metric):
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            floor = self.min_lr / max(self.base_lrs)
            self.plateau_scale = max(self.plateau_scale * self.factor, floor)
            self.bad_epochs = 0

    def set_epoch(self, epoch: int) -> None:
        """Put the optimizer on this epoch's learning rate (a pure function of epoch and plateau
        scale, so it is right after a resume whatever steps were or were not taken)."""
        self.last_epoch = epoch
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr

    def step(self, metrics: float | None = None) -> None:
        """Stand-alone use: observe the epoch's metric (if given), then advance one epoch."""
        if metrics is not None and self.uses_plateau:
            self.observe(float(metrics))
        self.set_epoch(self.last_epoch + 1)

    def get_lr(self) -> list[float]:
        scale = self.curve(self.last_epoch) * self.plateau_scale
        return [base * scale for base in self.base_lrs]
