"""The adaptive LDA (semg_hht/classic/adaptive.py): a person's class means with the training people's covariance."""

from __future__ import annotations

import numpy as np
import pytest

from semg_hht.classic.adaptive import (
    AdaptiveSettings,
    adaptive_probabilities,
    read_features,
    shared_covariance,
)
from semg_hht.errors import SemgError

SETTINGS = AdaptiveSettings(own_weight=0.0, log_amplitude=False, ridge=1e-3)


def people_windows(rng: np.random.Generator, n_people: int, windows: int, d: int = 12, classes: int = 3):
    """Windows of people who share one strongly correlated noise (a loud common direction, as co-contraction
    gives) but place their classes each in their own spot: (x, y, person) rows."""
    mixing = np.eye(d) + 3.0 * np.outer(np.ones(d), np.ones(d)) / np.sqrt(d)
    x, y, who = [], [], []
    for p in range(n_people):
        means = rng.standard_normal((classes, d))
        for c in range(classes):
            x.append(means[c] + rng.standard_normal((windows, d)) @ mixing.T)
            y += [c] * windows
            who += [p] * windows
    return np.concatenate(x), np.array(y), np.array(who)


def accuracy(own_weight: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x, y, who = people_windows(rng, 8, 40)
    shared = shared_covariance(x, y, who)
    right = []
    for person in range(8, 14):  # new people: 4 support windows a class, 36 scored
        xp, yp, _ = people_windows(np.random.default_rng(seed * 100 + person), 1, 40)
        support = np.concatenate([np.flatnonzero(yp == c)[:4] for c in range(3)])
        scored = np.setdiff1d(np.arange(len(yp)), support)
        settings = AdaptiveSettings(own_weight, False, 1e-3)
        probs = adaptive_probabilities(shared, xp[support], yp[support], xp[scored], 3, settings)
        right.append(probs.argmax(1) == yp[scored])
    return float(np.mean(np.concatenate(right)))


def test_the_shared_covariance_beats_a_few_support_windows_alone():
    """Twelve support windows in 12 dimensions tell the class means but not their covariance."""
    alone, adaptive = accuracy(1.0), accuracy(0.0)
    assert adaptive >= alone + 0.1, (alone, adaptive)
    assert accuracy(0.75) >= alone + 0.05


def test_probabilities_are_a_distribution_per_row():
    rng = np.random.default_rng(1)
    x, y, who = people_windows(rng, 3, 10)
    probs = adaptive_probabilities(shared_covariance(x, y, who), x[who == 0], y[who == 0], x[who == 1], 3, SETTINGS)
    assert probs.shape == (30, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert (probs >= 0).all()


def test_each_training_person_counts_in_their_own_units():
    """One person ten times louder than the rest leaves the shared covariance as it was."""
    rng = np.random.default_rng(2)
    x, y, who = people_windows(rng, 4, 20)
    louder = x.copy()
    louder[who == 0] = 10 * louder[who == 0] + 5
    np.testing.assert_allclose(shared_covariance(louder, y, who), shared_covariance(x, y, who), atol=1e-9)


def test_only_the_amplitude_features_are_read_as_logs():
    names = ["ch0_mav", "ch0_zc", "ch0_rms", "ch1_wl", "ch1_var", "ch1_mnf", "ch1_ar1"]
    x = np.array([[np.e, 3.0, 1.0, np.e**2, 1.0, 80.0, -0.5]])
    read = read_features(x, names, AdaptiveSettings(0.5, True, 1e-3))
    np.testing.assert_allclose(read, [[1.0, 3.0, 0.0, 2.0, 0.0, 80.0, -0.5]])
    assert read_features(x, names, SETTINGS) is x
    assert np.isfinite(read_features(np.zeros((1, 7)), names, AdaptiveSettings(0.5, True, 1e-3))).all()


def test_support_rows_missing_a_class_are_refused():
    rng = np.random.default_rng(3)
    x, y, who = people_windows(rng, 2, 5)
    keep = (who == 0) & (y != 2)
    with pytest.raises(SemgError, match=r"miss classes \[2\]"):
        adaptive_probabilities(shared_covariance(x, y, who), x[keep], y[keep], x[who == 1], 3, SETTINGS)


@pytest.mark.parametrize("cfg", [{"own_weight": 1.5, "log_amplitude": True, "ridge": 0.001},
                                 {"own_weight": 0.5, "log_amplitude": True, "ridge": -1}])  # fmt: skip
def test_settings_out_of_range_are_refused(cfg):
    with pytest.raises(SemgError, match="own_weight in"):
        AdaptiveSettings.of(cfg)
