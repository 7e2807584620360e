"""The classic baseline: per-channel MAV/RMS/WL/ZC/SSC/VAR/mean+median frequency/AR features of the
raw recordings, standardised, with LDA or an RBF SVM, scored on exactly the CNN's folds.

The raw recordings are found, read and filtered by make_hht's own discovery, reader and filters (with
its settings: hht_dir's conversion.yaml, or evaluate.py's make_hht=[...]); given make_hht's output (hht_dir),
exactly the recordings and session segments it converted, under its recording ids. The folds come from
semg_hht.data.splits (group_split / stratified_split with the experiment's data.* settings) and
every score from semg_hht.reporting.report.classification_metrics, so the numbers are comparable.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from semg_hht.data.labels import row_filter, row_matches
from semg_hht.data.splits import group_split, stratified_split
from semg_hht.errors import SemgError
from semg_hht.evaluation.features import feature_names, feature_vector
from semg_hht.hht.filters import condition
from semg_hht.hht.inputs import discover
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import FilterSettings, InputSettings, ManifestColumns, ReaderSettings
from semg_hht.io import read_csv_rows
from semg_hht.reporting.report import classification_metrics, recording_vote

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


@dataclass
class FeatureSet:
    """Feature rows of recordings (or of their windows: ``units`` names each row's recording)."""

    x: np.ndarray  # (rows, features)
    y: np.ndarray  # class index per row
    class_names: list[str]
    subjects: list[str | None]  # per row
    paths: list[Path]  # per recording
    names: list[str]
    units: np.ndarray | None = None  # recording index per row; None = one row per recording
    ids: list[str] | None = None  # make_hht's recording id per recording (what the CNN's matrices are named by)

    @property
    def unit(self) -> np.ndarray:
        return np.arange(len(self.y)) if self.units is None else self.units

    def recordings(self) -> tuple[np.ndarray, list[str | None]]:
        """Label and subject of each recording (the level folds are drawn on)."""
        first = np.unique(self.unit, return_index=True)[1]
        return self.y[first], [self.subjects[i] for i in first]

    def rows_of(self, recordings: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.unit, recordings))

    def take(self, recordings: np.ndarray) -> FeatureSet:
        """The rows of some recordings, renumbered."""
        rows = self.rows_of(recordings)
        units = None if self.units is None else np.unique(self.units[rows], return_inverse=True)[1]
        return FeatureSet(
            self.x[rows], self.y[rows], self.class_names, [self.subjects[i] for i in rows],
            [self.paths[i] for i in np.asarray(recordings)], self.names, units,
            None if self.ids is None else [self.ids[i] for i in np.asarray(recordings)],
        )  # fmt: skip


def person_standardized(fs: FeatureSet, eps: float = 1e-9) -> FeatureSet:
    """Every person's feature rows standardised by that person's own mean and std (per feature): the
    classic side of data.person_norm (unlabelled statistics of each person, new people included)."""
    x = fs.x.astype(float).copy()
    people = np.asarray(fs.subjects, dtype=object)
    for person in dict.fromkeys(fs.subjects):
        rows = people == person
        x[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + eps)
    return FeatureSet(x, fs.y, fs.class_names, fs.subjects, fs.paths, fs.names, fs.units, fs.ids)


def window_starts(n: int, length: int, hop: int) -> list[int]:
    """Start samples of the full windows of ``length`` every ``hop`` (none when the recording is shorter)."""
    return list(range(0, n - length + 1, hop)) if n >= length else []


def select_rows(rows: Sequence[Mapping[str, str]], spec: Mapping[str, Any]) -> list[Mapping[str, str]]:
    """Rows whose columns match every filter value (a value or a list of values), as data.filter."""
    wanted = row_filter(spec)
    return [r for r in rows if row_matches(r, wanted)]


# make_hht's output manifest: columns of one matrix (not of its recording), and the stretch each converted
MATRIX_COLUMNS = ("file", "channel", "window", "t_start_s", "t_end_s", "hht_fs_hz")


def raw_recordings(
    manifest: Path, inputs: InputSettings, hht_dir: Path | None = None, segmented: bool = False
) -> list[dict[str, str]]:
    """The recordings of a make_hht input (manifest or folder, found by make_hht's own discovery with its
    inputs.* settings) as rows {path (absolute), fs_hz, source, subject, movement, gender, recording (make_hht's
    id), other columns}. With hht_dir (make_hht's output of this input): exactly the recordings it converted,
    one row each, with that manifest's id, labels and columns and the stretch of the conditioned signal it
    converted (t_start_s..t_end_s: a session's segment); nothing it skipped. Sessions (segment.enabled) need it."""
    jobs, _ = discover(manifest, inputs)
    if hht_dir is not None:
        return _converted(jobs, Path(hht_dir), manifest)
    if segmented:
        raise SemgError(
            "segment.enabled: the classic features are computed on the segments make_hht converted",
            path=manifest,
            fix="pass hht_dir=<make_hht's output folder of raw>",
        )
    return [
        {"path": j.path, "fs_hz": j.fs_raw, "source": j.source, "subject": j.subject, "movement": j.movement,
         "gender": j.gender, "recording": str(j.recording_number)} | dict(j.extra)
        for j in jobs
    ]  # fmt: skip


