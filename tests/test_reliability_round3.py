"""Issue #32 (reliability, round 3): misleading messages, tracebacks and silently wrong results, each a
case that failed before its fix."""

from __future__ import annotations

import logging

import numpy as np
from omegaconf import OmegaConf

from semg_hht.svm.pipeline import fit_pipeline
from tests.helpers import CONF


def test_svm_calibration_never_turns_the_predictions_around(caplog):
    """svm.calibration.cv=2 on a few recordings: the held-out decision values of an SVM that memorises
    noise rank the classes backwards, and a free Platt sigmoid fitted on them (slope > 0) flipped every
    prediction: train accuracy 0.000. Now the sigmoid is kept non-decreasing and a warning says why."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "fit_svm.yaml").svm)
    cfg["calibration"]["cv"] = 2
    x = np.random.default_rng(1).normal(size=(8, 4))
    y = np.array([0, 1] * 4)
    with caplog.at_level(logging.WARNING):
        pipeline, _ = fit_pipeline(cfg, x, y, [None] * 8, 0)
    sigmoid = pipeline[-1].calibrated_classifiers_[0].calibrators[0]
    assert sigmoid.a_ <= 0
    assert (pipeline.predict(x) == y).mean() == 0.5  # the class share: no better than chance, never inverted
    assert np.allclose(pipeline.predict_proba(x), 0.5)
    assert "rank the classes backwards (svm.calibration.cv=2)" in caplog.text
    # an SVM that does generalise keeps its own, decreasing sigmoid and no warning
    caplog.clear()
    x[y == 1] += 3.0
    with caplog.at_level(logging.WARNING):
        pipeline, _ = fit_pipeline(cfg, x, y, [None] * 8, 0)
    assert pipeline[-1].calibrated_classifiers_[0].calibrators[0].a_ < 0
    assert (pipeline.predict(x) == y).all() and "backwards" not in caplog.text
