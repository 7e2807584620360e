"""The seed's SVM as an sklearn Pipeline: StandardScaler + RBF SVC with Platt-scaled probabilities.

SVC(probability=True) is deprecated from scikit-learn 1.9; its replacement, used here, is the same
method made explicit: CalibratedClassifierCV(SVC, method="sigmoid", ensemble=False) fits a sigmoid
on cross-validated decision values, then the SVC on all training data. The sigmoid is kept
non-decreasing in the decision value (see _no_reversed_sigmoid): an unconstrained one fitted to a few
held-out values can come out reversed and turn every prediction around. Every value is in
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
    if calibration["method"] == "sigmoid":
        _no_reversed_sigmoid(pipeline, y, calibration["cv"])
    return pipeline, search


def _no_reversed_sigmoid(pipeline: Pipeline, y: np.ndarray, folds: Any) -> None:
    """Platt's sigmoid P(class | f) = 1 / (1 + exp(a f + b)) must not decrease with the SVM's decision value
    f (a <= 0). Fitted freely on the cross-validated decision values of a few recordings (an SVM that
    memorises noise ranks its held-out folds backwards) it comes out with a > 0, and the predicted class, the
    most probable one, is then the opposite of the SVM's own decision: train accuracy 0.000 with cv=2.

    The constrained fit: the likelihood is concave in (a, b), so with the optimum at a > 0 the best a <= 0 is
    a = 0, and b gives the mean of Platt's smoothed targets (the class share). The SVM's ranking then carries
    no information on held-out data, which the probabilities say, and a warning says why.
    """
    calibrated = pipeline[-1].calibrated_classifiers_[0]
    classes = np.asarray(calibrated.classes)
    positives = classes[1:] if len(classes) == 2 else classes  # one sigmoid per class, one for binary
    reversed_for = []
    for positive, sigmoid in zip(positives, calibrated.calibrators, strict=True):
        if sigmoid.a_ <= 0:
            continue
        is_positive = y == positive
        n_pos, n_neg = int(is_positive.sum()), int((~is_positive).sum())
        share = (n_pos * (n_pos + 1.0) / (n_pos + 2.0) + n_neg / (n_neg + 2.0)) / len(y)
        sigmoid.a_, sigmoid.b_ = 0.0, float(np.log((1.0 - share) / share))
        reversed_for.append(positive)
    if reversed_for:
        which = "the classes" if len(classes) == 2 else f"{len(reversed_for)} of {len(classes)} classes"
        every = len(reversed_for) == len(positives)
        log.warning(
            "SVM calibration: the cross-validated decision values of %d training recordings rank %s backwards "
            "(svm.calibration.cv=%s): the SVM does not generalise across these folds, so their probabilities "
            "fall back to the class share%s; add training recordings or raise svm.calibration.cv",
            len(y), which, folds, " and every prediction is the most common class" if every else "",
        )  # fmt: skip
