"""What to convert: a folder of recordings, a manifest CSV, or one recording -> ordered jobs.

The order is fixed (sorted paths / manifest row order), so the recording number in output names
and the shard a recording belongs to never depend on how many workers or shards run.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from semg_hht.errors import SemgError
from semg_hht.filename_scheme import FilenameScheme
from semg_hht.hht.naming import gender_value
from semg_hht.hht.settings import InputSettings
from semg_hht.io import csv_header, file_sha256, read_csv_rows


@dataclass(frozen=True)
class Job:
    index: int  # position in the whole input list; names use index + 1
    path: str  # absolute path of the recording
    source: str  # as written in the manifest / relative to the input folder
    fs_raw: str  # manifest fs cell ('' = not given)
    subject: str
    movement: str
    gender: str  # M, F or ''
    extra: tuple[tuple[str, str], ...] = ()  # other manifest columns, passed through
    number: int = 0  # the recording's number in output names and the manifest; 0: index + 1

    @property
    def recording_number(self) -> int:
        return self.number or self.index + 1

    def fs(self) -> float | None:
        if not self.fs_raw.strip():
            return None
        try:
            return float(self.fs_raw)
        except ValueError:
            raise SemgError(
                f"manifest fs '{self.fs_raw}' is not a number",
                path=self.path,
                fix="write fs in Hz, e.g. 1000",
            ) from None


def discover(
    input_path: str | Path,
    ins: InputSettings,
    output: str | Path | None = None,
    scheme: FilenameScheme | None = None,
) -> tuple[list[Job], list[str]]:
    """Jobs in a fixed order, and the names of the pass-through manifest columns. Folder (or single
    recording) input takes labels from file names by `scheme` (inputs.labels_from_names); without a
    scheme, as for manifests, names carry none."""
    root = Path(input_path)
    if root.is_dir():
        return _utf8_names(_from_folder(root, ins, None if output is None else Path(output), scheme)), []
    if not root.is_file():
        raise SemgError("input not found", path=root, fix="pass input=<folder of recordings or manifest.csv>")
    header = _csv_header(root) if root.suffix.lower() == ".csv" else []
    if ins.manifest.path_col in header:
        return _from_manifest(root, ins)
    if "file" in header:  # the training side's manifest column: a manifest, not a recording
        raise SemgError(
            f"manifest has a 'file' column but no '{ins.manifest.path_col}' column",
            path=root,
            fix="pass inputs.manifest.path_col=file (or rename the column to path)",
        )
    m = ins.manifest
    labels = [c for c in header if c in (m.fs_col, m.subject_col, m.movement_col, m.gender_col)]
    if labels:  # label columns: a manifest whose path column has another name, not a recording
        raise SemgError(
            f"manifest has {', '.join(labels)} columns but no '{m.path_col}' column (columns: {', '.join(header)})",
            path=root,
            fix="pass inputs.manifest.path_col=<the column naming the recordings> (or rename it to path)",
        )
    if root.suffix.lower() in ins.extensions:
        return [_folder_job(0, root, root.name, ins, scheme)], []
    raise SemgError(
        f"input is neither a folder, a manifest with a '{ins.manifest.path_col}' column, nor a recording",
        path=root,
        fix="pass input=<folder> or input=<manifest.csv>",
    )


def drop_duplicates(jobs: list[Job], mine: list[Job], converted: dict[str, str]) -> tuple[list[Job], list[str]]:
    """`mine` without the sessions whose bytes equal an earlier job's (input order) or those of a source already
    converted into the output folder from another input (`converted`: sha256 -> source), and one line naming
    both files for each dropped. A copy under another name was converted twice without a word, and under
    another subject it puts one person on both sides of a split. Only files that share a size are hashed
    (unless the folder holds other sources): every shard decides alike, at the cost of a stat per file."""
    sources = {job.source for job in jobs}
    others = {digest: src for digest, src in converted.items() if src not in sources}
    size = {job.index: _size(job.path) for job in jobs}
    shared = Counter(size.values())
    first: dict[str, Job] = {}
    dropped: dict[int, str] = {}
    for job in jobs:
        if not others and shared[size[job.index]] < 2:
            continue
        try:
            digest = file_sha256(job.path)
        except OSError:
            continue  # read_recording says what is wrong with the file
        if digest in others:
            dropped[job.index] = f"{job.path}: same bytes as {others[digest]}, already converted into the output folder"
        elif digest in first:
            dropped[job.index] = f"{job.path}: same bytes as {first[digest].path} (converted once, as that file)"
        else:
            first[digest] = job
    return [j for j in mine if j.index not in dropped], [dropped[j.index] for j in mine if j.index in dropped]


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _csv_header(path: Path) -> list[str]:
    """Column names if path reads as a CSV with a header (else [], e.g. a recording of numbers)."""
    try:
        return csv_header(path)
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _utf8_names(jobs: list[Job]) -> list[Job]:
    """A file name that is not UTF-8 (a Latin-1 byte such as 0xE9 from an old system) cannot go into
    manifest.csv: refused before any work, not after every matrix is written."""
    for job in jobs:
        try:
            str(job.path).encode("utf-8")
        except UnicodeEncodeError:
            shown = str(job.path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise SemgError(
                "file name is not valid UTF-8: it cannot be written to manifest.csv",
                path=shown,
                fix="rename it in UTF-8 (e.g. convmv -f latin1 -t utf-8 --notest <file>), then rerun",
            ) from None
    return jobs


def _from_folder(root: Path, ins: InputSettings, output: Path | None, scheme: FilenameScheme | None) -> list[Job]:
    pattern = "**/*" if ins.recursive else "*"
    out_resolved = output.resolve() if output is not None else None
    files = []
    for p in root.glob(pattern):
        rel = p.relative_to(root)
        if not p.is_file() or p.suffix.lower() not in ins.extensions:
            continue
        if any(part.startswith(".") for part in rel.parts) or p.name.lower().startswith("manifest"):
            continue
        if out_resolved is not None and out_resolved in p.resolve().parents:
            continue  # never read our own outputs back as recordings
        files.append(rel)
    files.sort(key=lambda r: r.as_posix())
    if not files:
        raise SemgError(
            f"no recordings ({', '.join(ins.extensions)}) in the folder",
            path=root,
            fix="check input, or inputs.extensions / inputs.recursive",
        )
    return [_folder_job(i, root / rel, rel.as_posix(), ins, scheme) for i, rel in enumerate(files)]


def _folder_job(index: int, path: Path, source: str, ins: InputSettings, scheme: FilenameScheme | None) -> Job:
    labels = scheme.found(path.stem) if scheme is not None and ins.labels_from_names else {}
    subject = ""
    if ins.subject_regex:
        m = re.search(ins.subject_regex, source)
        if m:
            subject = m.group(1) if m.groups() else m.group(0)
    return Job(
        index=index,
        path=str(path.resolve()),
        source=source,
        fs_raw="",
        subject=subject,
        movement=labels.get("movement", ""),
        gender=labels.get("gender", ""),
    )


def _from_manifest(manifest: Path, ins: InputSettings) -> tuple[list[Job], list[str]]:
    cols = ins.manifest
    fields, rows = read_csv_rows(manifest)
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]
    if not rows:
        raise SemgError("manifest has no rows", path=manifest, fix="add one row per recording")
    standard = {cols.path_col, cols.subject_col, cols.movement_col, cols.gender_col}
    extra_cols = [c for c in fields if c and c not in standard]
    base = manifest.parent
    jobs = []
    first_row: dict[str, int] = {}  # resolved path -> line of its first row
    for i, row in enumerate(rows):
        src = row.get(cols.path_col, "")
        if not src:
            raise SemgError(
                f"row {i + 2} has an empty '{cols.path_col}'",
                path=manifest,
                fix="give every row a recording path",
            )
        resolved = str((base / src).resolve())
        if resolved in first_row:  # the training side refuses duplicates: never convert one twice
            raise SemgError(
                f"line {i + 2} lists {src} again (already on line {first_row[resolved]})",
                path=manifest,
                fix="remove the duplicate row",
            )
        first_row[resolved] = i + 2
        jobs.append(
            Job(
                index=i,
                path=resolved,
                source=src,
                fs_raw=row.get(cols.fs_col, ""),
                subject=row.get(cols.subject_col, ""),
                movement=row.get(cols.movement_col, ""),
                gender=gender_value(row.get(cols.gender_col, "")),
                extra=tuple((c, row.get(c, "")) for c in extra_cols),
            )
        )
    return jobs, extra_cols
