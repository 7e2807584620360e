"""The classic classifiers (StandardScaler + LDA or an RBF SVM; PCA + LDA for the linear control) and their
class probabilities per recording: what evaluate.py's rows, the CNN + classic mixtures and a person's classic side
(person.py) all fit."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from semg_hht.classic.recordings import FeatureSet
from semg_hht.errors import SemgError

# The classifiers; their settings come from conf/evaluate.yaml's classifiers.<method> (sklearn's own
# defaults for a setting left out there). pca_lda is the linear control on the CNN's own inputs.
METHODS: dict[str, type] = {"lda": LinearDiscriminantAnalysis, "svm": SVC, "pca_lda": LinearDiscriminantAnalysis}


def make_classifier(method: str, params: Mapping[str, Any] | None = None, seed: int = 42) -> Pipeline:
    """StandardScaler (+ PCA for pca_lda: ``n_components``) + the method's sklearn classifier with
    ``params`` (random_state = seed where it has one)."""
    if method not in METHODS:
        raise SemgError(f"unknown classic method '{method}'", fix=f"use one of {sorted(METHODS)}")
    cls = METHODS[method]
    kwargs = dict(params or {})
    steps = [StandardScaler()]
    if method == "pca_lda":
        steps.append(PCA(n_components=kwargs.pop("n_components", 50), random_state=seed))
    if "random_state" in inspect.signature(cls).parameters:
        kwargs.setdefault("random_state", seed)
    try:
        classifier = cls(**kwargs)
        for step in [*steps[1:], classifier]:  # sklearn's own check (>= 1.2): a bad value fails here, not mid-fold
            getattr(step, "_validate_params", lambda: None)()
    except (TypeError, ValueError) as err:
        message = " ".join(str(err).split())
        raise SemgError(f"classifiers.{method}: {message}", fix=f"see {cls.__name__}'s parameters") from None
    return make_pipeline(*steps, classifier)


def classic_probabilities(
    fs: FeatureSet, train: np.ndarray, scored: FeatureSet, method: str, params: Mapping[str, Any], cfg: Mapping
) -> np.ndarray:
    """(recordings of ``scored``, classes): the classic method fitted on fs's ``train`` recordings,
    its probabilities averaged over each recording's windows. A classifier without probabilities (SVC)
    gets Platt scaling fitted on cross-validation folds of the training rows."""
    model = make_classifier(method, params, cfg["seed"])
    if not hasattr(model, "predict_proba"):
        # its cross-validation fits are independent: n_jobs runs them side by side (same result)
        model = CalibratedClassifierCV(
            model, method="sigmoid", cv=cfg["calibration_cv"], ensemble=False, n_jobs=cfg["n_jobs"]
        )
    rows = fs.rows_of(train)
    model.fit(fs.x[rows], fs.y[rows])
    probs = np.zeros((int(scored.unit.max()) + 1, len(fs.class_names)))
    window_probs = np.zeros((len(scored.y), len(fs.class_names)))
    window_probs[:, model.classes_] = model.predict_proba(scored.x)  # a class missing from training stays 0
    np.add.at(probs, scored.unit, window_probs)
    return probs / np.bincount(scored.unit)[:, None]


def weighted_mean(cnn: np.ndarray, classic: np.ndarray, weight: float) -> np.ndarray:
    """A CNN + classic mixture's class probabilities: ``weight`` the CNN's share (the ensemble and adaptation rows)."""
    return weight * cnn + (1 - weight) * classic
