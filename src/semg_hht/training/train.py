"""train(cfg) -> metrics: the whole training run behind train.py, importable and testable."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from semg_hht.config import build
from semg_hht.config_check import TRAIN, check_config
from semg_hht.data import HHTDataModule
from semg_hht.errors import SemgError
from semg_hht.models import HHTClassifier
from semg_hht.models.inference import run_batched
from semg_hht.training.callbacks import EpochHistory, SaveOnSigterm
from semg_hht.training.report import write_run_report
from semg_hht.training.resume import adopt_checkpoint

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig) -> HHTDataModule:
    return build(cfg.data, _convert_="all")


def build_model(cfg: DictConfig, datamodule: HHTDataModule) -> HHTClassifier:
    """The model config plus what only the data knows (classes) and the optimiser/scheduler groups,
    all as plain values so the checkpoint carries them."""
    return build(
        cfg.model,
        num_classes=datamodule.num_classes,
        class_names=list(datamodule.class_names),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
        _convert_="all",
    )


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback]) -> L.Trainer:
    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values()] + extra_callbacks
    overrides = {}
    if cfg.trainer.get("sync_batchnorm") and not _on_gpu(cfg.trainer.accelerator):
        log.info("trainer.sync_batchnorm is GPU-only (torch's SyncBatchNorm): each CPU process keeps its own")
        overrides["sync_batchnorm"] = False
    loggers = [build(c) for c in (cfg.get("logger") or {}).values()]
    if not loggers and any(isinstance(c, LearningRateMonitor) for c in callbacks):  # Lightning: traceback in fit
        raise SemgError(
            "callbacks.lr_monitor logs the learning rate, but no logger is configured",
            fix="keep a logger (logger=tensorboard) or also pass ~callbacks.lr_monitor",
        )
    return build(cfg.trainer, callbacks=callbacks, logger=loggers or False, **overrides)


def _on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def log_hyperparameters(trainer: L.Trainer, cfg: DictConfig, model: HHTClassifier) -> None:
    """One hparams entry per run, linked to val/acc_best so TensorBoard's HPARAMS tab compares runs."""
    params = {
        "model": dict(model.hparams),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "trainer": OmegaConf.to_container(cfg.trainer, resolve=True),
        "seed": cfg.seed,
    }
    params["model"].pop("class_names", None)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics={"val/acc_best": 0.0})
        else:
            logger.log_hyperparams(params)


def report_model(report_on: str, final: HHTClassifier, best_path: str) -> HHTClassifier:
    """The model the run's report scores: the best checkpoint (chosen on the validation split, so its
    score there is optimistic) or the final epoch's weights (no choice made on validation: the honest
    figure for cross-validation)."""
    if report_on == "best" and best_path:
        final = HHTClassifier.load_from_checkpoint(best_path, map_location="cpu", weights_only=True)
    return final.eval()


def train(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg, TRAIN)  # types and ranges (report_on too) before an hour of training, not after
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    if rank_zero_only.rank == 0:  # DDP: every rank runs train(); the run's files are written once
        datamodule.write_split(out_dir / "split.csv")
    model = build_model(cfg, datamodule)
    resume_from = (
        adopt_checkpoint(cfg.ckpt_path, model.hparams, out_dir / "checkpoints", cfg.trainer.max_epochs)
        if cfg.ckpt_path
        else None
    )

    history = EpochHistory()
    last = out_dir / "checkpoints" / "last.ckpt"
    trainer = build_trainer(cfg, [history, SaveOnSigterm(str(last))])
    log_hyperparameters(trainer, cfg, model)
    log.info("run dir: %s", out_dir)

    started = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    except SIGTERMException:  # Lightning's SystemExit(None): would exit 0 with no word and no metrics
        raise SemgError(
            "training stopped by SIGTERM (job cancelled or preempted); the state was saved to last.ckpt",
            path=out_dir,
            fix=f"resume with ckpt_path={last}",
        ) from None
    finally:
        if resume_from is not None and resume_from.name == ".resume.ckpt":
            resume_from.unlink(missing_ok=True)
    fit_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:  # rank zero scores the model and writes the report
        return {}
    if trainer.interrupted:
        raise SemgError(
            "training was interrupted", path=out_dir, fix="resume with ckpt_path=<run>/checkpoints/last.ckpt"
        )

    monitored = [c for c in trainer.checkpoint_callbacks if c.monitor]  # best.ckpt's callback, if any
    best_path = monitored[0].best_model_path if monitored else ""
    scored = report_model(cfg.report_on, model, best_path)
    val_rows = torch.from_numpy(datamodule.val_index)
    device = trainer.strategy.root_device
    logits = run_batched(scored.to(device), datamodule.x[val_rows], cfg.data.eval_batch_size, device)
    acc_best = trainer.callback_metrics.get("val/acc_best")
    metrics = write_run_report(
        out_dir,
        scored_model=cfg.report_on if best_path else "last",
        y_true=datamodule.y[val_rows].numpy(),
        y_pred=logits.argmax(1).numpy(),
        class_names=datamodule.class_names,
        subjects=[datamodule.recordings[i].subject for i in datamodule.val_index.tolist()],
        history=history.rows,
        extra={
            "val/acc_best": None if acc_best is None else float(acc_best),
            "best_checkpoint": best_path or None,
            "epochs": trainer.current_epoch,
            "fit_seconds": round(fit_seconds, 2),
            "n_train": len(datamodule.train_index),
            "n_val": len(datamodule.val_index),
            "target": cfg.data.target,
            "split": cfg.data.split,
            "fold": cfg.data.fold if cfg.data.split == "group" else None,
            "classes": list(datamodule.class_names),
        },
    )
    log.info("wrote metrics.json, reports and plots to %s", out_dir)
    return metrics
