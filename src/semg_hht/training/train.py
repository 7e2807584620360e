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
from semg_hht.io import save_figure, write_csv, write_json
from semg_hht.models import HHTClassifier
from semg_hht.models.calibration import CalibrationSettings
from semg_hht.reporting.plots import axis_in_hz, channel_names, class_means_figure
from semg_hht.reporting.report import prediction_rows, recording_metrics, write_history, write_split_report
from semg_hht.training.calibration import calibrate, store_record
from semg_hht.training.callbacks import CtrlCLikeSigterm, EpochHistory, SaveOnSigterm
from semg_hht.training.quiet import quiet_third_party
from semg_hht.training.resume import adopt_checkpoint
from semg_hht.training.scoring import score_sets

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


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback], **overrides: Any) -> L.Trainer:
    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values() if c] + extra_callbacks
    if cfg.trainer.get("sync_batchnorm") and not _on_gpu(cfg.trainer.accelerator):
        log.info("trainer.sync_batchnorm is GPU-only (torch's SyncBatchNorm): each CPU process keeps its own")
        overrides["sync_batchnorm"] = False
    loggers = [build(c) for c in (cfg.get("logger") or {}).values() if c]
    if not loggers and any(isinstance(c, LearningRateMonitor) for c in callbacks):  # Lightning: traceback in fit
        raise SemgError(
            "callbacks.lr_monitor logs the learning rate, but no logger is configured",
            fix="keep a logger (logger=tensorboard) or also pass ~callbacks.lr_monitor",
        )
    return build(cfg.trainer, callbacks=callbacks, logger=loggers or False, **overrides)


def _on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def check_stages(cfg: DictConfig) -> None:
    """Settings that cannot work together, refused before any training: data.split=none leaves no
    validation set, so nothing may be chosen on or steered by val/* metrics."""
    if (cfg.data.get("person_norm") or {}).get("enabled") and cfg.model.get("input_log_ref") is not None:
        raise SemgError(
            "data.person_norm standardises the input: the model must not log-compress it again",
            fix="set model.input_log_ref=null and data.person_norm.log_ref instead (or experiment=person_norm)",
        )
    if cfg.model.get("prototype_loss") and not (cfg.data.get("episodes") or {}).get("people"):
        raise SemgError(
            f"model.prototype_loss={cfg.model.prototype_loss} compares recordings of one person: batches must be "
            "drawn by person",
            fix="set data.episodes.people (e.g. 8), or model.prototype_loss=0",
        )
    averaging = [
        name
        for name, c in (cfg.get("callbacks") or {}).items()
        if str((c or {}).get("_target_", "")).endswith(".WeightAverage")
    ]
    if averaging and cfg.report_on != "last":
        raise SemgError(
            f"callbacks.{averaging[0]} ends the run on averaged weights; report_on={cfg.report_on} scores best.ckpt",
            fix="set report_on=last (as experiment=muscletracker_movement does)",
        )
    if cfg.data.split != "none":
        return
    if cfg.report_on != "last":
        raise SemgError("data.split=none has no validation set to pick a best checkpoint on", fix="set report_on=last")
    for name, callback in (cfg.get("callbacks") or {}).items():
        monitor = str((callback or {}).get("monitor") or "")
        if monitor.startswith("val/"):
            raise SemgError(
                f"callbacks.{name} watches {monitor}, which data.split=none never computes",
                fix=f"drop it with ~callbacks.{name} (or use experiment=final_model)",
            )
    if cfg.scheduler.get("plateau"):
        raise SemgError(
            f"scheduler plateau cuts follow {cfg.scheduler.monitor}, which data.split=none never computes",
            fix="use scheduler=warmup_cosine (or experiment=final_model)",
        )


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


