"""Atomic, non-clobbering output: every file we write appears whole or not at all.

Writes go to a hidden temp file in the destination folder (same file system), are flushed to
disk, then renamed over the target with os.replace, which is atomic on POSIX. A crash, a full
disk or Ctrl-C leaves the previous file (or nothing), never half a file.

Only a process killed outright (kill -9, the OOM killer) leaves its temp file behind. Every temp file
is named by `_temp_prefix` (".<target>.semg-<pid>-<host>-<random>.tmp"), so `remove_dead_temp_files`
can tell ours from a user's file and a dead writer's from a live one's.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io as stdio
import json
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from semg_hht.errors import SemgError

log = logging.getLogger(__name__)


def refuse_overwrite(path: str | Path, overwrite: bool, *, key: str = "overwrite") -> None:
    """Raise a clear error instead of silently replacing a user's file, and before any work when
    the output could not be written at all (a folder, or a folder we may not write in)."""
    path = Path(path)
    if path.is_dir():
        raise SemgError("output is an existing folder, not a file", path=path, fix="name a file for the output")
    if path.exists() and not overwrite:
        raise SemgError(
            "output exists and would be overwritten",
            path=path,
            fix=f"pass {key}=true or choose another output",
        )
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is not None and (not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK)):
        raise SemgError(
            f"cannot write the output: {folder} is not a writable folder",
            path=path,
            fix="choose an output in a folder you can write to",
        )


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 600; a plain open() would give 644 at umask 022
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:  # a failed write names no file: name ours
            err.filename = str(path)
        raise


# mkstemp's random part is [a-z0-9_]; the writer's PID and host tag come before it (_temp_prefix)
_TEMP_NAME = re.compile(r"\..+\.semg-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[a-z0-9_]+\.tmp")


def _temp_prefix(path: Path) -> str:
    """The one temp-file naming scheme: the writer's PID says whether it is still writing, and the host
    tag keeps a PID of another machine (make_hht shards on a cluster sharing one folder) from being
    looked up here, where it means nothing."""
    return f".{path.name}.semg-{os.getpid()}-{_host_tag()}-"


def _host_tag() -> str:
    # a hash, not the name: a fixed 8 characters, whatever the host name, keeps temp names short
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _dead(pid: int) -> bool:
    """True only when no process has this PID."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # EPERM: alive; a PID out of range: not ours to judge, kept
        pass
    return False


def remove_dead_temp_files(folder: str | Path) -> int:
    """Remove the temp files of writers that died (kill -9) from ``folder`` and the folders directly in it
    (checkpoints/, .hydra/). Only names of _temp_prefix's scheme, written on this host, whose PID is gone:
    a user's file and a live writer's temp file (another make_hht shard's) are never touched. Logs one
    line when any were removed; returns how many."""
    folder = Path(folder)
    if os.name != "posix" or not folder.is_dir():  # os.kill(pid, 0) probes only on POSIX
        return 0
    host, removed = _host_tag(), 0
    for entry in _entries(folder):
        m = _TEMP_NAME.fullmatch(entry.name)
        if m is None or m["host"] != host or not _dead(int(m["pid"])):
            continue
        try:
            os.unlink(entry.path)
        except OSError:  # gone already (another command cleaning), or a folder we may not write: not our error
            continue
        removed += 1
    if removed:
        log.info("removed %d temp file(s) left by killed writers in %s", removed, folder)
    return removed


def _entries(folder: Path) -> Iterator[os.DirEntry]:
    """Regular files in folder and in its subfolders, one level down; links are not followed."""
    try:
        with os.scandir(folder) as top:
            entries = list(top)
    except OSError:
        return
    for entry in entries:
        if entry.is_file(follow_symlinks=False):
            yield entry
        elif entry.is_dir(follow_symlinks=False):
            try:
                with os.scandir(entry.path) as sub:
                    below = [e for e in sub if e.is_file(follow_symlinks=False)]
            except OSError:  # a subfolder we may not read holds nothing we wrote
                continue
            yield from below


def _umask() -> int:
    """The process umask (Linux reads it without changing it; elsewhere set-and-restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def save_npz(path: str | Path, **arrays: Any) -> Path:
    """np.savez_compressed, atomically (np.savez appends '.npz' to bare names, so pass a handle)."""
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lstrip(".") or "png"
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, bbox_inches="tight", **kwargs)
    plt.close(fig)
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv_rows(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """A manifest CSV as spreadsheets write them: UTF-8 with or without a BOM (Excel's "CSV UTF-8"),
    comma or semicolon separated (European Excel), spaces after the separator; header names stripped.
    Returns (column names, rows); a row wider than the header is an error naming its line."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    reader = csv.DictReader(stdio.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]), skipinitialspace=True)
    fields = [(h or "").strip() for h in reader.fieldnames or []]
    reader.fieldnames = fields
    rows = list(reader)
    check_row_widths(rows, path)
    return fields, rows


def csv_header(path: str | Path) -> list[str]:
    """The stripped column names of read_csv_rows, from the first line only."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
    return [h.strip() for h in next(csv.reader([first], delimiter=_delimiter(first)), [])]


def _delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


def check_row_widths(rows: Iterable[Mapping[Any, Any]], path: str | Path) -> None:
    """csv.DictReader rows: a row with more cells than the header keeps the surplus under None
    (and breaks whatever reads it next); say which line instead."""
    for line, row in enumerate(rows, start=2):
        if None in row:
            raise SemgError(
                f"line {line} has more fields than the header",
                path=path,
                fix="quote cells that contain the delimiter, or add the missing column names",
            )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
