"""Feature rows of raw recordings, found, read and filtered by make_hht's own discovery, reader and filters (with
its settings); given make_hht's output folder, exactly the recordings and session segments it converted, under its
recording ids, so the classic side and the CNN's matrices name the same recordings."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semg_hht.classic.features import feature_names, feature_vector
from semg_hht.data.labels import row_filter, row_matches
from semg_hht.errors import SemgError
from semg_hht.hht.filters import condition
from semg_hht.hht.inputs import discover
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import FilterSettings, InputSettings, ManifestColumns, ReaderSettings
from semg_hht.io import read_csv_rows


@dataclass
class FeatureSet:
    """Feature rows of recordings (or of their windows: ``units`` names each row's recording)."""

    x: np.ndarray  # (rows, features)
    y: np.ndarray  # class index per row
    class_names: list[str]
    subjects: list[str | None]  # per row
    paths: list[Path]  # per recording
    names: list[str]
    units: np.ndarray | None = None  # recording index per row; None = one row per recording
    ids: list[str] | None = None  # make_hht's recording id per recording (what the CNN's matrices are named by)

    @property
    def unit(self) -> np.ndarray:
        return np.arange(len(self.y)) if self.units is None else self.units

    def recordings(self) -> tuple[np.ndarray, list[str | None]]:
        """Label and subject of each recording (the level folds are drawn on)."""
        first = np.unique(self.unit, return_index=True)[1]
        return self.y[first], [self.subjects[i] for i in first]

    def rows_of(self, recordings: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.unit, recordings))

    def take(self, recordings: np.ndarray) -> FeatureSet:
        """The rows of some recordings, renumbered."""
        rows = self.rows_of(recordings)
        units = None if self.units is None else np.unique(self.units[rows], return_inverse=True)[1]
        return FeatureSet(
            self.x[rows], self.y[rows], self.class_names, [self.subjects[i] for i in rows],
            [self.paths[i] for i in np.asarray(recordings)], self.names, units,
            None if self.ids is None else [self.ids[i] for i in np.asarray(recordings)],
        )  # fmt: skip


def standardized(x: np.ndarray, by: np.ndarray | None = None, eps: float = 1e-9) -> np.ndarray:
    """x in the units of ``by``'s rows (x's own by default): zero mean, unit spread per feature."""
    by = x if by is None else by
    return (x - by.mean(0)) / (by.std(0) + eps)


def per_person_standardized(x: np.ndarray, people: Sequence[str | None]) -> np.ndarray:
    """Every person's rows standardised by that person's own mean and spread (per feature)."""
    out = np.array(x, dtype=float)
    people = np.asarray(people, dtype=object)
    for person in dict.fromkeys(people.tolist()):
        out[people == person] = standardized(out[people == person])
    return out


def window_starts(n: int, length: int, hop: int) -> list[int]:
    """Start samples of the full windows of ``length`` every ``hop`` (none when the recording is shorter)."""
    return list(range(0, n - length + 1, hop)) if n >= length else []


def select_rows(rows: Sequence[Mapping[str, str]], spec: Mapping[str, Any]) -> list[Mapping[str, str]]:
    """Rows whose columns match every filter value (a value or a list of values), as data.filter."""
    wanted = row_filter(spec)
    return [r for r in rows if row_matches(r, wanted)]


# make_hht's output manifest: columns of one matrix (not of its recording), and the stretch each converted
MATRIX_COLUMNS = ("file", "channel", "window", "t_start_s", "t_end_s", "hht_fs_hz")


def raw_recordings(
    manifest: Path, inputs: InputSettings, hht_dir: Path | None = None, segmented: bool = False
) -> list[dict[str, str]]:
    """The recordings of a make_hht input (manifest or folder, found by make_hht's own discovery with its
    inputs.* settings) as rows {path (absolute), fs_hz, source, subject, movement, gender, recording (make_hht's
    id), other columns}. With hht_dir (make_hht's output of this input): exactly the recordings it converted,
    one row each, with that manifest's id, labels and columns and the stretch of the conditioned signal it
    converted (t_start_s..t_end_s: a session's segment); nothing it skipped. Sessions (segment.enabled) need it."""
    jobs, _ = discover(manifest, inputs)
    if hht_dir is not None:
        return _converted(jobs, Path(hht_dir), manifest)
    if segmented:
        raise SemgError(
            "segment.enabled: the classic features are computed on the segments make_hht converted",
            path=manifest,
            fix="pass hht_dir=<make_hht's output folder of raw>",
        )
    return [
        {"path": j.path, "fs_hz": j.fs_raw, "source": j.source, "subject": j.subject, "movement": j.movement,
         "gender": j.gender, "recording": str(j.recording_number)} | dict(j.extra)
        for j in jobs
    ]  # fmt: skip


