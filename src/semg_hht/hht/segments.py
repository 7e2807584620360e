"""Whole sessions (NinaPro-style) -> labelled segments, each converted as a recording of its own.

Two layouts:
- labels: a per-sample label vector (NinaPro `restimulus`, 0 = rest) and optionally a per-sample
  repetition vector (`rerepetition`); a segment is a run of one (label, repetition) pair.
- marker: a binary on/off marker (e.g. 0 / 100); a segment is a non-zero run, and the labels come
  from segment.labels in protocol order (each repeated segment.reps_per_label times).
Runs of the rest label are segments too, kept only with segment.keep_rest. Segments are numbered
over every run of the session (rest included), so a number never depends on which ones are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from semg_hht.errors import SemgError
from semg_hht.hht.settings import SegmentSettings


@dataclass(frozen=True)
class Segment:
    number: int  # 1-based position among all runs of the session (rest included)
    label: str
    repetition: int
    start: int  # first sample (inclusive) of the labelled run
    end: int  # last sample + 1
    rest: bool = False


def find_segments(
    variables: dict[str, np.ndarray], n: int, fs: float, ss: SegmentSettings, path: str | Path
) -> tuple[list[Segment], list[str]]:
    """The segments to convert, and one line per segment skipped for its duration."""
    labels = per_sample(variables[ss.label_key], ss.label_key, n, path)
    if ss.mode == "marker":
        runs = _marker_runs(labels, ss, path)
    else:
        key = ss.repetition_key
        reps = None if key is None else per_sample(variables[key], key, n, path)
        runs = _label_runs(labels, reps, ss)
    kept, skipped = [], []
    for seg in runs:
        if seg.rest and not ss.keep_rest:
            continue
        seconds = (seg.end - seg.start) / fs
        if seconds < ss.min_duration_s or (ss.max_duration_s is not None and seconds > ss.max_duration_s):
            limit = "shorter than segment.min_duration_s" if seconds < ss.min_duration_s else "longer than max"
            skipped.append(
                f"segment {seg.number} (label {seg.label}, repetition {seg.repetition}, "
                f"{seg.start / fs:.3f}-{seg.end / fs:.3f} s): {seconds:.3f} s is {limit}"
            )
            continue
        kept.append(seg)
    return kept, skipped


def padded(seg: Segment, n: int, fs: float, pad_s: float) -> tuple[int, int]:
    """The samples converted for a segment: pad_s of context on both sides, within the session."""
    pad = round(pad_s * fs)
    return max(seg.start - pad, 0), min(seg.end + pad, n)


def per_sample(value: np.ndarray, key: str, n: int, path: str | Path) -> np.ndarray:
    """A per-sample vector stored as (n,), (n, 1) or (1, n), checked against the signal's length."""
    arr = np.asarray(value)
    if arr.ndim > 1 and sorted(arr.shape)[-2] == 1:
        arr = arr.ravel()
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise SemgError(
            f"'{key}' is not a vector of numbers (shape {arr.shape}, type {arr.dtype})",
            path=path,
            fix="store one number per sample",
        )
    if len(arr) != n:
        raise SemgError(
            f"'{key}' has {len(arr)} values but the signal has {n} samples",
            path=path,
            fix="store one value per sample of the signal (check reader.mat_key / segment.label_key)",
        )
    if not np.isfinite(arr).all():
        raise SemgError(f"'{key}' holds NaN/inf values", path=path, fix="store a finite value for every sample")
    return arr


def label_text(value: float) -> str:
    """3.0 -> '3' (NinaPro stores integer labels as doubles or uint8), 2.5 -> '2.5'."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _runs(*vectors: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of every run over which all the vectors keep their values."""
    cuts = np.flatnonzero(np.any([np.diff(v) != 0 for v in vectors], axis=0)) + 1
    bounds = [0, *cuts.tolist(), len(vectors[0])]
    return list(pairwise(bounds))


def _label_runs(labels: np.ndarray, reps: np.ndarray | None, ss: SegmentSettings) -> list[Segment]:
    out, counts = [], {}
    # A new segment wherever the label or the repetition changes (repetitions may touch).
    for i, (a, b) in enumerate(_runs(labels) if reps is None else _runs(labels, reps), 1):
        value = float(labels[a])
        text = label_text(value)
        counts[text] = counts.get(text, 0) + 1
        rep = int(reps[a]) if reps is not None and reps[a] > 0 else counts[text]
        out.append(Segment(i, text, rep, a, b, rest=value == ss.rest_label))
    return out


def _marker_runs(marker: np.ndarray, ss: SegmentSettings, path: str | Path) -> list[Segment]:
    on = (marker != 0).astype(np.int8)
    edges = np.diff(on)
    rising, falling = int((edges > 0).sum()), int((edges < 0).sum())
    if on[0] or on[-1]:
        where = "starts before the session" if on[0] else "has not ended when the session ends"
        raise SemgError(
            f"marker '{ss.label_key}' has an odd number of edges ({rising} on, {falling} off): a movement {where}",
            path=path,
            fix="trim the session to whole movements (the marker must be 0 at the first and last sample)",
        )
    protocol = [label for label in ss.labels or () for _ in range(ss.reps_per_label)]
    if rising != len(protocol):
        raise SemgError(
            f"marker '{ss.label_key}' marks {rising} movements but segment.labels x reps_per_label "
            f"gives {len(protocol)}",
            path=path,
            fix="list every movement of the protocol in order in segment.labels (and set segment.reps_per_label)",
        )
    out, counts, moves = [], {}, iter(protocol)
    rest = label_text(ss.rest_label)
    for i, (a, b) in enumerate(_runs(on), 1):
        text = next(moves) if on[a] else rest
        counts[text] = counts.get(text, 0) + 1
        out.append(Segment(i, text, counts[text], a, b, rest=not on[a]))
    return out
