"""The LightningModule: CNN encoder + head, label-smoothed cross entropy, opt-in mixup, torchmetrics,
AdamW and the warmup/cosine/plateau schedule. Hyperparameters are plain values saved into every checkpoint
(save_hyperparameters), so a checkpoint loads without any config."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from semg_hht.errors import SemgError
from semg_hht.models.encoder import ENCODER_KEYS, CNNEncoder
from semg_hht.models.head import LinearPath, build_head
from semg_hht.models.schedule import WarmupCosinePlateau

log = logging.getLogger(__name__)


def torch_label_smoothing(seed_smoothing: float, num_classes: int) -> float:
    """The seed's smoothing e puts 1-e on the true class and e/(K-1) on each other class.
    torch's label_smoothing s puts 1-s+s/K and s/K: equal targets for s = e*K/(K-1)."""
    if num_classes < 2:
        raise SemgError(f"{num_classes} class(es): a classifier needs at least two", fix="check data.target")
    s = seed_smoothing * num_classes / (num_classes - 1)
    if not 0.0 <= s <= 1.0:
        limit = (num_classes - 1) / num_classes
        raise SemgError(f"model.label_smoothing={seed_smoothing} is out of range", fix=f"use 0 <= value <= {limit:.3f}")
    return s


class HHTClassifier(L.LightningModule):
    def __init__(
        self,
        *,
        num_classes: int,
        class_names: list[str],
        in_channels: int,
        input_size: int,
        base_channels: int,
        num_layers: int,
        norm: str,
        residual: bool,
        residual_from: int,
        leaky_slope: float,
        input_log_ref: float | None,
        head: str,
        head_hidden: int,
        dropout: float,
        label_smoothing: float,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        pool: str = "global",  # default: checkpoints written before the key existed
        mixup_alpha: float = 0.0,  # 0 = off; default: checkpoints written before the key existed
        level_free_copy: bool = False,  # default: checkpoints written before the key existed
        linear_path: int = 0,  # 0 = off; default: checkpoints written before the key existed
        channel_order: list[int] | None = None,  # None = as recorded; default: checkpoints written before the key
        prototype_loss: float = 0.0,  # 0 = off; default: checkpoints written before the key existed
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)  # logged once, with val/acc_best, by train()
        if len(class_names) != num_classes:
            raise SemgError(f"{len(class_names)} class names for {num_classes} classes", fix="check data.classes")
        if not (math.isfinite(mixup_alpha) and mixup_alpha >= 0):
            raise SemgError(f"model.mixup_alpha={mixup_alpha} must be >= 0", fix="0 = off, e.g. 0.2")
        if not (math.isfinite(prototype_loss) and prototype_loss >= 0):
            raise SemgError(f"model.prototype_loss={prototype_loss} must be >= 0", fix="0 = off, e.g. 0.5")
        if prototype_loss > 0 and mixup_alpha > 0:
            raise SemgError("model.prototype_loss and model.mixup_alpha together", fix="use one of them (the other 0)")
        self.encoder = CNNEncoder(**{key: self.hparams[key] for key in ENCODER_KEYS})
        self.head = build_head(head, self.encoder.feature_dim, num_classes, dropout, head_hidden)
        self.linear_path = (
            LinearPath(in_channels, input_size, linear_path, num_classes, dropout) if linear_path else None
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=torch_label_smoothing(label_smoothing, num_classes))
        # Metric objects accumulate on the device; nothing syncs to the host per step: no NaN check of
        # the loss (a NaN loss shows as a NaN epoch mean) and no argument checks on the training side.
        self.train_loss, self.val_loss = MeanMetric(nan_strategy="disable"), MeanMetric(nan_strategy="disable")
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # in checkpoints, so a resumed run keeps its best
        self.val_confusion = MulticlassConfusionMatrix(num_classes)
        self.last_confusion: torch.Tensor | None = None  # read by the confusion-matrix callbacks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x, self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """What the head's output layer reads: the encoder's features through the head's other layers
        (only dropout for the linear head)."""
        return self.head[:-1](self.encoder(x))

    def logits(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        logits = self.head[-1](embedding)
        if self.linear_path is None:
            return logits
        return logits + self.linear_path(self.encoder.prepare(x))  # the input as the encoder sees it

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, *people = batch  # people: each row's person, with data.episodes
        logits, loss = self.training_loss(x, y, people[0] if people else None)
        self.train_loss(loss)
        self.train_acc(logits.argmax(1), y)  # with mixup: against each sample's dominant label (see mixup)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, people: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, loss) of one training batch: plain label-smoothed cross entropy, plus with
        model.prototype_loss > 0 the within-person few-shot loss (``people``: each row's person, below),
        or with model.mixup_alpha > 0 the mixup loss (below). Validation, test and predict never mix."""
        weight = self.hparams.prototype_loss
        if weight > 0:
            if people is None:
                raise SemgError("model.prototype_loss needs batches drawn by person", fix="set data.episodes.people")
            embedding = self.embed(x)
            logits = self.logits(x, embedding)
            return logits, self.criterion(logits, y) + weight * self.person_prototype_loss(embedding, y, people)
        alpha = self.hparams.mixup_alpha
        if alpha <= 0:  # off: exactly the plain path, and no random number is drawn
            logits = self(x)
            return logits, self.criterion(logits, y)
        lam, perm = self.mixup(x.shape[0], alpha)
        perm = perm.to(x.device, non_blocking=True)
        logits = self(lam * x + (1.0 - lam) * x[perm])
        loss = lam * self.criterion(logits, y) + (1.0 - lam) * self.criterion(logits, y[perm])
        return logits, loss

    def person_prototype_loss(self, embedding: torch.Tensor, y: torch.Tensor, people: torch.Tensor) -> torch.Tensor:
        """The few-shot task adapt.py meets, as a training loss (prototypical networks, Snell et al. 2017,
        within each person): per person in the batch, one random row of each of their classes is that
        class's prototype (k=1); every other row of the person is scored by its negative squared distance
        to the person's prototypes, per embedding dimension (so the loss does not grow with the width,
        which at full scale drowned the cross entropy: unadapted Biopac 0.81 -> 0.69), cross entropy over
        the classes the person has in the batch. It trains embeddings in which one repetition of each
        movement tells a person's movements apart: what adapt.py's prototype head needs. Measured on
        CV folds 0-2, it did not help adaptation (docs/experiments.md); it is an option, off by default."""
        # one random support row per (person, class): a random order, then the first row of each pair
        order = torch.randperm(len(y), device=y.device)
        pair = (people * self.hparams.num_classes + y)[order]
        first = torch.ones_like(pair, dtype=torch.bool)
        sorted_pair, by_pair = torch.sort(pair, stable=True)
        first[by_pair[1:]] = sorted_pair[1:] != sorted_pair[:-1]
        support, query = order[first], order[~first]
        if len(query) == 0:
            return embedding.sum() * 0.0  # every (person, class) has one row: nothing to score
        distance = torch.cdist(embedding[query], embedding[support]).square() / embedding.shape[1]
        same_person = people[query, None] == people[None, support]
        logits = (-distance).masked_fill(~same_person, float("-inf"))
        target = (same_person & (y[query, None] == y[None, support])).float().argmax(1)
        return nn.functional.cross_entropy(logits, target)

    @staticmethod
    def mixup(batch: int, alpha: float) -> tuple[float, torch.Tensor]:
        """Mixup (Zhang et al. 2018): lambda ~ Beta(alpha, alpha) and a permutation of the batch; each
        sample i becomes lam * x[i] + (1 - lam) * x[perm[i]], its loss lam * CE(y[i]) + (1 - lam) * CE(y[perm[i]])
        with the configured label smoothing on both terms.

        Here, not under data.augment: mixup changes the targets (hence the loss), and the data module's
        augmentation sees only the matrices (on_after_batch_transfer hands the labels through untouched).

        lambda is folded to max(lambda, 1 - lambda): the same mixtures (the partner is a random
        permutation, and Beta(alpha, alpha) is symmetric), but y[i] is always the larger share, so
        train/acc is the accuracy against each mixed sample's dominant label.

        Draws come from torch's global CPU generator, which the step_seed callback reseeds from
        (seed, epoch, batch) before every training step, as it does for dropout: a resumed run draws
        what the uninterrupted one did, with no generator state to keep in the checkpoint (without
        that callback the draws still follow the global seed, but a resumed run draws anew)."""
        lam = float(torch.distributions.Beta(float(alpha), float(alpha)).sample())
        return max(lam, 1.0 - lam), torch.randperm(batch)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        preds = logits.argmax(1)
        self.val_loss(self.criterion(logits, y))
        self.val_acc(preds, y)
        self.val_f1(preds, y)
        self.val_confusion(preds, y)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/f1_macro", self.val_f1, on_step=False, on_epoch=True)

    def on_train_epoch_start(self) -> None:
        scheduler = self.lr_schedulers()
        scheduler.total_epochs = self.trainer.max_epochs  # a resumed run may extend max_epochs
        scheduler.set_epoch(self.current_epoch)

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """No-op: Lightning's epoch-end step runs after checkpoints are written and is skipped when
        resuming, so a resumed run would lag one step. The schedule is driven by set_epoch (epoch
        start) and observe (validation end, before checkpoints) instead."""

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the pre-training sanity check is no result
            self.val_acc_best(self.val_acc.compute())
            # the same on every rank (torchmetrics syncs compute); sync_dist says so to Lightning
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)
            scheduler = self.lr_schedulers()
            if scheduler is not None and scheduler.uses_plateau:
                monitored = {"val/acc": self.val_acc, "val/loss": self.val_loss, "val/f1_macro": self.val_f1}
                scheduler.observe(float(monitored[self.hparams.scheduler["monitor"]].compute()))
        self.last_confusion = self.val_confusion.compute().cpu()
        self.val_confusion.reset()

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(matrices, row positions) -> (class probabilities, the same positions), for train()'s reports
        (training/scoring.py). float32 softmax of float32 logits, also under bf16 autocast."""
        x, positions = batch
        return torch.softmax(self(x).float(), dim=1), positions

    def configure_optimizers(self):
        settings = dict(self.hparams.optimizer)
        name = settings.pop("name")
        if settings.get("fused") and self._clips_under_mixed_precision():
            # Lightning refuses to clip the gradients of an optimizer that unscales them itself (a fused
            # step) under mixed precision; foreach is the next-fastest multi-tensor step, and clips.
            log.info("optimizer.fused, clipped gradients, %s: a foreach step instead", self.trainer.precision)
            settings |= {"fused": False, "foreach": True}
        optimizer_class = getattr(torch.optim, name, None)
        if not isinstance(optimizer_class, type) or not issubclass(optimizer_class, torch.optim.Optimizer):
            raise SemgError(f"optimizer.name '{name}' is not a torch.optim optimizer", fix="e.g. AdamW, Adam, SGD")
        try:
            optimizer = optimizer_class(self.parameters(), **settings)
        except TypeError as err:
            raise SemgError(f"optimizer {name}: {err}", fix="check the keys of the optimizer config") from None
        schedule = dict(self.hparams.scheduler)
        if schedule.pop("monitor") not in ("val/acc", "val/loss", "val/f1_macro"):
            raise SemgError("scheduler.monitor must be val/acc, val/loss or val/f1_macro", fix="e.g. val/acc")
        scheduler = WarmupCosinePlateau(optimizer, total_epochs=self.trainer.max_epochs, **schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def _clips_under_mixed_precision(self) -> bool:
        """The case Lightning's MixedPrecision plugin refuses for a fused step (its clip_gradients)."""
        trainer = self._trainer  # None when the module is used outside a Trainer
        return bool(trainer and trainer.gradient_clip_val and isinstance(trainer.precision_plugin, MixedPrecision))
