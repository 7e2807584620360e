"""CNN + classic: per recording, a weighted mean of a CNN sweep's class probabilities and a classic
method's, on exactly the CNN's folds and test people.

The CNN side is read, not recomputed: each fold job's val_predictions.csv (and the final run's
test_predictions.csv) as train.py wrote them, its rows traced to their raw recording through the
manifest.csv that make_hht wrote beside the matrices. The classic side is fitted here on the fold's
training recordings, so neither half ever sees a validation person.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from sklearn.calibration import CalibratedClassifierCV

from semg_hht.data.splits import group_split
from semg_hht.errors import SemgError
from semg_hht.evaluation.classic import FeatureSet, make_classifier
from semg_hht.evaluation.table import final_name, final_runs
from semg_hht.reporting.report import classification_metrics
from semg_hht.reporting.sweep import collect_jobs


def sweep_calibrated(sweep_dir: Path) -> bool:
    """Whether the sweep's CNN trained on per-person standardised inputs (data.person_norm.enabled of its
    jobs), so it is paired with the classic features calibrated the same way."""
    configs = sorted(Path(sweep_dir).glob("*/.hydra/config.yaml"))
    if not configs:
        raise SemgError(
            "no .hydra/config.yaml in the sweep's jobs", path=sweep_dir, fix="point dir at a train.py -m run"
        )
    flags = {bool(OmegaConf.select(OmegaConf.load(c), "data.person_norm.enabled", default=False)) for c in configs}
    if len(flags) > 1:
        raise SemgError("the sweep mixes calibrated and plain jobs", path=sweep_dir, fix="one setting per sweep")
    return flags.pop()


def cnn_probabilities(predictions: Path, class_names: list[str], raw_root: Path) -> dict[Path, np.ndarray]:
    """{raw recording (absolute): mean class probability of its rows (windows)} from a train.py
    val_/test_predictions.csv; each matrix's raw source comes from the manifest.csv beside it."""
    if not predictions.is_file():
        raise SemgError(
            f"no {predictions.name} (train.py writes it since the CNN + classic rows exist)",
            path=predictions.parent,
            fix="rerun the sweep with this version of train.py",
        )
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    sources: dict[Path, dict[str, str]] = {}
    sums: dict[Path, np.ndarray] = {}
    counts: dict[Path, int] = {}
    for row in rows:
        matrix = Path(row["file"])
        folder = matrix.parent
        if folder not in sources:
            sources[folder] = _sources(folder / "manifest.csv")
        source = sources[folder].get(matrix.name)
        if source is None:
            raise SemgError(f"{matrix.name} is not in its folder's manifest.csv", path=folder, fix="rerun make_hht")
        key = (raw_root / source).resolve()
        probs = np.array([float(row[f"p_{c}"]) for c in class_names])
        sums[key] = sums.get(key, 0) + probs
        counts[key] = counts.get(key, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


def _sources(manifest: Path) -> dict[str, str]:
    if not manifest.is_file():
        raise SemgError("no make_hht manifest.csv beside the matrices", path=manifest.parent, fix="rerun make_hht")
    with open(manifest, newline="") as f:
        return {r["file"]: r["source"] for r in csv.DictReader(f) if r.get("source")}


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


def combined_scores(
    cnn: Mapping[Path, np.ndarray], classic: np.ndarray, scored: FeatureSet, recordings: np.ndarray, weight: float
) -> dict[str, Any]:
    """The mixture's scores over ``recordings`` (indices into scored's recordings)."""
    paths = [scored.paths[i].resolve() for i in recordings]
    missing = [p for p in paths if p not in cnn]
    if missing or len(cnn) != len(paths):
        raise SemgError(
            f"the CNN scored other recordings than this fold ({len(missing)} of {len(paths)} not scored, "
            f"{len(cnn)} scored): the sweep is not a run of this experiment's folds",
            path=missing[0] if missing else None,
            fix="pair each sweep with the experiment it was trained with (train.py -m experiment=... data.fold=0..k-1)",
        )
    probs = weight * np.stack([cnn[p] for p in paths]) + (1 - weight) * classic[recordings]
    y_true, subjects = scored.recordings()
    scores = classification_metrics(y_true[recordings], probs.argmax(1), scored.class_names,
                                     [subjects[i] for i in recordings])  # fmt: skip
    scores.pop("report")
    return scores | {"val_subjects": sorted({subjects[i] for i in recordings if subjects[i]})}


def ensemble_scores(
    fs: FeatureSet,
    test: FeatureSet | None,
    sweep: Mapping[str, str],
    method: str,
    params: Mapping[str, Any],
    data: Mapping[str, Any],
    raw_roots: tuple[Path, Path | None],
    cfg: Mapping[str, Any],
) -> tuple[list[dict], dict | None]:
    """Fold score dicts of the sweep's CNN mixed with the classic method, and the test-set figures of
    its final models (one, or one per training seed) mixed with the classic method fitted on every
    development recording (empty without a test set or a final run)."""
    y, subjects = fs.recordings()
    folds = []
    for job in collect_jobs(Path(sweep["dir"]), ["fold"]):
        if job["status"] != "ok":
            continue
        job_dir, fold = Path(sweep["dir"]) / job["job"], job["fold"]
        train, val = group_split(y, subjects, fs.class_names, data["n_folds"], fold, data["split_seed"])
        cnn = cnn_probabilities(job_dir / "val_predictions.csv", fs.class_names, raw_roots[0])
        classic = classic_probabilities(fs, train, fs, method, params, cfg)
        folds.append(combined_scores(cnn, classic, fs, val, cfg["cnn_weight"]) | {"fold": fold})
    held_out = []
    if test is not None and sweep.get("final"):
        root = raw_roots[1] or raw_roots[0]
        classic = classic_probabilities(fs, np.unique(fs.unit), test, method, params, cfg)
        everyone = np.arange(len(test.paths))
        for run in final_runs(Path(sweep["final"])):  # one final model, or one per training seed
            cnn = cnn_probabilities(run / "test_predictions.csv", fs.class_names, root)
            scores = combined_scores(cnn, classic, test, everyone, cfg["cnn_weight"])
            held_out.append(scores | {"fold": final_name(run)})
    return folds, held_out
