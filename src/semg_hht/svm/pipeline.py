"""The seed's SVM as an sklearn Pipeline: StandardScaler + RBF SVC with Platt-scaled probabilities.

SVC(probability=True) is deprecated from scikit-learn 1.9; its replacement, used here, is the same
method made explicit: CalibratedClassifierCV(SVC, method="sigmoid", ensemble=False) fits a sigmoid
on cross-validated decision values, then the SVC on all training data. Every value is in
conf/fit_svm.yaml (svm.*). An optional grid search picks C and gamma first, with subject-disjoint
folds when subjects are known (the honest estimate for a person-level label like gender).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from semg_hht.errors import SemgError

log = logging.getLogger(__name__)


def _svc(cfg: Mapping[str, Any], seed: int, **override: Any) -> SVC:
    params = {
        "kernel": cfg["kernel"],
        "C": cfg["C"],
        "gamma": cfg["gamma"],
        "class_weight": cfg["class_weight"],
    }
    return SVC(**(params | override), random_state=seed)


def _folds(cfg: Mapping[str, Any], y: np.ndarray, groups: Sequence[str | None], seed: int):
    """Group-aware folds when every training recording has a subject, plain stratified otherwise."""
    wanted = int(cfg["cv"])
    if all(g is not None for g in groups):
        # every held-out fold should see each class: at most as many folds as the rarest class has subjects
        per_class = min(len({g for g, c in zip(groups, y.tolist(), strict=True) if c == k}) for k in set(y.tolist()))
        if per_class >= 2:
            if per_class < wanted:
                log.warning("grid search: %d subject-disjoint folds (subjects of the rarest class)", per_class)
            return StratifiedGroupKFold(min(wanted, per_class), shuffle=True, random_state=seed), "subject"
        log.warning("grid search: too few subjects per class for subject-disjoint folds; using stratified folds")
    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise SemgError(
            "grid search needs at least two training recordings per class",
            fix="add recordings or set svm.grid_search.enabled=false",
        )
    return StratifiedKFold(min(wanted, smallest), shuffle=True, random_state=seed), "stratified"


def grid_search(
    cfg: Mapping[str, Any], svc_cfg: Mapping[str, Any], x: np.ndarray, y: np.ndarray,
    groups: Sequence[str | None], seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Best C/gamma of the plain scaler+SVC by cross-validation on the training side only."""
    folds, kind = _folds(cfg, y, groups, seed)
    search = GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("svc", _svc(svc_cfg, seed))]),
        {"svc__C": list(cfg["C"]), "svc__gamma": list(cfg["gamma"])},
        scoring=cfg["scoring"],
        cv=folds,
        n_jobs=cfg["n_jobs"],
        error_score="raise",
    )
    codes = None if kind == "stratified" else np.unique(np.asarray(groups, dtype=object), return_inverse=True)[1]
    search.fit(x, y, groups=codes)
    best = {k.removeprefix("svc__"): v for k, v in search.best_params_.items()}
    log.info("grid search (%s folds): best %s, %s %.4f", kind, best, cfg["scoring"], search.best_score_)
    return {
        "best_params": best,
        "best_score": float(search.best_score_),
        "scoring": cfg["scoring"],
        "folds": f"{folds.get_n_splits()} {kind}",
    }


def fit_pipeline(
    cfg: Mapping[str, Any], x: np.ndarray, y: np.ndarray, groups: Sequence[str | None], seed: int
) -> tuple[Pipeline, dict[str, Any] | None]:
    """The fitted pipeline (and the grid search summary when one ran)."""
    search = grid_search(cfg["grid_search"], cfg, x, y, groups, seed) if cfg["grid_search"]["enabled"] else None
    calibration = cfg["calibration"]
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "svm",
                CalibratedClassifierCV(
                    _svc(cfg, seed, **(search["best_params"] if search else {})),
                    method=calibration["method"],
                    cv=calibration["cv"],
                    ensemble=False,
                ),
            ),
        ]
    )
    try:
        pipeline.fit(x, y)
    except ValueError as err:
        raise SemgError(
            f"cannot fit the SVM on {len(y)} training recordings ({err})",
            fix="lower svm.calibration.cv or add recordings of the rarest class",
        ) from None
    return pipeline, search