def _converted(jobs: list, hht_dir: Path, manifest: Path) -> list[dict[str, str]]:
    """One row per recording of hht_dir's manifest.csv made from one of ``jobs`` (matched by source)."""
    path = hht_dir / "manifest.csv"
    if not path.is_file():
        raise SemgError("no make_hht manifest.csv in hht_dir", path=hht_dir, fix="pass hht_dir=<make_hht's output>")
    _, matrices = read_csv_rows(path)
    by_source = {j.source: j for j in jobs}
    units: dict[str, dict[str, str]] = {}
    for row in matrices:
        job = by_source.get(row.get("source") or "")
        if job is None or not row.get("recording"):
            continue  # another input's recording (one folder may hold several)
        unit = units.get(row["recording"])
        if unit is None:
            unit = units[row["recording"]] = {k: v for k, v in row.items() if k not in MATRIX_COLUMNS}
            unit |= {"path": job.path, "fs_hz": job.fs_raw, "t_start_s": row["t_start_s"], "t_end_s": row["t_end_s"]}
        unit["t_start_s"] = min(unit["t_start_s"], row["t_start_s"], key=float)  # windows: their union
        unit["t_end_s"] = max(unit["t_end_s"], row["t_end_s"], key=float)
    if not units:
        raise SemgError(
            f"hht_dir's manifest.csv lists no recording of {manifest} (its sources are other files)",
            path=path,
            fix="pass the hht_dir make_hht wrote from raw (make_hht.py input=<raw>)",
        )
    return list(units.values())


def manifest_rows(
    manifest: Path,
    target: str,
    classes: Sequence[str] | None,
    rows_wanted: Mapping[str, Any],
    limit_subjects: int | None = None,
    columns: ManifestColumns | None = None,
    found: list[dict[str, str]] | None = None,
) -> tuple[list[Mapping[str, str]], list[str]]:
    """Rows of an input manifest, read by make_hht's own discovery (its inputs.manifest.* column names:
    ``columns``) as {path (absolute), fs_hz, subject, movement, gender, other columns} (or the rows
    ``found`` by raw_recordings), that pass rows_wanted (data.filter) and have a target label in
    ``classes``; and the class list."""
    if found is None:
        found = raw_recordings(manifest, InputSettings(manifest=columns or ManifestColumns()))
    rows = select_rows(found, rows_wanted)
    rows = [r for r in rows if (r.get(target) or "").strip()]
    if classes is None:
        classes = sorted({r[target].strip() for r in rows})
    rows = [r for r in rows if r[target].strip() in classes]
    if limit_subjects is not None:
        keep = sorted({r["subject"] for r in rows})[:limit_subjects]
        rows = [r for r in rows if r["subject"] in keep]
    if not rows:
        raise SemgError(f"no rows with a {target} label in {list(classes)}", path=manifest, fix="check the filter")
    return rows, list(classes)


def load_features(
    manifest: Path,
    target: str,
    classes: Sequence[str] | None,
    rows_wanted: Mapping[str, Any],
    filters: FilterSettings,
    features: Mapping[str, Any] | None = None,
    reader: ReaderSettings | None = None,
    limit_subjects: int | None = None,
    window: Mapping[str, float] | None = None,
    rows: list[Mapping[str, str]] | None = None,
) -> FeatureSet:
    """Features of every raw recording of an input manifest that passes rows_wanted (data.filter)
    and has a target label in ``classes`` (or of the given ``rows``: raw_recordings' rows, a row with
    t_start_s..t_end_s is that stretch of its conditioned recording, e.g. a session's segment). ``features``:
    feature_vector's settings (ar_order, threshold, nperseg); ``window`` ({length_s, hop_s}): one row per window."""
    features = dict(features or {})
    ar_order = features.get("ar_order", 4)
    if rows is None:
        rows, classes = manifest_rows(manifest, target, classes, rows_wanted, limit_subjects)
    reader = reader or ReaderSettings()
    x, y, subjects, units, paths = [], [], [], [], []
    last: tuple[Path, Any] | None = None  # a session's segments follow one another: read and filter it once
    for unit, row in enumerate(rows):
        path = manifest.parent / row["path"]  # manifest_rows' paths are absolute already
        if last is None or last[0] != path:
            rec = read_recording(path, reader, fs_hint=float(row["fs_hz"]) if row.get("fs_hz") else None)
            last = (path, condition(rec.signal, rec.fs, filters, path))
        cond = last[1]
        signal = cond.signal
        if row.get("t_start_s"):  # the stretch make_hht converted (its t_* are of the conditioned signal)
            signal = signal[round(float(row["t_start_s"]) * cond.fs) : round(float(row["t_end_s"]) * cond.fs)]
        pieces = [signal]
        if window:
            length, hop = round(window["length_s"] * cond.fs), round(window["hop_s"] * cond.fs)
            pieces = [signal[a : a + length] for a in window_starts(len(signal), length, hop)]
            if not pieces:
                raise SemgError(f"shorter than one {window['length_s']} s window", path=path, fix="shorten window")
        for piece in pieces:
            x.append(feature_vector(piece, cond.fs, **features))
            y.append(list(classes).index(row[target].strip()))
            subjects.append((row.get("subject") or "").strip() or None)
            units.append(unit)
        paths.append(path)
    x = np.asarray(x)
    return FeatureSet(
        x=x,
        y=np.array(y),
        class_names=list(classes),
        subjects=subjects,
        paths=paths,
        names=feature_names(x.shape[1] // (8 + ar_order), ar_order),
        units=np.array(units) if window else None,
        ids=[str(r.get("recording") or "") for r in rows],
    )


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
