"""What a run leaves behind: its model scored on the validation split and the test set, as numbers
(metrics.json, classification reports, per-recording predictions, history.csv) and as pictures
(curves, confusion matrices)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, classification_report, confusion_matrix, f1_score

from semg_hht.data.splits import unit_codes
from semg_hht.io import save_figure, write_csv, write_text
from semg_hht.reporting.plots import confusion_figure, curves_figure, per_person_figure


def subject_vote_accuracy(subjects: Sequence[str | None], y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Accuracy of one majority-vote prediction per subject, when each subject has one label (e.g.
    gender); None when subjects are unknown or their labels vary (e.g. movements)."""
    if not len(subjects) or any(s is None for s in subjects):
        return None
    truth, votes = {}, defaultdict(Counter)
    for subject, t, p in zip(subjects, y_true.tolist(), y_pred.tolist(), strict=True):
        if truth.setdefault(subject, t) != t:
            return None
        votes[subject][p] += 1
    return float(np.mean([votes[s].most_common(1)[0][0] == truth[s] for s in truth]))


def per_subject_accuracy(
    subjects: Sequence[str | None], y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, float] | None:
    """Accuracy of every person's rows (None when subjects are unknown)."""
    if not len(subjects) or any(s is None for s in subjects):
        return None
    people = np.asarray(subjects, dtype=object)
    return {str(p): float(np.mean(y_true[people == p] == y_pred[people == p])) for p in sorted(set(subjects))}


def recording_vote(units: Sequence[Hashable], y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class per recording: the mean of its windows' class probabilities (one-hot
    predictions make it a majority vote, ties to the lower class). ``units``: the recording of each row."""
    codes = unit_codes(units)
    sums = np.zeros((codes.max() + 1 if len(codes) else 0, probs.shape[1]))
    np.add.at(sums, codes, probs)
    first = np.unique(codes, return_index=True)[1]
    return y_true[first], sums.argmax(1)


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    subjects: Sequence[str | None],
    units: Sequence[Hashable] | None = None,
    probs: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-row scores plus ``recording_acc``: rows of one unit (the windows of a recording) scored as
    one, by their mean probability (``probs``) or, without it, their majority vote. Without units
    every row is its own recording and recording_acc equals acc."""
    labels = list(range(len(class_names)))
    counts = np.bincount(y_true, minlength=len(class_names))
    if probs is None:
        probs = np.eye(len(class_names))[y_pred] if len(y_pred) else np.zeros((0, len(class_names)))
    rec_true, rec_pred = recording_vote(range(len(y_true)) if units is None else units, y_true, probs)
    return {
        "acc": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "balanced_acc": float(balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "chance": float(counts.max() / max(counts.sum(), 1)),  # majority-class rate
        "subject_vote_acc": subject_vote_accuracy(subjects, y_true, y_pred),
        "recording_acc": float(np.mean(rec_true == rec_pred)) if len(rec_true) else float("nan"),
        "n_recordings": len(rec_true),
        "per_subject_acc": per_subject_accuracy(subjects, y_true, y_pred),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "report": classification_report(
            y_true, y_pred, labels=labels, target_names=list(class_names), zero_division=0, digits=3
        ),
    }


def recording_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], recordings: Sequence[Any]
) -> dict[str, Any]:
    """classification_metrics of class probabilities for rows of known Recordings (their subjects
    and the source recordings their windows vote for)."""
    subjects = [r.subject for r in recordings]
    units = [r.recording for r in recordings]
    return classification_metrics(y_true, probs.argmax(1), class_names, subjects, units, probs)


# split -> (file prefix, figure title); the validation files keep their historical names
SPLIT_FILES = {"val": ("", "validation"), "test": ("test_", "test set")}


def write_split_report(
    out_dir: Path, split: str, scores: dict[str, Any], class_names: Sequence[str], scored_model: str
) -> dict[str, Any]:
    """<prefix>classification_report.txt and <prefix>confusion_matrix.png; returns the scores as
    ``split/metric`` keys for metrics.json (the text report left out)."""
    prefix, title = SPLIT_FILES[split]
    scores = dict(scores)
    write_text(out_dir / f"{prefix}classification_report.txt", scores.pop("report"))
    figure = confusion_figure(np.array(scores["confusion_matrix"]), class_names, f"{title} ({scored_model})")
    save_figure(figure, out_dir / f"{prefix}confusion_matrix.png")
    if scores.get("per_subject_acc") and len(scores["per_subject_acc"]) > 1:
        people = per_person_figure(scores["per_subject_acc"], scores["chance"], f"{title} per person ({scored_model})")
        save_figure(people, out_dir / f"{prefix}per_person_accuracy.png")
    return {f"{split}/{k}": v for k, v in scores.items()}


def prediction_rows(
    files: Sequence[Path],
    subjects: Sequence[str | None],
    recordings: Sequence[str | None],
    probs: np.ndarray,
    class_names: Sequence[str],
    y_true: np.ndarray | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per matrix: file, subject, recording, true (when known), predicted, confidence and the
    probability of every class; and the column order."""
    columns = ["file", "subject", "recording", "true", "predicted", "confidence"]
    columns += [f"p_{c}" for c in class_names]
    rows = []
    for i, p in enumerate(probs):
        row = {"file": str(files[i]), "subject": subjects[i] or "", "recording": recordings[i] or ""}
        row |= {
            "true": "" if y_true is None else class_names[int(y_true[i])],
            "predicted": class_names[int(p.argmax())],
        }
        row |= {"confidence": float(p.max())} | {f"p_{c}": float(v) for c, v in zip(class_names, p, strict=True)}
        rows.append(row)
    return rows, columns


def write_history(out_dir: Path, history: Sequence[dict[str, float]], n_classes: int | None = None) -> None:
    """history.csv and training_curves.png (the seed's three panels; chance 1/n_classes on accuracy)."""
    if history:
        keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
        write_csv(out_dir / "history.csv", history, keys)
        save_figure(curves_figure(history, n_classes), out_dir / "training_curves.png")
