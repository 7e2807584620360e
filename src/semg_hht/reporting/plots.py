"""Figures people look at: training curves (the seed's three panels), confusion matrices, and grids of
time-frequency matrices (class means, make_hht's preview, saliency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

PERCENTILE = 99.0  # colour scales end here: one bright pixel no longer darkens the rest of a panel


def symmetric_limit(values, percentile: float = PERCENTILE) -> float:
    """Colour limit of a map of differences (shown -limit..+limit): the percentile of |value| over its finite
    values; the largest |value| when that percentile is 0 (a sparse map), 1 when everything is 0."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    return _positive(magnitude[np.isfinite(magnitude)], percentile)


def upper_limit(values, percentile: float = PERCENTILE) -> float:
    """Top of the colour scale of a map of non-negative values (saliency, spectra): as symmetric_limit."""
    values = np.asarray(values, dtype=np.float64)
    return _positive(values[np.isfinite(values)], percentile)


def _positive(values: np.ndarray, percentile: float) -> float:
    if not values.size:
        return 1.0
    limit = float(np.percentile(values, percentile))
    if not limit > 0:
        limit = float(values.max())
    return limit if limit > 0 else 1.0


def channel_names(cells, n: int) -> list[str]:
    """Names of the n input channels from the manifest's channel column of every training row (make_hht
    joins a stacked file's names with '+'): the names when every row agrees, for one channel the names the
    rows share it between (e.g. 'BICEPS / BRACHIORADIALIS': each file one muscle), else 'ch 1'..'ch n'."""
    rows = {tuple((cell or "").split("+")) for cell in cells if cell}
    if len(rows) == 1 and len(first := next(iter(rows))) == n and all(first):
        return list(first)
    if n == 1 and rows and all(len(r) == 1 for r in rows) and len(rows) <= 4:
        return [" / ".join(sorted(r[0] for r in rows))]
    return _channel_labels(n)


def row_frequencies(lo: float, hi: float, scale: str, size: int) -> np.ndarray:
    """The frequency (Hz) where each of make_hht's size rows starts: lo..hi evenly spaced, in log frequency
    for scale='log' (row size-1 holds hi itself)."""
    position = np.arange(size) / (size - 1)
    return lo * (hi / lo) ** position if scale == "log" else lo + position * (hi - lo)


def frequency_ticks(lo: float, hi: float, scale: str, size: int) -> tuple[list[float], list[str]]:
    """(row positions, labels in Hz) for a matrix's frequency axis: round numbers inside lo..hi."""
    if scale == "log":
        candidates = [m * 10.0**e for e in range(-1, 6) for m in (1, 2, 5)]
        hz = [f for f in candidates if lo <= f <= hi]
    else:
        hz = [float(f) for f in MaxNLocator(5).tick_values(lo, hi) if lo <= f <= hi]
    rows = [(np.log(f / lo) / np.log(hi / lo) if scale == "log" else (f - lo) / (hi - lo)) * (size - 1) for f in hz]
    return rows, [f"{f:g}" for f in hz]


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


