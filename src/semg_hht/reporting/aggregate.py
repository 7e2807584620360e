"""Fold results -> one table row (mean and std over folds), and the leakage check."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRICS = ("acc", "balanced_acc", "f1_macro", "subject_vote_acc", "chance")
LEAKAGE_TOLERANCE = 0.05  # "a few points": random vs subject-disjoint accuracy gap that triggers the warning


def aggregate(folds: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS) -> dict[str, Any]:
    """``{metric}_mean`` / ``{metric}_std`` (sample std, 0 for one fold) over the folds that have the
    metric (None / NaN skipped: e.g. no per-subject vote for movements), plus ``n_folds``."""
    row: dict[str, Any] = {"n_folds": len(folds)}
    for m in metrics:
        values = [float(f[m]) for f in folds if f.get(m) is not None and not math.isnan(float(f[m]))]
        row[f"{m}_mean"] = float(np.mean(values)) if values else None
        row[f"{m}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else (0.0 if values else None)
    return row


def leakage_check(random_acc: float, group_acc: float, tolerance: float = LEAKAGE_TOLERANCE) -> str | None:
    """A warning when the random split scores more than ``tolerance`` above (or below) the
    subject-disjoint folds: the random figure then measures who the person is, not the class."""
    gap = random_acc - group_acc
    if abs(gap) <= tolerance:
        return None
    return (
        f"LEAKAGE: random split {random_acc:.1%} vs subject-disjoint {group_acc:.1%} "
        f"({gap:+.1%}, more than {tolerance:.0%}): the random split has the same people on both sides; "
        "report the subject-disjoint figure"
    )
