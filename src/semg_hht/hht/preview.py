"""What preview.png shows, read from a make_hht output folder: a few matrices of every class and
channel, and each class's mean matrix. The figure itself is drawn above this layer (semg_hht.conversion).

One pass over the labelled files of the classes shown, one file in memory at a time: the class means
are running sums, and only the chosen examples are kept, each matrix block-averaged to at most CELLS x CELLS
(a picture, not the data: spectrum.size=20000 drawn whole took 20 GB, and the OOM killer, after the
conversion itself had fitted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.data.matrices import read_matrix
from semg_hht.errors import SemgError
from semg_hht.hht.manifest import MANIFEST
from semg_hht.io import read_csv_rows

log = logging.getLogger(__name__)
TARGETS = ("movement", "gender")  # the first that any row has decides the classes
CELLS = 256  # the most rows and columns a matrix is drawn with (the seed's spectrum.size)


@dataclass
class Preview:
    target: str  # the manifest column the classes come from
    classes: list[str]  # K, sorted
    channels: list[str]  # C, in manifest order
    examples: list[list[list[np.ndarray]]]  # [k][c]: up to per_class (F, T) matrices
    means: np.ndarray  # (K, C, F, T) float64; NaN where a class has no matrix of that channel
    counts: np.ndarray  # (K, C) matrices in each mean
    freq_axis: tuple[float, float, str] | None = None  # (lo Hz, hi Hz, linear | log) every file shares, else None


def read_preview(out_dir: Path, size: int, per_class: int, max_classes: int, max_channels: int) -> Preview | None:
    """The preview of out_dir's manifest.csv; None when no labelled matrix could be read. ``size`` is the matrices'
    (spectrum.size); files of another size or unreadable are left out with one warning."""
    _, rows = read_csv_rows(out_dir / MANIFEST)
    target = next((t for t in TARGETS if any(r.get(t) for r in rows)), None)
    if target is None:
        return None
    classes = sorted({r[target] for r in rows if r.get(target)})
    channels = list(dict.fromkeys(name for r in rows if r.get(target) for name in _channels(r)))
    _say_left_out("classes", classes, max_classes)
    _say_left_out("channels", channels, max_channels)
    classes, channels = classes[:max_classes], channels[:max_channels]
    k_of, c_of = {k: i for i, k in enumerate(classes)}, {c: i for i, c in enumerate(channels)}
    shown = [r for r in rows if r.get(target) in k_of]
    picked = _spread_picks(shown, target, k_of, channels, per_class)

    cells = min(size, CELLS)
    sums = np.zeros((len(classes), len(channels), cells, cells))
    counts = np.zeros((len(classes), len(channels)), dtype=np.int64)
    examples: list[list[list[np.ndarray]]] = [[[] for _ in channels] for _ in classes]
    bad: list[str] = []
    axes: set[tuple[float, float, str] | None] = set()
    for i, row in enumerate(shown):
        names = _channels(row)
        try:
            matrix = read_matrix(out_dir / row["file"], len(names), size)  # (C_file, F, T)
        except SemgError as err:
            bad.append(str(err))
            continue
        axes.add(_freq_axis(out_dir / row["file"]))
        k = k_of[row[target]]
        for name, m in zip(names, matrix, strict=True):
            if name in c_of:
                m = shrunk(m, cells)
                sums[k, c_of[name]] += m
                counts[k, c_of[name]] += 1
                if (i, name) in picked:
                    examples[k][c_of[name]].append(m)
    if bad:  # a preview is a picture: a file it cannot read is named, not a failed conversion
        log.warning("preview: %d file(s) left out (unreadable or not %dx%d), e.g. %s", len(bad), size, size, bad[0])
    if not counts.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, :, None, None]  # 0/0 -> NaN: an empty panel, not a black one
    if len(axes) > 1:  # e.g. spectrum.freq_range=band over two sampling rates: a row is not one frequency
        log.info("preview: the files' frequency axes differ (%d kinds): drawn in rows, not Hz", len(axes))
    freq_axis = next(iter(axes)) if len(axes) == 1 else None
    return Preview(target, classes, channels, examples, means, counts, freq_axis)


def shrunk(m: np.ndarray, cells: int) -> np.ndarray:
    """An (F, T) matrix block-averaged to at most cells x cells (blocks as even as the sizes allow)."""
    for axis in (0, 1):
        n = m.shape[axis]
        if n > cells:
            edges = np.linspace(0, n, cells + 1).round().astype(int)
            widths = np.diff(edges).reshape((-1, 1) if axis == 0 else (1, -1))
            m = np.add.reduceat(m, edges[:-1], axis=axis, dtype=np.float64) / widths
    return m


def _freq_axis(path: Path) -> tuple[float, float, str] | None:
    """(lo Hz, hi Hz, linear | log) of a matrix's rows, as make_hht stored them (freq_range: the range its
    rows span, 0..fs/2 for the full axis); None for a file without them."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "freq_range" not in archive.files:
                return None
            lo, hi = (float(v) for v in archive["freq_range"])
            scale = str(archive["freq_scale"]) if "freq_scale" in archive.files else "linear"
    except (OSError, ValueError):
        return None
    return (lo, hi, scale) if hi > lo >= 0 and scale in ("linear", "log") and (scale == "linear" or lo > 0) else None


def _channels(row: dict) -> list[str]:
    """A file's channels in order: make_hht joins a stacked file's names with '+'."""
    return (row.get("channel") or "").split("+")


def _spread_picks(rows: list[dict], target: str, k_of: dict, channels: list[str], n: int) -> set[tuple[int, str]]:
    """(row index, channel) of n examples per class and channel, spread evenly over the class's rows
    (so over people and repetitions, not the first files of one person)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        for name in _channels(row):
            groups.setdefault((row[target], name), []).append(i)
    picks = set()
    for (klass, name), idx in groups.items():
        if klass in k_of and name in channels:
            chosen = np.unique(np.linspace(0, len(idx) - 1, min(n, len(idx))).round().astype(int))
            picks |= {(idx[j], name) for j in chosen}
    return picks


def _say_left_out(what: str, names: list[str], cap: int) -> None:
    if len(names) > cap:
        log.info("preview: %d %s, the first %d shown (preview.max_%s)", len(names), what, cap, what)
