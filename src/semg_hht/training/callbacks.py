"""Training callbacks: a TensorBoard confusion matrix per validation epoch, saliency maps at the end of
fit, the epoch history, step seeds, a checkpoint on SIGTERM, and Ctrl-C handled as SIGTERM is."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from semg_hht.errors import SemgError
from semg_hht.io import save_figure
from semg_hht.models.saliency import class_saliency
from semg_hht.reporting.plots import axis_in_hz, channel_names, confusion_figure, saliency_figure

log = logging.getLogger(__name__)


class ConfusionMatrixImage(L.Callback):
    """Adds the validation confusion matrix as an image to TensorBoard every ``every_n_epochs``
    validation epochs and after the last one (drawing one costs ~0.25 s: every epoch of a 60-epoch
    CPU run spent a third of its time here)."""

    def __init__(self, tag: str, every_n_epochs: int):
        if every_n_epochs < 1:
            raise SemgError(f"callbacks.confusion_matrix.every_n_epochs={every_n_epochs} must be >= 1", fix="e.g. 10")
        self.tag, self.every_n_epochs = tag, every_n_epochs

    def due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch
        last = trainer.should_stop or (trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs)
        return last or (epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        matrix = getattr(pl_module, "last_confusion", None)
        if trainer.sanity_checking or matrix is None or not self.due(trainer):
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                fig = confusion_figure(matrix.numpy(), pl_module.hparams.class_names, f"epoch {trainer.current_epoch}")
                logger.experiment.add_figure(self.tag, fig, global_step=trainer.current_epoch, close=True)


class SaliencyImage(L.Callback):
    """At the end of fit, saliency.png in ``out_dir`` (and an image in TensorBoard): for each class, where
    the model's evidence for it lies in the class's validation samples (semg_hht.models.saliency), beside
    their mean input. It reads the final weights, the model at hand, whichever checkpoint metrics.json
    scores (report_on)."""

    def __init__(self, out_dir: str, tag: str, batch_size: int, max_per_class: int):
        self.out_dir, self.tag = Path(out_dir), tag
        self.batch_size, self.max_per_class = batch_size, max_per_class

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:  # one picture per run; the model is the same on every rank
            return
        dm = trainer.datamodule
        if dm is None or not len(getattr(dm, "val_index", ())):
            log.debug("saliency.png skipped: no validation set (data.split=none)")
            return
        rows = torch.from_numpy(dm.val_index)
        names = pl_module.hparams.class_names
        device = trainer.strategy.root_device  # by on_fit_end Lightning has moved the model to the CPU
        saliency, mean_input, counts = class_saliency(
            pl_module, dm.x[rows], dm.y[rows], len(names), self.batch_size, self.max_per_class, device
        )
        last = max(trainer.current_epoch - 1, 0)  # current_epoch counts the epochs done; history.csv numbers from 0
        title = f"final weights (epoch {last}): validation samples, at most {self.max_per_class} per class"
        channels = channel_names([dm.recordings[i].labels.get("channel") for i in dm.val_index], mean_input.shape[1])
        fig = saliency_figure(mean_input, saliency, counts, names, title, channels, axis_in_hz(dm.frequency_axis))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(self.tag, fig, global_step=trainer.global_step, close=False)
        save_figure(fig, self.out_dir / "saliency.png")


class EpochHistory(L.Callback):
    """Epoch-level metrics and learning rate, kept in checkpoints so curves survive a resume."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k})
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])


class StepSeed(L.Callback):
    """Seeds torch's RNG from (seed, epoch, batch) before every training step.

    Dropout masks (and model.mixup_alpha's draws) then depend on the step alone, not on whatever
    else drew random numbers before it (Lightning's resume path does: reseeding once per epoch was
    not enough), so a run resumed from last.ckpt after a crash trains exactly as the uninterrupted
    run would have (on CPU with trainer.deterministic=true). Batch order and augmentation carry their own state.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        torch.manual_seed((self.seed * 1_000_003 + trainer.current_epoch) * 1_000_003 + batch_idx)


class SaveOnSigterm(L.Callback):
    """SIGTERM (SLURM cancelling or preempting the job): Lightning stops after the current batch
    and exits as if all went well; this saves the state there first, so nothing since the last
    epoch is lost and train() can say how to resume. Lightning's SLURM auto-requeue (SIGUSR1) is
    untouched."""

    def __init__(self, path: str):
        self.path = path

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path, weights_only=False)  # the whole state: a resume needs the optimizer


class CtrlCLikeSigterm(L.Callback):
    """Ctrl-C (SIGINT) during fit stops as SIGTERM does: after the current batch, with the whole state saved
    by SaveOnSigterm, so train() can say how to resume (exit status 130). Lightning's own handling raised
    KeyboardInterrupt wherever the signal landed (mid-step: nothing could be saved) and exited 1 with only
    "Detected KeyboardInterrupt". A second Ctrl-C stops at once, as before.

    The handler is installed once Lightning has registered its own (at the sanity check or the start of
    training), so Lightning's teardown puts the previous one back, on success and failure alike. A SIGINT
    that the process ignores (a background job) stays ignored.
    """

    def __init__(self):
        self.received = False

    def _install(self, trainer: L.Trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:  # ignored, or already ours
            return

        def stop_after_this_batch(signum, frame) -> None:
            if self.received or trainer.received_sigterm:  # the second Ctrl-C: at once
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self.received = True
            log.warning("Ctrl-C: stopping after this batch and saving the state (Ctrl-C again stops at once)")
            trainer._signal_connector.received_sigterm = True  # what Lightning's SIGTERM handler sets

        signal.signal(signal.SIGINT, stop_after_this_batch)

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)
