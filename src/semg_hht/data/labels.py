"""Where labels come from: the file-name scheme (semg_hht.filename_scheme) or a CSV manifest. Class lists
and synonyms come from YAML (conf/data/*.yaml, conf/filename_scheme/), never from code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semg_hht.errors import SemgError
from semg_hht.io import read_csv_rows

TARGETS = ("movement", "gender", "gender_movement")


@dataclass(frozen=True)
class Recording:
    """One matrix file and what is known about it. ``labels`` maps label name -> value (or None)."""

    path: Path
    labels: Mapping[str, str | None] = field(default_factory=dict)
    subject: str | None = None

    @property
    def row(self) -> dict[str, str | None]:
        """The manifest row as data.filter / data.test_filter see it (labels and subject)."""
        return {**self.labels, "subject": self.subject}

    @property
    def recording(self) -> tuple[str | None, str]:
        """The source recording this matrix came from: make_hht's ``recording`` column groups the
        windows (and channels) of one recording; without it every file is its own recording."""
        return self.subject, self.labels.get("recording") or str(self.path)


def read_manifest(manifest: Path, data_dir: Path, *, allow_outside: bool = False) -> list[Recording]:
    """Rows of a CSV manifest with a ``file`` column (path relative to the manifest's folder) and
    label columns (movement, gender, ...) plus an optional ``subject`` column. Empty cells mean
    unknown. Paths must stay inside data_dir unless allow_outside is set."""
    if not manifest.is_file():
        raise SemgError("manifest not found", path=manifest, fix="check data.manifest (relative to data.data_dir)")
    fields, rows = read_csv_rows(manifest)
    if not rows or "file" not in fields:
        raise SemgError(
            "manifest needs a header row with a 'file' column and at least one data row",
            path=manifest,
            fix="write it as CSV: file,subject,movement,gender,...",
        )
    root = data_dir.resolve()
    recordings, seen = [], {}
    for line, row in enumerate(rows, start=2):
        rel = (row.get("file") or "").strip()
        if not rel:
            raise SemgError(f"line {line}: empty 'file' cell", path=manifest, fix="fill in or delete the row")
        path = (manifest.parent / rel).resolve()
        if not allow_outside and not path.is_relative_to(root):
            raise SemgError(
                f"line {line}: '{rel}' points outside the data folder {root}",
                path=manifest,
                fix="keep recordings under data.data_dir or set data.allow_outside_paths=true",
            )
        if path in seen:
            raise SemgError(
                f"line {line}: '{rel}' is already listed on line {seen[path]}",
                path=manifest,
                fix="list each recording once (a duplicate would count twice and can straddle the split)",
            )
        seen[path] = line
        labels = {k: (v.strip() or None) for k, v in row.items() if k not in ("file", "subject") and v is not None}
        recordings.append(Recording(path, labels, (row.get("subject") or "").strip() or None))
    return recordings


def target_classes(target: str, classes: Mapping[str, Sequence[str] | None], recordings: Sequence[Recording]):
    """Class names of the target, in YAML order; a null list is inferred (sorted) from the data.
    gender_movement is the second seed's combination, gender-major (M_full, M_half, ...)."""
    if target not in TARGETS:
        raise SemgError(f"unknown target '{target}'", fix=f"set data.target to one of {list(TARGETS)}")

    def of(label: str) -> list[str]:
        listed = classes.get(label)
        if listed:
            return [str(c) for c in listed]
        return sorted({r.labels[label] for r in recordings if r.labels.get(label)})

    if target == "gender_movement":
        return [f"{g}_{m}" for g in of("gender") for m in of("movement")]
    return of(target)


def target_value(recording: Recording, target: str) -> str | None:
    """The recording's label for the target, or None when (part of) it is unknown."""
    if target == "gender_movement":
        gender, movement = recording.labels.get("gender"), recording.labels.get("movement")
        return f"{gender}_{movement}" if gender and movement else None
    return recording.labels.get(target)


def row_filter(spec: Mapping[str, Any]) -> dict[str, set[str]]:
    """data.filter as column -> allowed values (one value or a list), compared as manifest strings."""

    def values(value: Any) -> set[str]:
        many = isinstance(value, Sequence | set) and not isinstance(value, str)
        return {str(v) for v in (value if many else [value])}

    return {str(column): values(allowed) for column, allowed in spec.items()}


def row_matches(row: Mapping[str, str | None], wanted: Mapping[str, set[str]]) -> bool:
    """Whether a manifest row (or a recording's labels) passes every column of a row_filter."""
    return all((row.get(column) or "").strip() in allowed for column, allowed in wanted.items())
