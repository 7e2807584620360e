"""Per-person normalisation: each person's matrices standardised by that person's own statistics.

A standard cross-subject calibration: what differs between people (electrode placement, skin, muscle
size) shifts every one of their spectra alike, so subtracting the person's mean spectrum and dividing
by their spread leaves what differs between movements. It needs unlabelled recordings of every new
person (their statistics), and assumes those recordings cover the classes: ``calibrate_on`` limits
the statistics to some classes to measure what happens when they do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from semg_hht.errors import SemgError


def log_compress(x: torch.Tensor, ref: float) -> torch.Tensor:
    """log1p(x / ref) scaled so that 1 stays 1 (as the encoder's LogCompress)."""
    return torch.log1p(x.clamp_min(0) / ref) / math.log1p(1.0 / ref)


def person_standardize(
    x: torch.Tensor,
    subjects: Sequence[str | None],
    log_ref: float | None,
    calibration: np.ndarray | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """(N, C, H, W) -> the same, each person's rows minus their mean matrix, divided by their
    per-channel standard deviation; log-compressed first when ``log_ref`` is set. ``calibration``
    (bool per row) marks the rows the statistics come from (default: all of the person's rows)."""
    if any(s is None for s in subjects):
        missing = sum(s is None for s in subjects)
        raise SemgError(
            f"data.person_norm needs the person of every recording; {missing} have none",
            fix="use a manifest with a subject column (data.label_source=manifest), or person_norm.enabled=false",
        )
    if log_ref is not None:
        x = log_compress(x, log_ref)
    out = torch.empty_like(x)
    people = np.asarray(subjects, dtype=object)
    for person in dict.fromkeys(subjects):
        rows = np.flatnonzero(people == person)
        basis = rows if calibration is None else rows[calibration[rows]]
        if len(basis) == 0:
            raise SemgError(
                f"person {person} has no calibration recording (person_norm.calibrate_on)",
                fix="record the calibration classes for every person, or widen calibrate_on",
            )
        ref = x[torch.from_numpy(basis)]
        mean = ref.mean(0, keepdim=True)  # (1, C, H, W): the person's mean spectrum
        std = (ref - mean).std(dim=(0, 2, 3), keepdim=True) if len(basis) > 1 else ref.std(dim=(2, 3), keepdim=True)
        out[torch.from_numpy(rows)] = (x[torch.from_numpy(rows)] - mean) / (std + eps)
    return out