def describe(model: HHTClassifier) -> str:
    """One line on what is trained (instead of Lightning's table of every module, metrics included)."""
    hp, count = model.hparams, lambda module: sum(p.numel() for p in module.parameters())
    path = model.linear_path
    return (
        f"{hp.num_layers} conv blocks from {hp.base_channels} channels ({hp.norm} norm, {hp.pool} pooling) + "
        f"{hp.head} head on {hp.in_channels}x{hp.input_size}x{hp.input_size} matrices, {len(hp.class_names)} classes: "
        f"{count(model.encoder):,} + {count(model.head):,} parameters"
        + (f" + a linear path on {hp.linear_path}x{hp.linear_path} inputs ({count(path):,})" if path else "")
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg, TRAIN)  # types and ranges (report_on too) before an hour of training, not after
    quiet_third_party()
    check_stages(cfg)
    calibration = CalibrationSettings.of(OmegaConf.to_container(cfg.calibration, resolve=True))
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    run_test = datamodule.has_test_set if cfg.test is None else bool(cfg.test)
    if run_test and not datamodule.has_test_set:
        raise SemgError("test=true but no test set is configured", fix="set data.test_dir or data.test_filter")
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
    no_val = {"limit_val_batches": 0, "num_sanity_val_steps": 0} if cfg.data.split == "none" else {}
    ctrl_c = CtrlCLikeSigterm()
    trainer = build_trainer(cfg, [history, SaveOnSigterm(str(last)), ctrl_c], **no_val)
    log_hyperparameters(trainer, cfg, model)
    log.info("run dir: %s", out_dir)
    log.info("model: %s", describe(model))

    started = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    except SIGTERMException:  # Lightning's SystemExit(None): would exit 0 with no word and no metrics
        if ctrl_c.received:
            raise SemgError(
                "training stopped by Ctrl-C (SIGINT); the state was saved to last.ckpt",
                path=out_dir,
                fix=f"resume with ckpt_path={last}",
                status=130,
            ) from None
        raise SemgError(
            "training stopped by SIGTERM (job cancelled or preempted); the state was saved to last.ckpt",
            path=out_dir,
            fix=f"resume with ckpt_path={last}",
        ) from None
    finally:
        if resume_from is not None and resume_from.name == ".resume.ckpt":
            resume_from.unlink(missing_ok=True)
    fit_seconds = time.perf_counter() - started
    if trainer.interrupted:  # rank zero says so; the other processes stop quietly
        if not trainer.is_global_zero:
            return {}
        raise SemgError(
            "training was interrupted", path=out_dir, fix="resume with ckpt_path=<run>/checkpoints/last.ckpt"
        )

    # The same on every process (the monitored val/acc is synced): every process scores the same weights.
    monitored = [c for c in trainer.checkpoint_callbacks if c.monitor]  # best.ckpt's callback, if any
    best_path = monitored[0].best_model_path if monitored else ""
    scored_model = cfg.report_on if best_path else "last"
    # read before scoring: predict resets callback_metrics and restores callback states (these rows too)
    acc_best, history_rows = trainer.callback_metrics.get("val/acc_best"), list(history.rows)
    metrics: dict[str, Any] = {
        "scored_model": scored_model,
        "val/acc_best": None if acc_best is None else float(acc_best),
        "best_checkpoint": best_path or None,
        "epochs": trainer.current_epoch,
        "fit_seconds": round(fit_seconds, 2),
        "n_train": len(datamodule.train_index),
        "n_val": len(datamodule.val_index),
        "n_test": len(datamodule.test_recordings),
        "target": cfg.data.target,
        "split": cfg.data.split,
        "fold": cfg.data.fold if cfg.data.split == "group" else None,
        "classes": list(datamodule.class_names),
    }
    sets = {"val": (datamodule.x, torch.from_numpy(datamodule.val_index))}
    if run_test:
        sets["test"] = (datamodule.test_x, torch.arange(len(datamodule.test_recordings)))
    ckpt_path = best_path if scored_model == "best" else None  # None: the final weights, as fit left them
    probs = score_sets(trainer, model, sets, ckpt_path, cfg.data.eval_batch_size)  # every process: collective
    if not trainer.is_global_zero:  # rank zero writes the report
        return {}

    if "val" in probs:
        metrics |= score_validation(probs["val"], datamodule, out_dir, scored_model)
    if run_test:
        metrics |= run_test_stage(trainer, model, probs["test"], datamodule, scored_model, out_dir)
    # the file of the scored weights: best.ckpt, or last.ckpt when it holds the final epoch's
    scored_file = (Path(best_path), None) if ckpt_path else (last, trainer.current_epoch - 1)
    metrics |= calibrate_scored(calibration, probs, datamodule, *scored_file)
    write_history(out_dir, history_rows, len(datamodule.class_names))
    x_train = datamodule.x[torch.from_numpy(datamodule.train_index)].numpy()
    y_train = datamodule.y[torch.from_numpy(datamodule.train_index)].numpy()
    title = "class-mean spectra minus their mean (training recordings, as the model sees them)"
    cells = [datamodule.recordings[i].labels.get("channel") for i in datamodule.train_index]
    names = channel_names(cells, x_train.shape[1])
    axis = axis_in_hz(datamodule.frequency_axis)
    figure = class_means_figure(x_train, y_train, datamodule.class_names, title, names, axis)
    save_figure(figure, out_dir / "class_mean_spectra.png")
    write_json(out_dir / "metrics.json", metrics)
    log.info("wrote metrics.json, reports and plots to %s", out_dir)  # rank zero only (tests/test_reliability.py)
    return metrics


