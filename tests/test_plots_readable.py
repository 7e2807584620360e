"""The pictures read at a glance: colour scales fitted to the data (symmetric for differences, percentile-
clipped for saliency and spectra), titles and legends that hide nothing, channel names, chance lines, epochs
numbered as history.csv counts them, values on bars, a frequency axis in Hz."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from semg_hht.hht.transform import hilbert_spectrum
from semg_hht.reporting.plots import (
    axis_in_hz,
    before_after_figure,
    channel_names,
    class_means_figure,
    curves_figure,
    frequency_ticks,
    per_person_figure,
    preview_figure,
    row_frequencies,
    saliency_figure,
    symmetric_limit,
    upper_limit,
)


def _boxes(fig, artists):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _images(fig):
    """Every image drawn, in the order drawn (subfigures included)."""
    return [im for ax in fig.get_axes() for im in ax.get_images()]


def test_colour_limits_follow_the_data_not_one_outlier():
    rng = np.random.default_rng(0)
    diffs = rng.uniform(-0.03, 0.03, (3, 64, 64))
    diffs[0, 0, 0] = 0.15  # one bright pixel
    assert symmetric_limit(diffs) == pytest.approx(0.03, rel=0.05)  # not 0.15: the rest keeps its colours
    saliency = rng.exponential(1.0, (64, 64)) ** 3
    assert upper_limit(saliency) < 0.3 * saliency.max()
    sparse = np.zeros((40, 40))
    sparse[3, 3] = 2.0
    assert upper_limit(sparse) == symmetric_limit(-sparse) == 2.0  # percentile 0: the largest value instead
    assert upper_limit(np.zeros(4)) == symmetric_limit(np.full(3, np.nan)) == 1.0


def test_class_mean_spectra_a_symmetric_scale_per_channel_titles_apart_and_channel_names():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 0.05, (30, 2, 16, 16))
    x[:10, 0, 2] += 0.03  # class 0 differs by +-0.03 on channel 0; channel 1 by much less
    x[10:20, 1, 5] += 0.003
    y = np.repeat([0, 1, 2], 10)
    fig = class_means_figure(x, y, ["m1", "m2", "m3"], "class-mean spectra minus their mean", ["CH1", "CH2"])
    images = _images(fig)
    assert len(images) == 6
    limits = [im.get_clim() for im in images]
    for lo, hi in limits:
        assert lo == -hi and hi > 0
    assert limits[0] == limits[1] == limits[2] and limits[3] == limits[4] == limits[5]  # one per channel
    assert 0.005 < limits[0][1] < 0.04 and limits[3][1] < limits[0][1]  # fitted to each channel's differences
    labels = [ax.get_ylabel() for ax in fig.get_axes() if "frequency" in ax.get_ylabel()]
    assert labels[0].startswith("CH1") and labels[1].startswith("CH2")
    titles = [ax.title for ax in fig.get_axes() if ax.get_title()]
    assert [t.get_text() for t in titles] == ["m1 (n=10)", "m2 (n=10)", "m3 (n=10)"]
    suptitle, *panel_titles = _boxes(fig, [fig._suptitle, *titles])
    assert not any(_overlap(suptitle, t) for t in panel_titles)
    width, height = fig.get_size_inches() * fig.dpi
    assert width >= 800 and height >= 450  # 698x271 before
    plt.close(fig)


def test_saliency_each_class_clipped_at_its_99th_percentile():
    rng = np.random.default_rng(2)
    saliency = rng.exponential(1.0, (2, 1, 32, 32)) ** 2  # heavy-tailed, as gradients are
    saliency[1] *= 1000  # another class's gradient is far larger: each still fills its scale
    mean_input = rng.uniform(0, 1, (2, 1, 32, 32))
    fig = saliency_figure(mean_input, saliency, [5, 5], ["a", "b"], "t", ["BICEPS"])
    maps = [im for im in _images(fig) if im.get_cmap().name == "inferno"]
    for k, image in enumerate(maps):
        shown = np.asarray(image.get_array())
        assert image.get_clim() == (0.0, 1.0)
        assert np.percentile(shown, 99) == pytest.approx(1.0)
        assert np.allclose(shown, saliency[k, 0] / np.percentile(saliency[k, 0], 99))
        by_max = saliency[k, 0] / saliency[k, 0].max()  # the scale before: nearly black
        assert np.mean(shown > 0.2) > 2 * np.mean(by_max > 0.2)
    assert any(ax.get_ylabel().startswith("BICEPS") for ax in fig.get_axes())
    plt.close(fig)


def test_training_curves_count_epochs_from_zero_with_a_chance_line():
    history = [
        {"epoch": e, "train/loss": 1.0 - 0.1 * e, "val/loss": 1.0, "train/acc": 0.4, "val/acc": 0.5, "lr": 1e-3}
        for e in range(4)
    ]
    fig = curves_figure(history, n_classes=5)
    loss, acc, lr = fig.get_axes()
    for ax in (loss, acc, lr):
        assert all(list(line.get_xdata()) == [0, 1, 2, 3] for line in ax.get_lines() if len(line.get_xdata()) == 4)
    chance = [line for line in acc.get_lines() if "chance" in line.get_label()]
    assert len(chance) == 1 and set(chance[0].get_ydata()) == {0.2}
    assert "chance 1/5 = 0.20" in [t.get_text() for t in acc.get_legend().get_texts()]
    assert not [line for line in curves_figure(history).get_axes()[1].get_lines() if "chance" in line.get_label()]
    plt.close("all")


@pytest.mark.parametrize("kind", ["per_person", "before_after"])
def test_bars_carry_their_values_and_the_legend_hides_none(kind):
    people = {f"S{i:02d}": v for i, v in enumerate((1.0, 0.9, 0.35, 1.0))}
    if kind == "per_person":
        fig = per_person_figure(people, 0.33, "validation per person (best)")
    else:
        fig = before_after_figure(people, {p: 1.0 for p in people}, 0.33, "movement: full on support={rep: [1]}")
    ax = fig.get_axes()[0]
    bars = [patch for container in ax.containers for patch in container]
    values = [t.get_text() for t in ax.texts]
    assert len(values) == len(bars) >= 4 and "0.35" in values and "1.00" in values
    legend, *boxes = _boxes(fig, [ax.get_legend(), *bars, *ax.texts])
    assert not any(_overlap(legend, box) for box in boxes)
    plt.close(fig)


def test_channel_names_from_the_manifest_column():
    assert channel_names(["CH1+CH2", "CH1+CH2"], 2) == ["CH1", "CH2"]
    assert channel_names(["BICEPS", "BRACHIORADIALIS", "BICEPS"], 1) == ["BICEPS / BRACHIORADIALIS"]
    assert channel_names([None, None], 2) == ["ch 1", "ch 2"]  # file-name labels: no channel column
    assert channel_names(["CH1+CH2", "CH3+CH4"], 2) == ["ch 1", "ch 2"]  # rows disagree


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_frequency_axis_in_hz_matches_the_rows_make_hht_fills(scale):
    fs, size, lo, hi = 1000, 64, 20.0, 450.0
    rows = row_frequencies(lo, hi, scale, size)
    assert rows[0] == pytest.approx(lo) and rows[-1] == pytest.approx(hi)
    t = np.arange(fs) / fs
    for tone in (50.0, 100.0, 200.0):
        matrix = hilbert_spectrum(np.sin(2 * np.pi * tone * t)[None], fs, size, freq_range=(lo, hi), freq_scale=scale)
        row = int(matrix.sum(axis=1).argmax())
        assert rows[row] <= tone < rows[row + 1]  # the row the tone lands in starts at or below it
    positions, labels = frequency_ticks(lo, hi, scale, size)
    assert labels[:3] == (["20", "50", "100"] if scale == "log" else ["100", "200", "300"])
    for position, label in zip(positions, labels, strict=True):
        assert np.interp(position, np.arange(size), rows) == pytest.approx(float(label), rel=1e-3)


def test_preview_draws_its_frequency_axis_in_hz():
    means = np.random.default_rng(3).uniform(0, 0.1, (2, 1, 32, 32))
    examples = [[[means[k, 0]]] for k in range(2)]
    counts = np.ones((2, 1), dtype=int)
    fig = preview_figure(["full", "half"], ["BICEPS"], examples, means, counts, "t", (0.0, 250.0, "linear"))
    tick_labels = {t.get_text() for ax in fig.get_axes() for t in ax.get_yticklabels()}
    assert {"0", "100", "200"} <= tick_labels
    spectrum = fig.get_axes()[-1]
    assert spectrum.get_xlabel() == "frequency (Hz)" and spectrum.get_lines()[0].get_xdata()[-1] == 250.0
    log_fig = preview_figure(["full", "half"], ["BICEPS"], examples, means, counts, "t", (20.0, 450.0, "log"))
    assert log_fig.get_axes()[-1].get_xscale() == "log"
    plt.close("all")


def test_training_pictures_label_a_log_axis_in_hz_and_leave_a_linear_one_in_rows():
    assert axis_in_hz(("log", (20.0, 450.0))) == (20.0, 450.0, "log")
    assert axis_in_hz(("linear", None)) is None and axis_in_hz(None) is None
    x = np.random.default_rng(4).uniform(0, 1, (6, 1, 16, 16))
    fig = class_means_figure(x, np.repeat([0, 1], 3), ["m1", "m2"], "t", ["CH1"], axis_in_hz(("log", (20.0, 450.0))))
    first = next(ax for ax in fig.get_axes() if ax.get_ylabel().startswith("CH1"))
    assert first.get_ylabel() == "CH1\nHz" and [t.get_text() for t in first.get_yticklabels()][:2] == ["20", "50"]
    plt.close(fig)
