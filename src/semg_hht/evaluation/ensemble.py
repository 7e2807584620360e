"""CNN + classic: per recording, a weighted mean of a CNN sweep's class probabilities and a classic
method's, on exactly the CNN's folds and test people.

The CNN side is read, not recomputed: each fold job's val_predictions.csv (and the final run's
test_predictions.csv) as train.py wrote them, each matrix traced to its recording id (make_hht's
``recording`` column of the manifest.csv beside the matrices: a session's segments are recordings of their
own, though they share a source file). cnn_runs reads and checks all of it before any classic feature is
computed: the CNN must have scored exactly the recordings of each fold (and of the test set), by id and
source. The classic side is fitted here on the fold's training recordings, so neither half ever sees a
validation person.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from semg_hht.classic.classifiers import classic_probabilities, weighted_mean
from semg_hht.classic.recordings import FeatureSet, matrix_recordings
from semg_hht.data.splits import group_split
from semg_hht.errors import SemgError
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


@dataclass(frozen=True)
class Units:
    """The recordings the classic side scores, in its order, known before any feature is computed."""

    ids: list[str]  # make_hht's recording id
    sources: list[str]  # make_hht's source (the input's file: one session holds many recordings)
    y: np.ndarray  # class index
    subjects: list[str | None]

    @classmethod
    def of(cls, rows: Sequence[Mapping[str, str]], target: str, classes: Sequence[str]) -> Units:
        """classic.raw_recordings' rows (as load_features reads them, in that order)."""
        return cls(
            [str(r.get("recording") or "") for r in rows],
            [str(r.get("source") or "") for r in rows],
            np.array([list(classes).index(r[target].strip()) for r in rows], dtype=np.int64),
            [(r.get("subject") or "").strip() or None for r in rows],
        )


@dataclass(frozen=True)
class CnnRun:
    """One CNN run's side of a mixture: its scored recordings (indices into the Units) and their probabilities."""

    fold: int | str
    train: np.ndarray  # the classic side's training recordings (none for a final model: it fits on every one)
    scored: np.ndarray
    probs: np.ndarray  # (len(scored), classes)


def cnn_runs(
    sweep: Mapping[str, str], dev: Units, test: Units | None, class_names: list[str], data: Mapping[str, Any]
) -> tuple[list[CnnRun], list[CnnRun]]:
    """The sweep's fold jobs and final models, each matched by recording id with the recordings the classic
    side will score there; any mismatch is refused now, before the minutes of feature extraction."""
    folds = []
    for job in collect_jobs(Path(sweep["dir"]), ["fold"]):
        if job["status"] != "ok":
            continue
        fold, predictions = job["fold"], Path(sweep["dir"]) / job["job"] / "val_predictions.csv"
        train, val = group_split(dev.y, dev.subjects, class_names, data["n_folds"], fold, data["split_seed"])
        probs = matched(cnn_probabilities(predictions, class_names), dev, val, predictions)
        folds.append(CnnRun(fold, train, val, probs))
    finals = []
    if test is not None and sweep.get("final"):
        everyone = np.arange(len(test.ids))
        for run in final_runs(Path(sweep["final"])):  # one final model, or one per training seed
            predictions = run / "test_predictions.csv"
            probs = matched(cnn_probabilities(predictions, class_names), test, everyone, predictions)
            finals.append(CnnRun(final_name(run), np.arange(len(dev.ids)), everyone, probs))
    return folds, finals


