"""train(): the temperature of the scored model (fitted on its validation rows, or calibration.temperature),
the expected calibration error before and after on validation (and the test set), and the record
written into the checkpoint that holds the scored weights, where predict.py reads it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from semg_hht.models.calibration import (
    CHECKPOINT_KEY,
    CalibrationSettings,
    expected_calibration_error,
    fit_temperature,
    heldout_ece,
    log_probabilities,
    scaled,
)
from semg_hht.models.checkpoint import read_checkpoint
from semg_hht.training.checkpoint_io import SafeCheckpointIO

log = logging.getLogger(__name__)


def calibrate(
    settings: CalibrationSettings,
    probs: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    val_people: list[str],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(metrics.json entries, the checkpoint record or None) from the scored model's probabilities
    ``probs`` and true classes ``labels`` per set (val, test).

    metrics: temperature; val/ece and val/ece_calibrated (T fitted on these rows: in-sample), and
    val/ece_calibrated_heldout (each validation person scaled by the T fitted on the others), test/ece
    and test/ece_calibrated where there is a test set. No validation rows and no calibration.temperature
    (a final model): nothing to fit on, the probabilities stay the plain softmax (temperature null)."""
    if not settings.enabled:
        return {}, None
    lo, hi = settings.min_temperature, settings.max_temperature
    logits = {name: log_probabilities(p) for name, p in probs.items()}
    if settings.temperature is not None:
        temperature, source = settings.temperature, "calibration.temperature"
    elif "val" in logits:
        temperature = fit_temperature(logits["val"], labels["val"], lo, hi)
        source = f"fitted on the validation split ({len(labels['val'])} rows, NLL)"
        if not lo * 1.01 < temperature < hi / 1.01:
            log.warning("calibration: the fitted temperature %.4g is at its search range's bound", temperature)
    else:
        log.info(
            "calibration: no validation split to fit a temperature on; predict.py's probabilities stay the "
            "plain softmax (set calibration.temperature, e.g. the CV runs' median temperature)"
        )
        return {"temperature": None}, None
    metrics: dict[str, Any] = {"temperature": temperature}
    for name, rows in logits.items():
        metrics[f"{name}/ece"] = expected_calibration_error(probs[name], labels[name], settings.bins)
        metrics[f"{name}/ece_calibrated"] = expected_calibration_error(
            scaled(rows, temperature), labels[name], settings.bins
        )
    if "val" in logits and settings.temperature is None:
        metrics["val/ece_calibrated_heldout"] = heldout_ece(
            logits["val"], labels["val"], val_people, settings.bins, lo, hi
        )
    record = {"temperature": temperature, "source": source, "bins": settings.bins} | {
        k.replace("/", "_"): v for k, v in metrics.items() if "/ece" in k
    }
    log.info(
        "calibration: temperature %.4g (%s); ECE %s",
        temperature,
        source,
        ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if "/ece" in k and v is not None),
    )
    return metrics, record


def store_record(path: Path | None, record: dict[str, Any], final_epoch: int | None = None) -> bool:
    """The record written into the checkpoint file at ``path`` (atomically; weights untouched).
    ``final_epoch``: the epoch the file must hold (last.ckpt of the final weights), else it is left
    alone. Returns whether it was written."""
    if path is None or not Path(path).is_file():
        log.warning("calibration: no checkpoint file of the scored model to store the temperature in")
        return False
    checkpoint = read_checkpoint(path)
    if final_epoch is not None and checkpoint.get("epoch") != final_epoch:
        log.warning("calibration: %s is not the final epoch's checkpoint: the temperature is not stored", path)
        return False
    checkpoint[CHECKPOINT_KEY] = record
    SafeCheckpointIO(min_free_mb=0, headroom=0).save_checkpoint(checkpoint, Path(path))
    return True
