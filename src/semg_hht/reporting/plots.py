"""Figures people look at: training curves (the seed's three panels) and confusion matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt
import numpy as np


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str):
    """Counts with row-normalised colour, so rare classes are as readable as common ones."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.6 + 0.55 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    for i, j in np.ndindex(matrix.shape):
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    return fig


def curves_figure(history: Sequence[Mapping[str, float]]):
    """Loss, accuracy and learning rate per epoch, as the seed plots them."""
    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    panels = (("loss", "Loss", False), ("acc", "Accuracy", False), ("lr", "Learning rate", True))
    for ax, (key, title, log_scale) in zip(axes, panels, strict=True):
        for split, style in (("train", "b-"), ("val", "r-"), (None, "g-")):
            name = f"{split}/{key}" if split else key
            values = [row.get(name, np.nan) for row in history]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, style, label=split or name, linewidth=2)
        ax.set(xlabel="epoch", title=title)
        if log_scale:
            ax.set_yscale("log")
        if key != "lr":
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def per_person_figure(accuracy: Mapping[str, float], chance: float, title: str):
    """Accuracy of every person, with chance: who the model fails on is often the first question."""
    people = sorted(accuracy)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(people) + 1.5), 3.8))
    ax.bar(range(len(people)), [accuracy[p] for p in people], color="tab:blue")
    ax.axhline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.2f}")
    ax.set(xticks=range(len(people)), ylim=(0, 1), ylabel="accuracy", title=title)
    ax.set_xticklabels(people, rotation=60, ha="right", fontsize=8)
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def class_mean_differences(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, C, F, T): each class's mean matrix minus the mean of the class means (0 for an absent class)."""
    x = np.asarray(x, dtype=np.float64)  # (N, C, F, T)
    means = [x[y == k].mean(0) if np.any(y == k) else None for k in range(n_classes)]
    overall = np.mean([m for m in means if m is not None], axis=0)
    return np.stack([m - overall if m is not None else np.zeros_like(overall) for m in means])


def class_means_figure(x: np.ndarray, y: np.ndarray, class_names: Sequence[str], title: str):
    """What tells the classes apart in the input: per channel (rows) and class (columns), the class's
    mean matrix minus the mean over all classes (red: more energy than average, blue: less)."""
    diffs = class_mean_differences(x, y, len(class_names))
    limit = max(float(np.abs(np.stack(diffs)).max()), 1e-12)
    channels = diffs.shape[1]
    fig, axes = plt.subplots(
        channels, len(class_names), figsize=(2.2 * len(class_names) + 0.8, 2.1 * channels + 0.6), squeeze=False
    )
    for c in range(channels):
        for k, name in enumerate(class_names):
            ax = axes[c, k]
            image = ax.imshow(diffs[k][c], origin="lower", aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set(xticks=[], yticks=[])
            if c == 0:
                ax.set_title(name, fontsize=9)
            if k == 0:
                ax.set_ylabel(f"ch {c + 1}\nfrequency ->", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.colorbar(image, ax=axes, fraction=0.02, label="class mean - mean of classes")
    return fig