def matched(cnn: Mapping[str, tuple[np.ndarray, str]], units: Units, recordings: np.ndarray, where: Path) -> np.ndarray:
    """(len(recordings), classes): the CNN's probabilities of these recordings, by recording id."""
    wanted = [units.ids[i] for i in recordings]
    missing, others = [r for r in wanted if r not in cnn], sorted(set(cnn) - set(wanted))
    if missing or others:
        example = f"recording {missing[0]} not scored" if missing else f"recording {others[0]} is not one of them"
        raise SemgError(
            f"the CNN scored other recordings than this fold ({len(missing)} of {len(wanted)} not scored, "
            f"{len(others)} others scored; {example}): the sweep is not a run of this experiment's folds",
            path=where,
            fix="pair each sweep with the experiment it was trained with (train.py -m experiment=... data.fold=0..k-1)",
        )
    moved = [(rid, i) for rid, i in zip(wanted, recordings, strict=True) if cnn[rid][1] != units.sources[i]]
    if moved:
        rid, i = moved[0]
        raise SemgError(
            f"recording {rid} is {cnn[rid][1]} in the CNN's matrices but {units.sources[i]} here ({len(moved)} "
            "recordings differ): the two number recordings differently",
            path=where,
            fix="pass hht_dir=<the make_hht folder the sweep trained on>",
        )
    return np.stack([cnn[rid][0] for rid in wanted])


def cnn_probabilities(predictions: Path, class_names: list[str]) -> dict[str, tuple[np.ndarray, str]]:
    """{recording id: (mean class probability of its rows (windows, channels), its source)} from a train.py
    val_/test_predictions.csv; each matrix's recording and source come from the manifest.csv beside it."""
    if not predictions.is_file():
        raise SemgError(
            f"no {predictions.name} (train.py writes it since the CNN + classic rows exist)",
            path=predictions.parent,
            fix="rerun the sweep with this version of train.py",
        )
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    manifests: dict[Path, dict[str, tuple[str, str]]] = {}
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    sources: dict[str, str] = {}
    for row in rows:
        matrix = Path(row["file"])
        folder = matrix.parent
        if folder not in manifests:
            manifests[folder] = matrix_recordings(folder / "manifest.csv")
        if matrix.name not in manifests[folder]:
            raise SemgError(f"{matrix.name} is not in its folder's manifest.csv", path=folder, fix="rerun make_hht")
        recording, source = manifests[folder][matrix.name]
        if sources.setdefault(recording, source) != source:
            raise SemgError(
                f"recording {recording} is both {sources[recording]} and {source} (matrices of two folders)",
                path=predictions,
                fix="train each sweep on one make_hht folder",
            )
        probs = np.array([float(row[f"p_{c}"]) for c in class_names])
        sums[recording] = sums.get(recording, 0) + probs
        counts[recording] = counts.get(recording, 0) + 1
    return {k: (sums[k] / counts[k], sources[k]) for k in sums}


def combined_scores(probs: np.ndarray, classic: np.ndarray, scored: FeatureSet, run: CnnRun, weight: float) -> dict:
    """The mixture's scores over the run's recordings (indices into scored's recordings)."""
    mixed = weighted_mean(probs, classic[run.scored], weight)
    y_true, subjects = scored.recordings()
    scores = classification_metrics(y_true[run.scored], mixed.argmax(1), scored.class_names,
                                    [subjects[i] for i in run.scored])  # fmt: skip
    scores.pop("report")
    return scores | {"val_subjects": sorted({subjects[i] for i in run.scored if subjects[i]})}


def ensemble_scores(
    fs: FeatureSet,
    test: FeatureSet | None,
    runs: tuple[list[CnnRun], list[CnnRun]],
    method: str,
    params: Mapping[str, Any],
    cfg: Mapping[str, Any],
) -> tuple[list[dict], list[dict]]:
    """Fold score dicts of the sweep's CNN (cnn_runs) mixed with the classic method, and the test-set figures
    of its final models (one, or one per training seed) mixed with the classic method fitted on every
    development recording (empty without a test set or a final run)."""
    folds, finals = runs
    out = []
    for run in folds:
        classic = classic_probabilities(fs, run.train, fs, method, params, cfg)
        out.append(combined_scores(run.probs, classic, fs, run, cfg["cnn_weight"]) | {"fold": run.fold})
    held_out = []
    if test is not None and finals:
        classic = classic_probabilities(fs, np.unique(fs.unit), test, method, params, cfg)
        for run in finals:
            held_out.append(combined_scores(run.probs, classic, test, run, cfg["cnn_weight"]) | {"fold": run.fold})
    return out, held_out
