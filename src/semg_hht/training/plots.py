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
