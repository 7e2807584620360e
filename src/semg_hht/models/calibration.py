"""Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks"): one scalar T
divides the logits, p = softmax(z / T). T < 1 sharpens an under-confident model (label smoothing makes
one), T > 1 softens an over-confident one; the arg max, hence every accuracy, is unchanged.

train.py fits T on the validation rows of the model metrics.json scores (or takes calibration.temperature)
and stores it in that model's checkpoint as a record under CHECKPOINT_KEY; load_classifier reads it
back (1.0 for a checkpoint without one: the plain softmax), and predict.py's probabilities use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torchmetrics.functional.classification import multiclass_calibration_error

from semg_hht.errors import SemgError

CHECKPOINT_KEY = "calibration"  # the record's key in a checkpoint file (beside state_dict, hyper_parameters)


@dataclass(frozen=True)
class CalibrationSettings:
    """conf/train.yaml's calibration block."""

    enabled: bool
    temperature: float | None  # None: fitted on the validation split
    bins: int  # equal-width confidence bins of the expected calibration error
    min_temperature: float  # the fitted temperature's search range
    max_temperature: float

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> CalibrationSettings:
        made = cls(**settings)
        if not made.min_temperature < made.max_temperature:
            raise SemgError(
                f"calibration.min_temperature={made.min_temperature} is not below "
                f"calibration.max_temperature={made.max_temperature}",
                fix="e.g. calibration.min_temperature=0.01 calibration.max_temperature=100",
            )
        return made


def log_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """Softmax outputs back to logits, in float64 (equal to the network's up to a constant per row,
    which the softmax ignores); the clamp keeps a probability that underflowed to 0 finite."""
    probs = probs.double()
    return probs.clamp_min(torch.finfo(torch.float32).tiny).log()


def scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T), float32."""
    return torch.softmax(logits.double() / temperature, dim=1).float()


def nll(logits: torch.Tensor, y: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    return float(torch.nn.functional.cross_entropy(logits.double() / temperature, y))


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, lo: float, hi: float) -> float:
    """The T in [lo, hi] that minimises the NLL of the labels y: a bounded 1-D search (Brent's
    method) on log T. Rows that are all right with a margin make the optimum T -> 0 (every
    probability -> 1): the range keeps it finite, and a T at a bound says so."""
    if len(y) == 0:
        raise SemgError("no labelled rows to fit a temperature on", fix="set calibration.temperature=<a number>")
    y = torch.as_tensor(y, dtype=torch.long)
    result = minimize_scalar(
        lambda s: nll(logits, y, math.exp(s)), bounds=(math.log(lo), math.log(hi)), method="bounded"
    )
    return float(math.exp(result.x))


def expected_calibration_error(probs: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, bins: int) -> float:
    """ECE: the confidence (top probability) of each row in ``bins`` equal-width bins over [0, 1];
    the mean |accuracy - confidence| of the bins weighted by their share of rows (torchmetrics'
    MulticlassCalibrationError, norm l1)."""
    probs = torch.as_tensor(probs, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    return float(multiclass_calibration_error(probs, y, probs.shape[1], n_bins=bins, norm="l1"))


def heldout_ece(
    logits: torch.Tensor, y: torch.Tensor, groups: list[str], bins: int, lo: float, hi: float
) -> float | None:
    """The ECE of temperatures fitted elsewhere: each group's (person's) rows scaled by the T fitted on
    the other groups' rows, all rows scored together. None with fewer than two groups."""
    names = sorted(set(groups))
    if len(names) < 2:
        return None
    groups_array = np.asarray(groups)
    probs = torch.empty(logits.shape, dtype=torch.float32)
    for name in names:
        own = torch.from_numpy(groups_array == name)
        probs[own] = scaled(logits[own], fit_temperature(logits[~own], y[~own], lo, hi))
    return expected_calibration_error(probs, y, bins)


def temperature_of(checkpoint: Mapping[str, Any], path: str | Path) -> float:
    """The temperature a checkpoint's calibration record holds; 1.0 (the plain softmax) for a
    checkpoint without one (written before calibration existed, or with calibration.enabled=false)."""
    record = checkpoint.get(CHECKPOINT_KEY)
    if record is None:
        return 1.0
    temperature = record.get("temperature") if isinstance(record, Mapping) else None
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise SemgError(
            f"checkpoint's calibration record is unreadable (temperature {temperature!r})",
            path=path,
            fix="the file was edited: use the .ckpt train.py wrote",
        )
    return float(temperature)
