"""Figures people look at: training curves (the seed's three panels), confusion matrices, and grids of
time-frequency matrices (class means, make_hht's preview, saliency)."""

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


def before_after_figure(before: Mapping[str, float], after: Mapping[str, float], chance: float, title: str):
    """Each person's accuracy on their query rows before (the model as trained) and after adaptation,
    side by side with the value on each bar, and chance."""
    people = list(before)
    positions = np.arange(len(people))
    fig, ax = plt.subplots(figsize=(max(6.5, 0.8 * len(people) + 3.0), 4.2))
    for offset, (values, label, colour) in zip(
        (-0.2, 0.2), ((before, "before (k=0)", "tab:gray"), (after, "adapted", "tab:blue")), strict=True
    ):
        bars = ax.bar(positions + offset, [values[p] for p in people], 0.4, label=label, color=colour)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.axhline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.2f}")
    ax.set(xticks=positions, ylim=(0, 1.12), ylabel="accuracy on the query rows")
    ax.set_title(title, fontsize=10)
    ax.set_xticklabels(people, rotation=45, ha="right", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
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
    fig = plt.figure(figsize=(2.2 * len(class_names) + 0.8, 2.1 * channels + 0.6))
    _matrix_grid(
        fig,
        _class_panels(diffs, True),
        _channel_labels(channels),
        class_names,
        "class mean - mean of classes",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
    )
    fig.suptitle(title, fontsize=10)
    return fig


def _matrix_grid(fig, panels, row_labels, col_titles, label: str, cmap: str = "viridis", vmin=None, vmax=None):
    """Time-frequency matrices in rows x columns of one figure (or subfigure), low frequencies at the
    bottom, one colour scale and one colour bar. panels[r][c]: an (F, T) array, or None (an empty panel)."""
    shown = [np.asarray(m, dtype=np.float64) for row in panels for m in row if m is not None]
    finite = np.concatenate([m[np.isfinite(m)] for m in shown]) if shown else np.zeros(1)
    vmin = float(finite.min()) if vmin is None else vmin
    vmax = max(float(finite.max()) if vmax is None else vmax, vmin + 1e-12)
    axes = fig.subplots(len(row_labels), len(col_titles), squeeze=False)
    image = None
    for (r, c), ax in np.ndenumerate(axes):
        ax.set(xticks=[], yticks=[])
        if panels[r][c] is None:
            ax.set_frame_on(False)
        else:
            image = ax.imshow(panels[r][c], origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
        if r == 0:
            ax.set_title(col_titles[c], fontsize=8)
        if c == 0:
            ax.set_ylabel(f"{row_labels[r]}\nfrequency ->", fontsize=8)
        if r == len(row_labels) - 1:
            ax.set_xlabel("time ->", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.02, label=label)
    return axes


def _class_panels(stack: np.ndarray, present) -> list[list]:
    """(K, C, F, T) -> _matrix_grid panels: a row per channel, a column per class; None where
    present ((K, C), (K,) or one bool) is false."""
    classes, channels = stack.shape[:2]
    present = np.broadcast_to(np.asarray(present).T, (channels, classes)).T  # (K, C)
    return [[stack[k, c] if present[k, c] else None for k in range(classes)] for c in range(channels)]


def _channel_labels(n: int) -> list[str]:
    return [f"ch {c + 1}" for c in range(n)]


def preview_figure(classes, channels, examples, means: np.ndarray, counts: np.ndarray, title: str):
    """make_hht's preview.png: a few matrices of each class (top), each class's mean matrix (middle) and
    its mean spectrum, the mean matrix averaged over time (bottom); one row per channel.
    examples[k][c]: a list of (F, T) arrays; means: (K, C, F, T), NaN where a class lacks the channel."""
    n_ex = max(1, max((len(e) for per_class in examples for e in per_class), default=0))
    columns = len(classes) * n_ex
    fig = plt.figure(
        figsize=(max(1.15 * columns + 1.5, 1.3 * len(classes) + 1.5, 3.0 * len(channels)), 2.3 * len(channels) + 3.6),
        layout="constrained",
    )
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[len(channels), len(channels), 1.6])
    panels = [
        [examples[k][c][j] if j < len(examples[k][c]) else None for k in range(len(classes)) for j in range(n_ex)]
        for c in range(len(channels))
    ]
    titles = [f"{name} #{j + 1}" for name in classes for j in range(n_ex)]
    top.suptitle("examples", fontsize=9)
    _matrix_grid(top, panels, channels, titles, "value", vmin=0.0)
    middle.suptitle("class means", fontsize=9)
    _matrix_grid(
        middle,
        _class_panels(means, counts > 0),
        channels,
        [f"{n} (n={counts[k].max()})" for k, n in enumerate(classes)],
        "mean",
        vmin=0.0,
    )
    axes = bottom.subplots(1, len(channels), squeeze=False)[0]
    for c, ax in enumerate(axes):
        for k, name in enumerate(classes):
            if counts[k, c]:
                ax.plot(means[k, c].mean(axis=-1), label=name, linewidth=1.5)
        ax.set(title=channels[c], xlabel="frequency bin (low -> high)", ylabel="mean over time")
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def saliency_figure(mean_input: np.ndarray, saliency: np.ndarray, counts, class_names: Sequence[str], title: str):
    """Where the model looks, per channel (rows) and class (columns): the class-mean input (top) and, below
    it, the mean saliency of the true class, scaled to each class's maximum (so every class's pattern
    shows, whatever its gradient's size). mean_input, saliency: (K, C, F, T); counts: (K,) samples."""
    classes, channels = len(class_names), mean_input.shape[1]
    peak = saliency.reshape(classes, -1).max(axis=1)
    scaled = saliency / np.where(peak > 0, peak, 1.0)[:, None, None, None]
    fig = plt.figure(figsize=(2.2 * classes + 1.2, 4.2 * channels + 1.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    titles = [f"{name} (n={n})" for name, n in zip(class_names, counts, strict=True)]
    rows = _channel_labels(channels)
    have = np.asarray(counts) > 0
    top.suptitle("class-mean input", fontsize=9)
    _matrix_grid(top, _class_panels(mean_input, have), rows, titles, "input")
    bottom.suptitle("mean |gradient x input| of the true class's logit", fontsize=9)
    _matrix_grid(
        bottom,
        _class_panels(scaled, have),
        rows,
        titles,
        "saliency / class maximum",
        cmap="inferno",
        vmin=0.0,
        vmax=1.0,
    )
    fig.suptitle(title, fontsize=10)
    return fig