def curves_figure(history: Sequence[Mapping[str, float]], n_classes: int | None = None):
    """Loss, accuracy and learning rate per epoch, as the seed plots them; epochs numbered from 0, as in
    history.csv and the checkpoint names; accuracy with chance (1 / n_classes) when it is given."""
    epochs = [int(row["epoch"]) for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    panels = (("loss", "Loss", False), ("acc", "Accuracy", False), ("lr", "Learning rate", True))
    for ax, (key, title, log_scale) in zip(axes, panels, strict=True):
        for split, style in (("train", "b-"), ("val", "r-"), (None, "g-")):
            name = f"{split}/{key}" if split else key
            values = [row.get(name, np.nan) for row in history]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, style, label=split or name, linewidth=2)
        if key == "acc" and n_classes:
            chance = 1.0 / n_classes
            ax.axhline(chance, color="gray", linestyle="--", label=f"chance 1/{n_classes} = {chance:.2f}")
        ax.set(xlabel="epoch (from 0, as history.csv and checkpoint names)", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log_scale:
            ax.set_yscale("log")
        if key != "lr":
            ax.legend()
        ax.grid(alpha=0.3)
    return fig


def per_person_figure(accuracy: Mapping[str, float], chance: float, title: str):
    """Accuracy of every person, with chance: who the model fails on is often the first question. The value
    is written on each bar; the legend sits beside the axes, where it can hide none."""
    people = sorted(accuracy)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(people) + 1.5) + 1.6, 3.8), layout="constrained")
    bars = ax.bar(range(len(people)), [accuracy[p] for p in people], color="tab:blue")
    ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.axhline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.2f}")
    ax.set(xticks=range(len(people)), ylim=(0, 1.1), ylabel="accuracy")
    ax.set_title("\n".join(textwrap.wrap(title, 50)), fontsize=10)
    ax.set_xticklabels(people, rotation=60, ha="right", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def before_after_figure(before: Mapping[str, float], after: Mapping[str, float], chance: float, title: str):
    """Each person's accuracy on their query rows before (the model as trained) and after adaptation,
    side by side with the value on each bar, and chance."""
    people = list(before)
    positions = np.arange(len(people))
    fig, ax = plt.subplots(figsize=(max(6.5, 0.8 * len(people) + 3.0), 4.2), layout="constrained")
    for offset, (values, label, colour) in zip(
        (-0.2, 0.2), ((before, "before (k=0)", "tab:gray"), (after, "adapted", "tab:blue")), strict=True
    ):
        bars = ax.bar(positions + offset, [values[p] for p in people], 0.4, label=label, color=colour)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.axhline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.2f}")
    ax.set(xticks=positions, ylim=(0, 1.12), ylabel="accuracy on the query rows")
    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=10)
    ax.set_xticklabels(people, rotation=45, ha="right", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars, never over one
    ax.grid(axis="y", alpha=0.3)
    return fig


def class_mean_differences(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, C, F, T): each class's mean matrix minus the mean of the class means (0 for an absent class)."""
    x = np.asarray(x, dtype=np.float64)  # (N, C, F, T)
    means = [x[y == k].mean(0) if np.any(y == k) else None for k in range(n_classes)]
    overall = np.mean([m for m in means if m is not None], axis=0)
    return np.stack([m - overall if m is not None else np.zeros_like(overall) for m in means])


def class_means_figure(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    title: str,
    channels: Sequence[str] | None = None,
    freq_axis: tuple[float, float, str] | None = None,
):
    """What tells the classes apart in the input: per channel (rows) and class (columns), the class's
    mean matrix minus the mean over all classes (red: more energy than average, blue: less). Each channel
    has its own colour scale, symmetric about 0 and ending at the 99th percentile of |difference| (the
    larger ones saturate), so a difference of a few per cent shows as clearly as a large one. freq_axis as
    in saliency_figure."""
    diffs = class_mean_differences(x, y, len(class_names))
    n_channels = diffs.shape[1]
    names = list(channels) if channels is not None else _channel_labels(n_channels)
    counts = [int(np.sum(np.asarray(y) == k)) for k in range(len(class_names))]
    titles = [f"{name} (n={n})" for name, n in zip(class_names, counts, strict=True)]
    fig = plt.figure(figsize=(2.6 * len(class_names) + 1.8, 2.3 * n_channels + 0.9), layout="constrained")
    rows = fig.subfigures(n_channels, 1, squeeze=False)[:, 0]
    for c, sub in enumerate(rows):
        limit = symmetric_limit(diffs[:, c])
        _matrix_grid(
            sub,
            [[diffs[k, c] if counts[k] else None for k in range(len(class_names))]],
            [names[c]],
            titles if c == 0 else [""] * len(class_names),
            f"difference\n(±{limit:.3g}: 99th pct)",
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            freq_axis=freq_axis,
            xlabel=c == n_channels - 1,
        )
    fig.suptitle("\n".join(textwrap.wrap(title, 90)), fontsize=10)
    return fig


def axis_in_hz(axis) -> tuple[float, float, str] | None:
    """A datamodule's frequency_axis (scale, (lo, hi) Hz or None) as freq_axis, when it names its range in Hz
    (make_hht's log axis); None for a linear axis, whose files may span different 0..fs/2."""
    if axis is None or axis[1] is None:
        return None
    scale, (lo, hi) = axis
    return (float(lo), float(hi), scale)


def _matrix_grid(
    fig,
    panels,
    row_labels,
    col_titles,
    label: str,
    cmap: str = "viridis",
    vmin=None,
    vmax=None,
    freq_axis: tuple[float, float, str] | None = None,
    xlabel: bool = True,
):
    """Time-frequency matrices in rows x columns of one figure (or subfigure), low frequencies at the
    bottom, one colour scale and one colour bar. panels[r][c]: an (F, T) array, or None (an empty panel).
    freq_axis (lo Hz, hi Hz, 'linear' | 'log'): the first column's rows labelled in Hz."""
    shown = [np.asarray(m, dtype=np.float64) for row in panels for m in row if m is not None]
    finite = np.concatenate([m[np.isfinite(m)].ravel() for m in shown]) if shown else np.zeros(1)
    finite = finite if finite.size else np.zeros(1)
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
        if r == 0 and col_titles[c]:
            ax.set_title(col_titles[c], fontsize=8)
        if c == 0:
            if freq_axis is not None and panels[r][c] is not None:
                rows, labels = frequency_ticks(*freq_axis, np.shape(panels[r][c])[0])
                ax.set_yticks(rows, labels, fontsize=7)
            unit = "Hz" if freq_axis is not None else "frequency ->"
            ax.set_ylabel(f"{row_labels[r]}\n{unit}", fontsize=8)
        if r == len(row_labels) - 1 and xlabel:
            ax.set_xlabel("time ->", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.02 if len(row_labels) > 1 else 0.04, label=label)
    return axes


def _class_panels(stack: np.ndarray, present) -> list[list]:
    """(K, C, F, T) -> _matrix_grid panels: a row per channel, a column per class; None where
    present ((K, C), (K,) or one bool) is false."""
    classes, channels = stack.shape[:2]
    present = np.broadcast_to(np.asarray(present).T, (channels, classes)).T  # (K, C)
    return [[stack[k, c] if present[k, c] else None for k in range(classes)] for c in range(channels)]


def _channel_labels(n: int) -> list[str]:
    return [f"ch {c + 1}" for c in range(n)]


def preview_figure(
    classes,
    channels,
    examples,
    means: np.ndarray,
    counts: np.ndarray,
    title: str,
    freq_axis: tuple[float, float, str] | None = None,
):
    """make_hht's preview.png: a few matrices of each class (top), each class's mean matrix (middle) and
    its mean spectrum, the mean matrix averaged over time (bottom); one row per channel.
    examples[k][c]: a list of (F, T) arrays; means: (K, C, F, T), NaN where a class lacks the channel.
    freq_axis (lo Hz, hi Hz, 'linear' | 'log'): the axis every matrix shares, drawn in Hz; None: in rows.
    Colours end at the 99th percentile of what each block shows (one bright pixel darkens nothing)."""
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
    shown = [m for row in panels for m in row if m is not None]
    _matrix_grid(
        top, panels, channels, titles, "value (99th pct)", vmin=0.0, vmax=upper_limit(shown), freq_axis=freq_axis
    )
    middle.suptitle("class means", fontsize=9)
    _matrix_grid(
        middle,
        _class_panels(means, counts > 0),
        channels,
        [f"{n} (n={counts[k].max()})" for k, n in enumerate(classes)],
        "mean (99th pct)",
        vmin=0.0,
        vmax=upper_limit(means),
        freq_axis=freq_axis,
    )
    axes = bottom.subplots(1, len(channels), squeeze=False)[0]
    size = means.shape[2]
    x = row_frequencies(*freq_axis, size) if freq_axis is not None else np.arange(size)
    for c, ax in enumerate(axes):
        for k, name in enumerate(classes):
            if counts[k, c]:
                ax.plot(x, means[k, c].mean(axis=-1), label=name, linewidth=1.5)
        xlabel = "frequency (Hz)" if freq_axis is not None else "frequency row (low -> high; files' axes differ)"
        ax.set(title=channels[c], xlabel=xlabel, ylabel="mean over time")
        if freq_axis is not None and freq_axis[2] == "log":
            ax.set_xscale("log")
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def saliency_figure(
    mean_input: np.ndarray,
    saliency: np.ndarray,
    counts,
    class_names: Sequence[str],
    title: str,
    channels: Sequence[str] | None = None,
    freq_axis: tuple[float, float, str] | None = None,
):
    """Where the model looks, per channel (rows) and class (columns): the class-mean input (top) and, below
    it, the mean saliency of the true class, divided by the 99th percentile of that class's saliency (so
    every class's pattern shows, whatever its gradient's size; the few larger values saturate at 1).
    mean_input, saliency: (K, C, F, T); counts: (K,) samples; channels: their names (default ch 1..C);
    freq_axis (lo Hz, hi Hz, 'linear' | 'log'): the rows' frequencies, where the input's files name them."""
    classes, n_channels = len(class_names), mean_input.shape[1]
    have = np.asarray(counts) > 0
    limits = np.array([upper_limit(saliency[k]) if have[k] else 1.0 for k in range(classes)])
    scaled = saliency / limits[:, None, None, None]
    fig = plt.figure(figsize=(2.4 * classes + 1.6, 4.4 * n_channels + 1.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    titles = [f"{name} (n={n})" for name, n in zip(class_names, counts, strict=True)]
    rows = list(channels) if channels is not None else _channel_labels(n_channels)
    shown = mean_input[have]
    top.suptitle("class-mean input", fontsize=9)
    low, high = -symmetric_limit(shown) if np.nanmin(shown, initial=0.0) < 0 else 0.0, upper_limit(shown)
    grid = {"freq_axis": freq_axis}
    _matrix_grid(top, _class_panels(mean_input, have), rows, titles, "input (99th pct)", vmin=low, vmax=high, **grid)
    bottom.suptitle("mean |gradient x input| of the true class's logit", fontsize=9)
    _matrix_grid(
        bottom,
        _class_panels(scaled, have),
        rows,
        titles,
        "saliency / class's 99th pct",
        cmap="inferno",
        vmin=0.0,
        vmax=1.0,
        **grid,
    )
    fig.suptitle(title, fontsize=10)
    return fig
