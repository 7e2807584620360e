"""The output manifest (manifest.csv): one row per .npz, for the training side's manifest label source.

A sharded run writes its own part (manifest.shard-003-of-008.csv); whichever shard finds every part
present writes the merged manifest.csv. Parts are written before the check, so the last shard to
finish always sees them all.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from semg_hht.errors import SemgError
from semg_hht.hht.convert import FIXED_COLUMNS
from semg_hht.hht.inputs import Job
from semg_hht.io import write_csv

MANIFEST = "manifest.csv"


def part_name(shard: int, num_shards: int) -> str:
    return f"manifest.shard-{shard:03d}-of-{num_shards:03d}.csv"


def write_manifest(out_dir: Path, rows: list[dict], columns: list[str], shard: int, num_shards: int) -> Path | None:
    """Write this run's rows; returns manifest.csv's path once it is complete, else None."""
    final = out_dir / MANIFEST
    check_output_manifest(out_dir)
    if num_shards == 1:
        return write_csv(final, *_keep_other_rows(out_dir, rows, columns))
    write_csv(out_dir / part_name(shard, num_shards), rows, columns)
    parts = [out_dir / part_name(i, num_shards) for i in range(num_shards)]
    if not all(p.exists() for p in parts):
        return None
    merged: list[dict] = []
    fields: list[str] = []
    for p in parts:
        with open(p, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            fields += [c for c in reader.fieldnames or [] if c not in fields]
            merged.extend(reader)
    merged.sort(key=lambda r: (_recording_key(r["recording"]), int(r["window"]), r["file"]))
    return write_csv(final, *_keep_other_rows(out_dir, merged, fields))


def numbered(jobs: list[Job], out_dir: Path) -> list[Job]:
    """Recording numbers unique in the folder, whatever input each recording came from. A recording the
    folder's manifest already lists (by source, its matrix still there) keeps its number, so a rerun
    reuses its matrices; a new one gets the next number after all of them. Two inputs converted into
    one folder both counted from 1, and recordings of different classes were scored as one recording.
    An empty folder numbers as before: index + 1."""
    path = out_dir / MANIFEST
    try:
        check_output_manifest(out_dir)
    except SemgError:  # not ours (or the input's own): the run's check names it, with the input in mind
        return jobs
    if not path.exists():
        return jobs
    with open(path, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (out_dir / (r.get("file") or "")).is_file()]
    known = {r["source"]: _recording_key(r["recording"])[0] for r in rows if r.get("source") and r.get("recording")}
    if not known:
        return jobs
    taken = max(known.values())
    out = []
    for job in jobs:
        if job.source in known:
            out.append(replace(job, number=known[job.source]))
        else:
            taken += 1
            out.append(replace(job, number=taken))
    return out


def _recording_key(recording: str) -> tuple[int, ...]:
    """6 -> (6,); a segment's 001_s012 -> (1, 12): numeric order either way."""
    return tuple(int(part.lstrip("s")) for part in recording.split("_"))


def _keep_other_rows(out_dir: Path, rows: list[dict], columns: list[str]) -> tuple[list[dict], list[str]]:
    """The previous manifest's rows for matrices this run did not make but which are still in the
    folder (an earlier run over other recordings): dropping them would hide those files from
    label_source=manifest. Rows of deleted files go."""
    path = out_dir / MANIFEST
    if not path.exists():
        return rows, columns
    ours = {r["file"] for r in rows}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        old_fields = list(reader.fieldnames or [])
        kept = [r for r in reader if r.get("file") not in ours and (out_dir / (r.get("file") or "")).is_file()]
    if not kept:
        return rows, columns
    return kept + rows, list(columns) + [c for c in old_fields if c not in columns]


def check_output_manifest(out_dir: Path, input_path: str | Path | None = None) -> None:
    """Never replace a manifest we did not write (e.g. output= pointing at the input folder).

    Ours starts with all of FIXED_COLUMNS in order; a training manifest (file,movement,...) also
    starts with 'file', so the first cell alone proves nothing."""
    path = out_dir / MANIFEST
    if input_path is not None and Path(input_path).resolve() == path.resolve():
        raise SemgError(
            "the input manifest would be replaced by the output manifest",
            path=path,
            fix="choose another output folder (not the input folder)",
        )
    if not path.exists():
        return
    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError):
        header = []
    if tuple(h.strip() for h in header[: len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        raise SemgError(
            "a manifest.csv not written by make_hht is in the output folder",
            path=path,
            fix="choose an empty output folder (not the input folder)",
        )
