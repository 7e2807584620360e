"""Adaptive LDA (Vidovic et al., IEEE TNSRE 2016): a new person's classes placed by their own few support
windows, their spread borrowed from the people a model was trained on.

With one or two repetitions per movement, a person's class means are fair but their within-class
covariance (24 features from a few dozen windows) is not: LDA fitted on the person alone trusts it fully.
Here the covariance is a weighted sum of the person's own and the pooled within-class covariance of the
training people, each standardised by their own windows, so the two are in the same units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semg_hht.classic.recordings import per_person_standardized, standardized
from semg_hht.errors import SemgError

# the amplitude features (classic/features.py): log-normal across windows and people, so read as logs
AMPLITUDE = ("mav", "rms", "wl", "var")


@dataclass(frozen=True)
class AdaptiveSettings:
    """evaluate.py's adaptation.adaptive_lda.*"""

    own_weight: float  # the person's own within-class covariance's share (1: LDA of the person alone)
    log_amplitude: bool  # the amplitude features read as logs
    ridge: float  # added to the covariance's diagonal, times its mean variance

    @classmethod
    def of(cls, cfg: Mapping[str, Any]) -> AdaptiveSettings:
        settings = cls(float(cfg["own_weight"]), bool(cfg["log_amplitude"]), float(cfg["ridge"]))
        if not 0 <= settings.own_weight <= 1 or settings.ridge < 0:
            raise SemgError(
                f"adaptation.adaptive_lda: own_weight={settings.own_weight}, ridge={settings.ridge}",
                fix="own_weight in [0, 1], ridge >= 0",
            )
        return settings


def read_features(x: np.ndarray, names: Sequence[str], settings: AdaptiveSettings) -> np.ndarray:
    """The feature rows as the adaptive LDA reads them (amplitude features as logs where set)."""
    if not settings.log_amplitude:
        return x
    out = np.array(x, dtype=float)
    columns = [i for i, name in enumerate(names) if name.rsplit("_", 1)[-1] in AMPLITUDE]
    out[:, columns] = np.log(np.maximum(out[:, columns], np.finfo(float).tiny))
    return out


def within_class(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The pooled within-group covariance: every row less its group's mean (a group: a class of one person)."""
    centred = np.array(x, dtype=float)
    for g in np.unique(groups):
        centred[groups == g] -= centred[groups == g].mean(0)
    return centred.T @ centred / max(len(x) - len(np.unique(groups)), 1)


def shared_covariance(x: np.ndarray, y: np.ndarray, people: np.ndarray) -> np.ndarray:
    """The training people's pooled within-class covariance, each person standardised by their own rows."""
    groups = np.array([f"{p}\0{c}" for p, c in zip(people, y, strict=True)])
    return within_class(per_person_standardized(x, people), groups)


def adaptive_probabilities(
    shared: np.ndarray,
    support_x: np.ndarray,
    support_y: np.ndarray,
    scored_x: np.ndarray,
    n_classes: int,
    settings: AdaptiveSettings,
) -> np.ndarray:
    """(scored rows, classes): each row's class probabilities from the person's support rows (their class means
    and, at own_weight, their within-class covariance) and the ``shared`` covariance, in the support's units."""
    missing = sorted(set(range(n_classes)) - set(support_y.tolist()))
    if missing:
        raise SemgError(f"adaptive LDA: the support rows miss classes {missing}", fix="give every class a support row")
    support, scored = standardized(support_x), standardized(scored_x, support_x)
    means = np.stack([support[support_y == c].mean(0) for c in range(n_classes)])
    own = within_class(support, support_y)
    covariance = settings.own_weight * own + (1 - settings.own_weight) * shared
    covariance = covariance + settings.ridge * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    weights = np.linalg.solve(covariance, means.T).T  # (classes, features): equal priors
    scores = scored @ weights.T - 0.5 * np.sum(weights * means, 1)
    scores -= scores.max(1, keepdims=True)
    probs = np.exp(scores)
    return probs / probs.sum(1, keepdims=True)
