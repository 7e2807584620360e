"""Train/validation splits: the seed's stratified random split, subject-disjoint k-fold, or none
(every recording trains: the final model fitted after cross-validation).

A random split over one person's recordings measures who they are, not the class: whenever
subjects are known, report the group split (data.split=group). split.csv records which file went where.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from semg_hht.errors import SemgError
from semg_hht.io import write_csv

SPLIT_COLUMNS = ["file", "subset", "label", "subject"]  # split.csv (train.py and fit_svm.py runs)


def _check_classes(y: np.ndarray, class_names: Sequence[str], minimum: int, why: str) -> None:
    counts = Counter(y.tolist())
    if len(counts) < 2:
        only = class_names[next(iter(counts))] if counts else "none"
        raise SemgError(
            f"only one class present ({only}); a classifier needs at least two",
            fix="add recordings of the other classes or choose another data.target",
        )
    few = {class_names[c]: n for c, n in sorted(counts.items()) if n < minimum}
    if few:
        raise SemgError(
            f"classes with fewer than {minimum} recordings: {few} ({why})",
            fix="add recordings, drop the class from data.classes, or lower data.n_folds",
        )


def stratified_split(
    y: np.ndarray,
    class_names: Sequence[str],
    val_fraction: float,
    seed: int,
    units: Sequence[object] | None = None,
):
    """The seed's split: sklearn train_test_split stratified by target, its own random seed.

    ``units`` (e.g. the recording of each window) keeps every sample of a unit on one side; the
    split is then drawn over units, each labelled by its first sample. With one sample per unit
    it is exactly the per-sample split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise SemgError(f"data.val_fraction={val_fraction} must be between 0 and 1", fix="e.g. 0.2")
    _check_classes(y, class_names, 2, "a stratified split puts each class on both sides")
    codes = unit_codes(units if units is not None else range(len(y)))
    first = np.unique(codes, return_index=True)[1]  # codes count up in order of first appearance
    try:
        train, val = train_test_split(
            np.arange(len(first)), test_size=val_fraction, random_state=seed, stratify=y[first]
        )
    except ValueError as err:  # e.g. fewer validation slots than classes
        raise SemgError(f"cannot split {len(first)} recordings: {err}", fix="raise data.val_fraction") from None
    return np.flatnonzero(np.isin(codes, train)), np.flatnonzero(np.isin(codes, val))


def no_split(y: np.ndarray, class_names: Sequence[str]):
    """data.split=none: every recording trains, none validates (the final model on everyone)."""
    _check_classes(y, class_names, 1, "")
    return np.arange(len(y)), np.empty(0, dtype=np.int64)


def unit_codes(units: Sequence[object]) -> np.ndarray:
    """0, 1, 2, ... per distinct unit, numbered in order of first appearance."""
    numbers: dict[object, int] = {}
    return np.array([numbers.setdefault(u, len(numbers)) for u in units], dtype=np.int64)


def group_split(
    y: np.ndarray,
    groups: Sequence[str | None],
    class_names: Sequence[str],
    n_folds: int,
    fold: int,
    seed: int,
):
    """Fold ``fold`` of a stratified group k-fold: no subject is on both sides."""
    if any(g is None for g in groups):
        missing = sum(g is None for g in groups)
        raise SemgError(
            f"data.split=group needs a subject for every recording; {missing} have none",
            fix="use data.label_source=manifest with a 'subject' column, or data.split=stratified",
        )
    if not 0 <= fold < n_folds:
        raise SemgError(f"data.fold={fold} is outside 0..{n_folds - 1}", fix="pick a fold below data.n_folds")
    subjects = sorted(set(groups))
    if len(subjects) < n_folds:
        raise SemgError(
            f"{len(subjects)} subjects cannot fill data.n_folds={n_folds} subject-disjoint folds",
            fix=f"set data.n_folds to at most {len(subjects)}",
        )
    _check_classes(y, class_names, 1, "")
    codes = np.array([subjects.index(g) for g in groups])
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    train, val = list(folds.split(np.zeros(len(y)), y, codes))[fold]
    return np.sort(train), np.sort(val)


def split_rows(
    sides: Iterable[tuple[str, Sequence[Any], np.ndarray, np.ndarray]], class_names: Sequence[str]
) -> list[dict[str, Any]]:
    """split.csv rows from ``(subset, recordings, y, index)`` per side: every indexed recording's file,
    subset, label name and subject."""
    rows = []
    for subset, recordings, y, index in sides:
        for i in index.tolist():
            rec = recordings[i]
            label = class_names[int(y[i])]
            rows.append({"file": str(rec.path), "subset": subset, "label": label, "subject": rec.subject or ""})
    return rows


def write_split(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """The exact file lists used, so any number can be traced back to its recordings."""
    return write_csv(path, rows, SPLIT_COLUMNS)
