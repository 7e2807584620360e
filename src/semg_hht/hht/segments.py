"""Whole sessions (NinaPro-style) -> labelled segments, each converted as a recording of its own.

Two layouts:
- labels: a per-sample label vector (NinaPro `restimulus`, 0 = rest) and optionally a per-sample
  repetition vector (`rerepetition`); a segment is a run of one (label, repetition) pair.
- marker: a binary on/off marker (e.g. 0 / 100); a segment is a non-zero run, and the labels come
  from segment.labels in protocol order (each repeated segment.reps_per_label times).
Runs of the rest label are segments too, kept only with segment.keep_rest. Segments are numbered
over every run of the session (rest included), so a number never depends on which ones are kept.
Shipped data has quirks: a marker kept on the protocol's fixed timeline, longer or shorter than the
signal (segment.label_length=fit trims or pads it with rest, never through a movement), and a last
movement cut by the end of the recording (segment.open_end: refuse | close | skip).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from semg_hht.errors import SemgError
from semg_hht.hht.naming import gender_token, gender_value
from semg_hht.hht.settings import SegmentSettings

log = logging.getLogger("semg_hht.hht")


@dataclass(frozen=True)
class Segment:
    number: int  # 1-based position among all runs of the session (rest included)
    label: str
    repetition: int
    start: int  # first sample (inclusive) of the labelled run
    end: int  # last sample + 1
    rest: bool = False


def find_segments(
    variables: dict[str, np.ndarray],
    n: int,
    fs: float,
    ss: SegmentSettings,
    path: str | Path,
    notes: list[str] | None = None,
) -> tuple[list[Segment], list[str]]:
    """The segments to convert, and one line per segment skipped (its duration, or still on at the last
    sample). `notes` gets the session's one warning line when its labels were fitted to the signal's length
    (segment.label_length=fit); without it the line is logged."""
    marker = ss.mode == "marker"
    keys = [ss.label_key] + ([ss.repetition_key] if not marker and ss.repetition_key else [])
    rest = {ss.label_key: 0.0 if marker else ss.rest_label, ss.repetition_key: 0.0}  # a marker rests at 0
    vectors = per_sample({k: variables[k] for k in keys}, n, ss.label_length, rest, path, notes)
    if marker:
        runs = _marker_runs(vectors[ss.label_key], ss, path)
    else:
        runs = _label_runs(vectors[ss.label_key], vectors.get(ss.repetition_key or ""), ss)
    # A movement still on at the last sample: refused or skipped; with close, a segment like any other.
    open_run = runs[-1] if ss.open_end != "close" and runs and not runs[-1].rest else None
    if open_run is not None and ss.open_end == "refuse":
        raise SemgError(
            f"'{ss.label_key}' is still on at the last sample ({_where(open_run, fs)}): a movement has not ended"
            " when the session ends",
            path=path,
            fix="pass segment.open_end=close (it ends at the last sample) or segment.open_end=skip (dropped, listed)",
        )
    kept, skipped = [], []
    for seg in runs:
        if seg.rest and not ss.keep_rest:
            continue
        seconds = (seg.end - seg.start) / fs
        if seg is open_run:
            skipped.append(f"{_where(seg, fs)}: still on at the last sample (segment.open_end=skip)")
            continue
        if seconds < ss.min_duration_s or (ss.max_duration_s is not None and seconds > ss.max_duration_s):
            limit = "shorter than segment.min_duration_s" if seconds < ss.min_duration_s else "longer than max"
            skipped.append(f"{_where(seg, fs)}: {seconds:.3f} s is {limit}")
            continue
        kept.append(seg)
    return kept, skipped


def _where(seg: Segment, fs: float) -> str:
    return (
        f"segment {seg.number} (label {seg.label}, repetition {seg.repetition}, "
        f"{seg.start / fs:.3f}-{seg.end / fs:.3f} s)"
    )


def padded(seg: Segment, n: int, fs: float, pad_s: float) -> tuple[int, int]:
    """The samples converted for a segment: pad_s of context on both sides, within the session."""
    pad = round(pad_s * fs)
    return max(seg.start - pad, 0), min(seg.end + pad, n)


def per_sample(
    stored: dict[str, np.ndarray],
    n: int,
    length: str,
    rest: dict[str, float],
    path: str | Path,
    notes: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-sample vectors stored as (n,), (n, 1) or (1, n), checked against the signal's n samples. Another
    length is refused (length=strict) or fitted to n (fit): trimmed where what goes is rest, padded with rest
    where the vector ended in rest; one warning line for the session gives the lengths."""
    vectors = {key: _vector(value, key, path) for key, value in stored.items()}
    other = {key: len(v) for key, v in vectors.items() if len(v) != n}
    if not other:
        return vectors
    key, m = next(iter(other.items()))
    if length == "strict":
        raise SemgError(
            f"'{key}' has {m} values but the signal has {n} samples",
            path=path,
            fix="store one value per sample of the signal (check reader.mat_key / segment.label_key), or pass"
            " segment.label_length=fit to trim or pad it with rest",
        )
    for key in other:
        vectors[key] = _fit(vectors[key], key, n, rest[key], path)
    lengths = ", ".join(f"'{key}' has {m} values" for key, m in other.items())
    how = " and ".join(sorted({"trimmed" if m > n else "padded with rest" for m in other.values()}))
    line = f"{path}: {lengths} but the signal has {n} samples: {how} to the signal (segment.label_length=fit)"
    if notes is None:
        log.warning("%s", line)
    else:
        notes.append(line)
    return vectors


