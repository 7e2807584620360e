"""What a run leaves behind: its model (best checkpoint or last epoch) scored on the validation split, as numbers
(metrics.json, classification report, history.csv) and as pictures (curves, confusion matrix)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, classification_report, confusion_matrix, f1_score

from semg_hht.io import save_figure, write_csv, write_json, write_text
from semg_hht.training.plots import confusion_figure, curves_figure


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


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], subjects: Sequence[str | None]
) -> dict[str, Any]:
    labels = list(range(len(class_names)))
    counts = np.bincount(y_true, minlength=len(class_names))
    return {
        "acc": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "balanced_acc": float(balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "chance": float(counts.max() / max(counts.sum(), 1)),  # majority-class rate
        "subject_vote_acc": subject_vote_accuracy(subjects, y_true, y_pred),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "report": classification_report(
            y_true, y_pred, labels=labels, target_names=list(class_names), zero_division=0, digits=3
        ),
    }


def write_run_report(
    out_dir: Path,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    subjects: Sequence[str | None],
    history: Sequence[dict[str, float]],
    extra: dict[str, Any],
    scored_model: str = "best",
) -> dict[str, Any]:
    """Write metrics.json, classification_report.txt, confusion_matrix.png, history.csv and
    training_curves.png into out_dir; return the metrics."""
    scores = classification_metrics(y_true, y_pred, class_names, subjects)
    write_text(out_dir / "classification_report.txt", scores.pop("report"))
    matrix = np.array(scores["confusion_matrix"])
    save_figure(
        confusion_figure(
            matrix, class_names, "validation (best checkpoint)" if scored_model == "best" else "validation (last epoch)"
        ),
        out_dir / "confusion_matrix.png",
    )
    if history:
        keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
        write_csv(out_dir / "history.csv", history, keys)
        save_figure(curves_figure(history), out_dir / "training_curves.png")
    metrics = {f"val/{k}": v for k, v in scores.items()} | {"scored_model": scored_model} | extra
    write_json(out_dir / "metrics.json", metrics)
    return metrics
