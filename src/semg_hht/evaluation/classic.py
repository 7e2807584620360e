"""The classic baseline: per-channel MAV/RMS/WL/ZC/SSC/VAR/mean+median frequency/AR features of the
raw recordings, standardised, with LDA or an RBF SVM, scored on exactly the CNN's folds.

The raw recordings are read and filtered by make_hht's own reader and filters; the folds come from
semg_hht.data.splits (group_split / stratified_split with the experiment's data.* settings) and
every score from semg_hht.training.report.classification_metrics, so the numbers are comparable.
"""

from __future__ import annotations

import csv
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from semg_hht.data.labels import row_filter, row_matches
from semg_hht.data.splits import group_split, stratified_split
from semg_hht.errors import SemgError
from semg_hht.evaluation.features import feature_names, feature_vector
from semg_hht.hht.filters import condition
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import FilterSettings, ReaderSettings
from semg_hht.training.report import classification_metrics

# The classifiers; their settings come from conf/evaluate.yaml's classifiers.<method> (sklearn's own
# defaults for a setting left out there).
METHODS: dict[str, type] = {"lda": LinearDiscriminantAnalysis, "svm": SVC}


def make_classifier(method: str, params: Mapping[str, Any] | None = None, seed: int = 42) -> Pipeline:
    """StandardScaler + the method's sklearn classifier with ``params`` (random_state = seed where it has one)."""
    if method not in METHODS:
        raise SemgError(f"unknown classic method '{method}'", fix=f"use one of {sorted(METHODS)}")
    cls = METHODS[method]
    kwargs = dict(params or {})
    if "random_state" in inspect.signature(cls).parameters:
        kwargs.setdefault("random_state", seed)
    try:
        classifier = cls(**kwargs)
        # sklearn's own check (>= 1.2): a bad value fails here, naming the key, not mid-way through the folds
        getattr(classifier, "_validate_params", lambda: None)()
    except (TypeError, ValueError) as err:
        message = " ".join(str(err).split())
        raise SemgError(f"classifiers.{method}: {message}", fix=f"see {cls.__name__}'s parameters") from None
    return make_pipeline(StandardScaler(), classifier)


@dataclass
class FeatureSet:
    x: np.ndarray  # (recordings, features)
    y: np.ndarray  # class index
    class_names: list[str]
    subjects: list[str | None]
    paths: list[Path]
    names: list[str]


def select_rows(rows: Sequence[Mapping[str, str]], spec: Mapping[str, Any]) -> list[Mapping[str, str]]:
    """Rows whose columns match every filter value (a value or a list of values), as data.filter."""
    wanted = row_filter(spec)
    return [r for r in rows if row_matches(r, wanted)]


def load_features(
    manifest: Path,
    target: str,
    classes: Sequence[str] | None,
    rows_wanted: Mapping[str, Any],
    filters: FilterSettings,
    features: Mapping[str, Any] | None = None,
    reader: ReaderSettings | None = None,
    limit_subjects: int | None = None,
) -> FeatureSet:
    """Features of every raw recording in an input manifest (make_hht's columns: path, fs_hz,
    subject, <target>) that passes rows_wanted (data.filter) and has a target label in ``classes``.
    ``features``: feature_vector's settings (ar_order, threshold, nperseg)."""
    features = dict(features or {})
    ar_order = features.get("ar_order", 4)
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = select_rows(list(csv.DictReader(f)), rows_wanted)
    rows = [r for r in rows if (r.get(target) or "").strip()]
    if classes is None:
        classes = sorted({r[target].strip() for r in rows})
    rows = [r for r in rows if r[target].strip() in classes]
    if limit_subjects is not None:
        keep = sorted({r["subject"] for r in rows})[:limit_subjects]
        rows = [r for r in rows if r["subject"] in keep]
    if not rows:
        raise SemgError(f"no rows with a {target} label in {list(classes)}", path=manifest, fix="check the filter")
    reader = reader or ReaderSettings()
    x, paths = [], []
    for row in rows:
        path = manifest.parent / row["path"]
        rec = read_recording(path, reader, fs_hint=float(row["fs_hz"]) if row.get("fs_hz") else None)
        cond = condition(rec.signal, rec.fs, filters, path)
        x.append(feature_vector(cond.signal, cond.fs, **features))
        paths.append(path)
    x = np.asarray(x)
    return FeatureSet(
        x=x,
        y=np.array([list(classes).index(r[target].strip()) for r in rows]),
        class_names=list(classes),
        subjects=[(r.get("subject") or "").strip() or None for r in rows],
        paths=paths,
        names=feature_names(x.shape[1] // (8 + ar_order), ar_order),
    )


def score_split(
    fs: FeatureSet, method: str, train: np.ndarray, val: np.ndarray, seed: int, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    seen = sorted({fs.class_names[c] for c in fs.y[train]})
    if len(seen) < 2:  # sklearn would stop with a traceback
        raise SemgError(
            f"a training side holds one class only ({', '.join(seen)}: {len(train)} recordings of "
            f"{len({fs.subjects[i] for i in train})} subjects); {method} cannot be fitted",
            fix="use more subjects (limit_subjects) or fewer folds (data.n_folds)",
        )
    model = make_classifier(method, params, seed).fit(fs.x[train], fs.y[train])
    scores = classification_metrics(fs.y[val], model.predict(fs.x[val]), fs.class_names, [fs.subjects[i] for i in val])
    scores.pop("report")
    return scores | {"val_subjects": sorted({s for i in val if (s := fs.subjects[i])})}


def evaluate_group_folds(
    fs: FeatureSet,
    method: str,
    n_folds: int,
    split_seed: int,
    seed: int = 42,
    params: Mapping[str, Any] | None = None,
) -> list[dict]:
    """One score dict per subject-disjoint fold (data.split=group, folds 0..n_folds-1)."""
    folds = []
    for fold in range(n_folds):
        train, val = group_split(fs.y, fs.subjects, fs.class_names, n_folds, fold, split_seed)
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
    train, val = stratified_split(fs.y, fs.class_names, val_fraction, split_seed)
    return score_split(fs, method, train, val, seed, params)