def calibrate_scored(
    settings: CalibrationSettings,
    probs: dict[str, torch.Tensor],
    dm: HHTDataModule,
    path: Path,
    final_epoch: int | None,
) -> dict[str, Any]:
    """The scored model's temperature and calibration errors (training/calibration.py), and the
    temperature stored for predict.py in ``path``, the checkpoint of the scored weights (when it holds
    ``final_epoch``, if given). The report files (val/test_predictions.csv) keep the plain softmax."""
    labels = {"val": dm.y[torch.from_numpy(dm.val_index)]} | ({"test": dm.test_y} if "test" in probs else {})
    people = [dm.recordings[i].subject or "" for i in dm.val_index.tolist()]
    metrics, record = calibrate(settings, probs, labels, people)
    if record is not None:
        metrics["calibrated_checkpoint"] = str(path) if store_record(path, record, final_epoch) else None
    return metrics


def score_validation(probs: torch.Tensor, dm: HHTDataModule, out_dir: Path, scored_model: str) -> dict[str, Any]:
    """The scored model's probabilities on the validation rows, scored per window and per recording,
    with the report files."""
    recordings = [dm.recordings[i] for i in dm.val_index.tolist()]
    y_true = dm.y[torch.from_numpy(dm.val_index)].numpy()
    write_predictions(out_dir / "val_predictions.csv", recordings, probs.numpy(), dm.class_names, y_true)
    scores = recording_metrics(y_true, probs.numpy(), dm.class_names, recordings)
    return write_split_report(out_dir, "val", scores, dm.class_names, scored_model)


def write_predictions(path: Path, recordings: list, probs, class_names, y_true) -> None:
    """Every scored matrix with its class probabilities (what evaluate.py's CNN + classic rows average)."""
    rows, columns = prediction_rows(
        [r.path for r in recordings],
        [r.subject for r in recordings],
        [r.labels.get("recording") for r in recordings],
        probs,
        class_names,
        y_true,
    )
    write_csv(path, rows, columns)


def run_test_stage(
    trainer: L.Trainer, model: HHTClassifier, probs: torch.Tensor, dm: HHTDataModule, scored_model: str, out_dir: Path
) -> dict[str, Any]:
    """The scored model's probabilities on the test set: test_predictions.csv, the test report files,
    and the test scalars (with the loss) sent to the loggers."""
    recordings, y_true = dm.test_recordings, dm.test_y.numpy()
    scores = recording_metrics(y_true, probs.numpy(), dm.class_names, recordings)
    write_predictions(out_dir / "test_predictions.csv", recordings, probs.numpy(), dm.class_names, y_true)
    metrics = write_split_report(
        out_dir, "test", scores, dm.class_names, "best checkpoint" if scored_model == "best" else "last epoch"
    )
    metrics["test/subjects"] = sorted({r.subject for r in recordings if r.subject})
    # the training loss on log-probabilities (log_softmax of them is themselves); the clamp keeps a
    # probability that underflowed to 0 finite
    log_probs = probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
    scalars = {k: v for k, v in metrics.items() if isinstance(v, float)}
    scalars["test/loss"] = float(model.criterion(log_probs, dm.test_y))
    for logger in trainer.loggers:
        logger.log_metrics(scalars, step=trainer.global_step)
        logger.save()  # the loggers were finalised when predict ended: write these out too
    log.info(
        "test set (%d recordings, %d people): acc %.3f, balanced %.3f, per recording %.3f, chance %.3f",
        len(recordings),
        len({r.subject for r in recordings}),
        metrics["test/acc"],
        metrics["test/balanced_acc"],
        metrics["test/recording_acc"],
        metrics["test/chance"],
    )
    return metrics
