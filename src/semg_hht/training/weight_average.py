"""Weight averaging over the last epochs of a run (stochastic weight averaging, SWA), built for this
project's schedule: Lightning's StochasticWeightAveraging swaps the LR scheduler for SWALR, which
would replace the warmup + cosine curve (models/schedule.py). This one leaves training alone.

After every epoch from ``start_fraction`` x max_epochs on, the parameters join a running mean. When
training ends (on_train_end: the model is still on the trainer's device) the mean replaces the
weights, BatchNorm's running statistics are recomputed with one pass over the training loader
(torch.optim.swa_utils.update_bn: training batches as training saw them, augmentation included,
dropout seeded), and the averaged model is written over ``checkpoint`` (last.ckpt): metrics.json
(report_on=last), saliency.png and last.ckpt all then hold the averaged weights.

The running mean is callback state, so it travels in every checkpoint and a resume from one written
during training picks it up. A checkpoint holding the finished average is refused as a resume point:
training on from an average is another method.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.optim.swa_utils import update_bn

from semg_hht.errors import SemgError
from semg_hht.models.checkpoint import read_checkpoint

log = logging.getLogger(__name__)


class WeightAverage(L.Callback):
    def __init__(self, start_fraction: float, seed: int, checkpoint: str | None):
        if isinstance(start_fraction, bool) or not isinstance(start_fraction, (int, float)):
            raise SemgError(f"callbacks.swa.start_fraction={start_fraction!r} is not a number", fix="e.g. 0.75")
        if not 0.0 <= start_fraction < 1.0:
            raise SemgError(
                f"callbacks.swa.start_fraction={start_fraction} must be in [0, 1)",
                fix="e.g. 0.75: average the last quarter of the epochs",
            )
        self.start_fraction, self.seed = float(start_fraction), seed
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.mean: dict[str, torch.Tensor] = {}  # parameter name -> running mean (float32)
        self.count = 0  # epochs in the mean
        self.last_epoch = -1  # the last epoch added
        self.start = -1  # first epoch averaged (from max_epochs, set when training starts)
        self.averaged = False  # the mean is in the model: what a finished run's last.ckpt holds

    def start_epoch(self, max_epochs: int | None) -> int:
        if max_epochs is None or max_epochs < 1:
            raise SemgError("callbacks.swa needs a fixed trainer.max_epochs", fix="set trainer.max_epochs, e.g. 60")
        return min(int(self.start_fraction * max_epochs), max_epochs - 1)

    # ---------------------------------------------------------------- training
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After a resume has restored the state: the mean must hold exactly the epochs of the window
        trained so far (a checkpoint without this state, or another max_epochs, would break that)."""
        start = self.start_epoch(trainer.max_epochs)
        expected = max(0, trainer.current_epoch - start)
        if self.count != expected or (self.count and self.start != start):
            raise SemgError(
                f"callbacks.swa: the checkpoint's weight average holds {self.count} epochs from epoch "
                f"{self.start}, this run needs {expected} from epoch {start}",
                fix="resume with the checkpoint's trainer.max_epochs and callbacks.swa settings, or train afresh",
            )
        self.start = start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or epoch < self.start or epoch <= self.last_epoch:
            return
        self.count += 1
        with torch.no_grad():
            for name, p in pl_module.named_parameters():
                value = p.detach().float()
                if name not in self.mean:
                    self.mean[name] = value.clone()
                else:  # a resumed mean comes back on the CPU
                    mean = self.mean[name] = self.mean[name].to(value.device)
                    mean += (value - mean) / self.count
        self.last_epoch = epoch

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.count:
            log.warning(
                "callbacks.swa: training stopped after epoch %d, before the averaging window (from epoch %d): "
                "the final weights are kept",
                trainer.current_epoch - 1,
                self.start,
            )
            return
        with torch.no_grad():
            for name, p in pl_module.named_parameters():
                p.copy_(self.mean[name].to(p.device, p.dtype))
        self.averaged = True
        batches = self.recompute_batchnorm(trainer, pl_module)
        log.info(
            "callbacks.swa: the weights are the mean of epochs %d-%d (%d)%s",
            self.start,
            self.last_epoch,
            self.count,
            f", BatchNorm statistics recomputed on {batches} training batches" if batches else "",
        )
        if self.checkpoint is not None:
            self.write_checkpoint(trainer, pl_module)

    def recompute_batchnorm(self, trainer: L.Trainer, pl_module: L.LightningModule) -> int:
        """update_bn over the training loader, on the trainer's device and precision (input dtype and
        autocast as in training), batches moved and augmented by Lightning's own transfer hooks, dropout
        seeded; under DDP each process sees its share and the statistics are averaged over the processes.
        Returns the batches seen (0: no BatchNorm)."""
        norms = [m for m in pl_module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        loader = trainer.train_dataloader
        if not norms or loader is None:
            return 0
        device = trainer.strategy.root_device
        seen = 0

        def inputs():
            nonlocal seen
            for batch in loader:
                seen += 1
                yield trainer.strategy.batch_to_device(trainer.precision_plugin.convert_input(batch))[0]

        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), trainer.precision_plugin.train_step_context():
            torch.manual_seed(self.seed)
            update_bn(inputs(), pl_module)
        if trainer.world_size > 1:
            for norm in norms:
                for name in ("running_mean", "running_var"):
                    buffer = getattr(norm, name)
                    if buffer is not None:
                        buffer.copy_(trainer.strategy.reduce(buffer.clone(), reduce_op="mean"))
        return seen

    def write_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The averaged model over the final epoch's checkpoint: its optimizer and loop state stay as
        written, the weights (BatchNorm statistics included) and this callback's state change."""
        path = self.checkpoint
        if trainer.is_global_zero:
            checkpoint = read_checkpoint(path) if path.is_file() else None
            if checkpoint is None:
                log.warning("callbacks.swa: no checkpoint %s to write the average over", path)
            elif checkpoint.get("epoch") != trainer.current_epoch - 1:
                log.warning("callbacks.swa: %s is not the final epoch's checkpoint: the average is not written", path)
            else:
                checkpoint["state_dict"] = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
                checkpoint.setdefault("callbacks", {})[self.state_key] = self.state_dict()
                trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
                log.info("callbacks.swa: wrote the averaged model to %s", path)
        trainer.strategy.barrier("swa_checkpoint")

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": {k: v.detach().cpu() for k, v in self.mean.items()},
            "count": self.count,
            "last_epoch": self.last_epoch,
            "start": self.start,
            "averaged": self.averaged,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("averaged"):
            raise SemgError(
                "callbacks.swa: this checkpoint holds the finished run's averaged weights, not a point to "
                "resume training from",
                fix="resume from a checkpoint written during training (e.g. epoch_050.ckpt), or train afresh",
            )
        self.mean = {k: v.clone() for k, v in state_dict["mean"].items()}
        self.count, self.last_epoch = int(state_dict["count"]), int(state_dict["last_epoch"])
        self.start, self.averaged = int(state_dict["start"]), False