def _converted(jobs: list, hht_dir: Path, manifest: Path) -> list[dict[str, str]]:
    """One row per recording of hht_dir's manifest.csv made from one of ``jobs`` (matched by source)."""
    path = hht_dir / "manifest.csv"
    if not path.is_file():
        raise SemgError("no make_hht manifest.csv in hht_dir", path=hht_dir, fix="pass hht_dir=<make_hht's output>")
    _, matrices = read_csv_rows(path)
    by_source = {j.source: j for j in jobs}
    units: dict[str, dict[str, str]] = {}
    for row in matrices:
        job = by_source.get(row.get("source") or "")
        if job is None or not row.get("recording"):
            continue  # another input's recording (one folder may hold several)
        unit = units.get(row["recording"])
        if unit is None:
            unit = units[row["recording"]] = {k: v for k, v in row.items() if k not in MATRIX_COLUMNS}
            unit |= {"path": job.path, "fs_hz": job.fs_raw, "t_start_s": row["t_start_s"], "t_end_s": row["t_end_s"]}
        unit["t_start_s"] = min(unit["t_start_s"], row["t_start_s"], key=float)  # windows: their union
        unit["t_end_s"] = max(unit["t_end_s"], row["t_end_s"], key=float)
    if not units:
        raise SemgError(
            f"hht_dir's manifest.csv lists no recording of {manifest} (its sources are other files)",
            path=path,
            fix="pass the hht_dir make_hht wrote from raw (make_hht.py input=<raw>)",
        )
    return list(units.values())


def manifest_rows(
    manifest: Path,
    target: str,
    classes: Sequence[str] | None,
    rows_wanted: Mapping[str, Any],
    limit_subjects: int | None = None,
    columns: ManifestColumns | None = None,
    found: list[dict[str, str]] | None = None,
) -> tuple[list[Mapping[str, str]], list[str]]:
    """Rows of an input manifest, read by make_hht's own discovery (its inputs.manifest.* column names:
    ``columns``) as {path (absolute), fs_hz, subject, movement, gender, other columns} (or the rows
    ``found`` by raw_recordings), that pass rows_wanted (data.filter) and have a target label in
    ``classes``; and the class list."""
    if found is None:
        found = raw_recordings(manifest, InputSettings(manifest=columns or ManifestColumns()))
    rows = select_rows(found, rows_wanted)
    rows = [r for r in rows if (r.get(target) or "").strip()]
    if classes is None:
        classes = sorted({r[target].strip() for r in rows})
    rows = [r for r in rows if r[target].strip() in classes]
    if limit_subjects is not None:
        keep = sorted({r["subject"] for r in rows})[:limit_subjects]
        rows = [r for r in rows if r["subject"] in keep]
    if not rows:
        raise SemgError(f"no rows with a {target} label in {list(classes)}", path=manifest, fix="check the filter")
    return rows, list(classes)


def load_features(
    manifest: Path,
    target: str | None,
    classes: Sequence[str] | None,
    rows_wanted: Mapping[str, Any],
    filters: FilterSettings,
    features: Mapping[str, Any] | None = None,
    reader: ReaderSettings | None = None,
    limit_subjects: int | None = None,
    window: Mapping[str, float] | None = None,
    rows: list[Mapping[str, str]] | None = None,
) -> FeatureSet:
    """Features of every raw recording of an input manifest that passes rows_wanted (data.filter)
    and has a target label in ``classes`` (or of the given ``rows``: raw_recordings' rows, a row with
    t_start_s..t_end_s is that stretch of its conditioned recording, e.g. a session's segment). ``features``:
    feature_vector's settings (ar_order, threshold, nperseg); ``window`` ({length_s, hop_s}): one row per window.
    target=None (with ``rows``): features of recordings whose labels come from elsewhere, every y -1."""
    features = dict(features or {})
    ar_order = features.get("ar_order", 4)
    if rows is None:
        rows, classes = manifest_rows(manifest, target, classes, rows_wanted, limit_subjects)
    reader = reader or ReaderSettings()
    x, y, subjects, units, paths = [], [], [], [], []
    last: tuple[Path, Any] | None = None  # a session's segments follow one another: read and filter it once
    for unit, row in enumerate(rows):
        path = manifest.parent / row["path"]  # manifest_rows' paths are absolute already
        if last is None or last[0] != path:
            rec = read_recording(path, reader, fs_hint=float(row["fs_hz"]) if row.get("fs_hz") else None)
            last = (path, condition(rec.signal, rec.fs, filters, path))
        cond = last[1]
        signal = cond.signal
        if row.get("t_start_s"):  # the stretch make_hht converted (its t_* are of the conditioned signal)
            signal = signal[round(float(row["t_start_s"]) * cond.fs) : round(float(row["t_end_s"]) * cond.fs)]
        pieces = [signal]
        if window:
            length, hop = round(window["length_s"] * cond.fs), round(window["hop_s"] * cond.fs)
            pieces = [signal[a : a + length] for a in window_starts(len(signal), length, hop)]
            if not pieces:
                raise SemgError(f"shorter than one {window['length_s']} s window", path=path, fix="shorten window")
        for piece in pieces:
            x.append(feature_vector(piece, cond.fs, **features))
            y.append(list(classes).index(row[target].strip()) if target is not None else -1)
            subjects.append((row.get("subject") or "").strip() or None)
            units.append(unit)
        paths.append(path)
    x = np.asarray(x)
    return FeatureSet(
        x=x,
        y=np.array(y),
        class_names=list(classes),
        subjects=subjects,
        paths=paths,
        names=feature_names(x.shape[1] // (8 + ar_order), ar_order),
        units=np.array(units) if window else None,
        ids=[str(r.get("recording") or "") for r in rows],
    )


def matrix_recordings(manifest: Path) -> dict[str, tuple[str, str]]:
    """{matrix file: (recording id, source)} of a make_hht manifest.csv."""
    if not manifest.is_file():
        raise SemgError("no make_hht manifest.csv beside the matrices", path=manifest.parent, fix="rerun make_hht")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "recording" not in rows[0]:
        raise SemgError("the manifest.csv has no recording column", path=manifest, fix="rerun make_hht")
    return {r["file"]: (r["recording"], r.get("source") or "") for r in rows if r.get("recording")}