def _vector(value: np.ndarray, key: str, path: str | Path) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim > 1 and sorted(arr.shape)[-2] == 1:
        arr = arr.ravel()
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise SemgError(
            f"'{key}' is not a vector of numbers (shape {arr.shape}, type {arr.dtype})",
            path=path,
            fix="store one number per sample",
        )
    if not np.isfinite(arr).all():
        raise SemgError(f"'{key}' holds NaN/inf values", path=path, fix="store a finite value for every sample")
    return arr


def _fit(arr: np.ndarray, key: str, n: int, rest: float, path: str | Path) -> np.ndarray:
    """arr trimmed or padded to n samples, refused where that would change a movement: a trimmed part
    that is not all rest, or a vector that stops during a movement (padding would end it there)."""
    m = len(arr)
    fix = f"check that '{key}' belongs to this signal; if it does, cut the signal or '{key}' by hand"
    if m > n and (moving := int((arr[n:] != rest).sum())):
        raise SemgError(
            f"'{key}' has {m} values but the signal has {n} samples, and {moving} of the {m - n} values past"
            " the signal are not rest: trimming (segment.label_length=fit) would cut a movement",
            path=path,
            fix=fix,
        )
    if m < n and arr[-1] != rest:
        raise SemgError(
            f"'{key}' has {m} values but the signal has {n} samples, and it stops during a movement (value"
            f" {label_text(float(arr[-1]))}): padding it with rest (segment.label_length=fit) would end the"
            " movement there",
            path=path,
            fix=fix,
        )
    return arr[:n] if m > n else np.concatenate([arr, np.full(n - m, rest, dtype=arr.dtype)])


def session_meta(variables: dict[str, np.ndarray], ss: SegmentSettings, path: str | Path) -> dict[str, str]:
    """segment.meta_keys: manifest column -> the session variable's one value as text; gender as M, F or ''
    (empty: unknown), read by the words the manifest's gender column takes (m, f, male, female, ...)."""
    meta = {}
    for column, key in (ss.meta_keys or {}).items():
        at = f"segment.meta_keys.{column}"
        if key not in variables:
            raise SemgError(
                f"no variable '{key}' ({at})",
                path=path,
                fix=f"set {at} to the session's variable holding it, or leave {column} out of segment.meta_keys",
            )
        text = variable_text(variables[key])
        if text is None:
            size = np.asarray(variables[key]).size
            raise SemgError(
                f"'{key}' ({at}) holds {size} values, not one", path=path, fix="store one value per session"
            )
        if column == "gender":  # the output names' gender field
            if text and gender_token(text) == "U":
                raise SemgError(
                    f"'{key}' ({at}) is {text!r}, not a gender (m, f, male, female, man, woman: any case)",
                    path=path,
                    fix="store m or f (empty: unknown), or leave gender out of segment.meta_keys",
                )
            text = gender_value(text)
        meta[column] = text
    return meta


def variable_text(value: np.ndarray) -> str | None:
    """A session variable's one value as text (NinaPro stores numbers as doubles: 3.0 -> '3'; NaN and
    nothing -> ''), None when it holds several."""
    arr = np.asarray(value)
    if arr.size != 1:
        return "" if arr.size == 0 else None
    item = arr.reshape(()).item()
    if isinstance(item, bytes):
        item = item.decode("utf-8", "replace")
    if isinstance(item, int | float):
        return label_text(item) if np.isfinite(item) else ""
    return str(item).strip()


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
    if on[0]:  # a movement still on at the last sample is segment.open_end's (find_segments)
        raise SemgError(
            f"marker '{ss.label_key}' has an odd number of edges ({rising} on, {falling} off): a movement"
            " starts before the session",
            path=path,
            fix="trim the session to whole movements (the marker must be 0 at the first sample)",
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
