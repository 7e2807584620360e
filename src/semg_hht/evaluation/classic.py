"""The classic baseline scored: per-channel MAV/RMS/WL/ZC/SSC/VAR/mean+median frequency/AR features of the raw
recordings (semg_hht.classic), standardised, with LDA or an RBF SVM, on exactly the CNN's folds.

The folds come from semg_hht.data.splits (group_split / stratified_split with the experiment's data.* settings)
and every score from semg_hht.reporting.report.classification_metrics, so the numbers are comparable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from semg_hht.classic.classifiers import make_classifier
from semg_hht.classic.recordings import FeatureSet, per_person_standardized
from semg_hht.data.splits import group_split, stratified_split
from semg_hht.errors import SemgError
from semg_hht.reporting.report import classification_metrics, recording_vote


def person_standardized(fs: FeatureSet) -> FeatureSet:
    """Every person's feature rows standardised by that person's own mean and std (per feature): the
    classic side of data.person_norm (unlabelled statistics of each person, new people included)."""
    x = per_person_standardized(fs.x, fs.subjects)
    return FeatureSet(x, fs.y, fs.class_names, fs.subjects, fs.paths, fs.names, fs.units, fs.ids)


def score_split(
    fs: FeatureSet,
    method: str,
    train: np.ndarray,
    val: np.ndarray,
    seed: int,
    params: Mapping[str, Any] | None = None,
    test: FeatureSet | None = None,
) -> dict[str, Any]:
    """Fit on the rows of the ``train`` recordings, score the ``val`` recordings (or, with ``test``,
    every recording of that other set). Windows are voted into one prediction per recording, so
    every figure is per recording."""
    train_rows = fs.rows_of(train)
    seen = sorted({fs.class_names[c] for c in fs.y[train_rows]})
    if len(seen) < 2:  # sklearn would stop with a traceback
        raise SemgError(
            f"a training side holds one class only ({', '.join(seen)}: {len(train)} recordings of "
            f"{len({fs.subjects[i] for i in train_rows})} subjects); {method} cannot be fitted",
            fix="use more subjects (limit_subjects) or fewer folds (data.n_folds)",
        )
    model = make_classifier(method, params, seed).fit(fs.x[train_rows], fs.y[train_rows])
    scored = test if test is not None else fs
    rows = np.arange(len(scored.y)) if test is not None else fs.rows_of(val)
    predicted = np.eye(len(fs.class_names))[model.predict(scored.x[rows])]
    y_true, y_pred = recording_vote(scored.unit[rows], scored.y[rows], predicted)
    first = np.unique(scored.unit[rows], return_index=True)[1]
    subjects = [scored.subjects[rows[i]] for i in first]
    scores = classification_metrics(y_true, y_pred, fs.class_names, subjects)
    scores.pop("report")
    return scores | {"val_subjects": sorted({s for s in subjects if s})}


def evaluate_group_folds(
    fs: FeatureSet,
    method: str,
    n_folds: int,
    split_seed: int,
    seed: int = 42,
    params: Mapping[str, Any] | None = None,
) -> list[dict]:
    """One score dict per subject-disjoint fold (data.split=group, folds 0..n_folds-1), drawn over
    recordings exactly as the CNN's DataModule draws them."""
    y, subjects = fs.recordings()
    folds = []
    for fold in range(n_folds):
        train, val = group_split(y, subjects, fs.class_names, n_folds, fold, split_seed)
        folds.append(score_split(fs, method, train, val, seed, params) | {"fold": fold})
    return folds


def evaluate_random_split(
    fs: FeatureSet,
    method: str,
    val_fraction: float,
    split_seed: int,
    seed: int = 42,
    params: Mapping[str, Any] | None = None,
) -> dict:
    """The seed's random split (data.split=stratified): people on both sides, for the leakage check."""
    y, _ = fs.recordings()
    train, val = stratified_split(y, fs.class_names, val_fraction, split_seed)
    return score_split(fs, method, train, val, seed, params)


def evaluate_test_set(
    fs: FeatureSet, test: FeatureSet, method: str, seed: int = 42, params: Mapping[str, Any] | None = None
) -> dict:
    """Fit on every development recording, score the held-out test set (people never seen)."""
    return score_split(fs, method, np.unique(fs.unit), np.empty(0, int), seed, params, test=test) | {"fold": "test"}
