"""A run folder belongs to one run. Two train.py started in the same second once shared a folder (one
lost its last.ckpt and metrics.json), a rerun into a finished run's folder replaced its files, and a
refused fit_svm.py rewrote the old run's .hydra/ record. So, before any work:

- `claim`: an advisory lock (flock on <folder>/.lock, removed when the run ends; the kernel drops it
  when the process dies, even on kill -9); a second process gets one line naming the PID that holds it.
- `refuse_earlier_run`: a folder holding a finished or interrupted train.py run is written again only
  to resume it (ckpt_path=) or with overwrite=true.
- `write_record`: the composed config, Hydra's settings and the overrides (.hydra/), written by us once
  the checks passed (conf/hydra sets output_subdir: null), so a refused command leaves the folder as it was.
- `checking`: the command's checks run holding the folder, with what they log held in memory: a refused
  command writes nothing into a folder that was there before it (its log file keeps its bytes; Hydra opens
  the log file only at its first line, conf/hydra job_logging delay), and leaves no lock file.
- Once a command holds its folder (`checking`: after its checks passed; `holding`), the temp files that
  writers killed outright left there are removed (semg_hht.io.remove_dead_temp_files: only ours, only dead
  writers', so the other shards of a make_hht run sharing the folder keep theirs).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from semg_hht.errors import SemgError

RECORD = ".hydra"  # where Hydra itself would write it: reporting/ and evaluation/ read jobs' records there
_held: dict[Path, int] = {}  # lock file -> its open descriptor (the lock), in this process


def claim(folder: Path, lock: str = ".lock") -> None:
    """Hold <folder>/<lock> until `release` or the end of this process (make_hht: one lock per shard, so
    the shards of one conversion share their output folder and two runs of one shard do not)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    path = folder / lock
    if path in _held:  # this process holds it already (a second call in one Python session)
        return
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SemgError(
                f"in use by PID {holder}: another run is writing this folder",
                path=folder,
                fix="wait for it to finish, or pass hydra.run.dir=<another folder>",
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder released and removed it between our open and flock: take the new one
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[path] = fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def release(folder: Path, lock: str = ".lock") -> None:
    """Remove the lock file, then drop the lock (closing the descriptor): the folder keeps no trace."""
    fd = _held.pop(folder / lock, None)
    if fd is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / lock)
        os.close(fd)


@contextlib.contextmanager
def holding(folder: Path, lock: str = ".lock") -> Iterator[None]:
    claim(folder, lock)
    try:
        _clean(folder)
        yield
    finally:
        release(folder, lock)


def _clean(folder: Path) -> None:
    from semg_hht.io import remove_dead_temp_files  # numpy: imported once the checks passed, as write_record

    remove_dead_temp_files(folder)


@contextlib.contextmanager
def checking(folder: Path | None) -> Iterator[None]:
    """Claim `folder` (None: no folder to hold) and run the command's checks; the caller releases it after
    the work. What is logged meanwhile reaches the folder's log file once the checks pass. Refused (any
    exception): the folder is released, and the log records (and the error line the caller writes next)
    go to the log file only if the folder holds nothing but empty log files, i.e. Hydra made it for
    this command; a folder that was there before (another run's, or one in use) is left byte for byte."""
    if folder is None:
        yield
        return
    root, folder = logging.getLogger(), Path(os.path.abspath(folder))
    logs = [h for h in root.handlers if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == folder]
    made_for_us = _only_empty_logs(folder, logs)
    held = logging.handlers.BufferingHandler(sys.maxsize)  # flushes (discards) only at sys.maxsize records
    for handler in logs:
        root.removeHandler(handler)
    root.addHandler(held)
    passed = False
    try:
        claim(folder)
        try:
            yield
            _clean(folder)  # not before: a refused command leaves the folder as it was
        except BaseException:
            release(folder)
            raise
        passed = True
    finally:
        root.removeHandler(held)
        keep = passed or (made_for_us and _only_empty_logs(folder, logs))  # still: no other run came in
        for handler in logs:
            if keep:
                root.addHandler(handler)
                for record in held.buffer:
                    handler.handle(record)
            else:
                handler.close()


def _only_empty_logs(folder: Path, logs: list[logging.FileHandler]) -> bool:
    names = {Path(h.baseFilename).name for h in logs}
    if not folder.is_dir():
        return True
    return all(p.name in names and p.is_file() and p.stat().st_size == 0 for p in folder.iterdir())


def refuse_earlier_run(folder: Path, resuming: bool, overwrite: bool) -> None:
    """train.py: metrics.json (finished) or checkpoints (interrupted) of another run are never replaced
    without a word."""
    if resuming or overwrite:
        return
    earlier = [p.name for p in (folder / "metrics.json", folder / "checkpoints") if p.exists() and _non_empty(p)]
    if earlier:
        raise SemgError(
            f"this folder holds an earlier run ({', '.join(earlier)})",
            path=folder,
            fix=f"resume it with ckpt_path={folder / 'checkpoints' / 'last.ckpt'}, pass overwrite=true to replace it, "
            "or choose another hydra.run.dir",
        )


def _non_empty(path: Path) -> bool:
    return path.is_file() or any(path.iterdir())


def write_record(folder: Path, cfg: DictConfig, hydra_cfg: Any) -> None:
    """What Hydra writes at a job's start (config.yaml, hydra.yaml, overrides.yaml), atomically."""
    from semg_hht.io import write_text

    record = folder / RECORD
    write_text(record / "config.yaml", OmegaConf.to_yaml(cfg))
    write_text(record / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra_cfg}))
    write_text(record / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.overrides.task))
