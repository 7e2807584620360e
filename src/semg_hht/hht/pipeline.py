"""make_hht: convert a folder or manifest of raw sEMG recordings into Hilbert-Huang .npz matrices.

Parallel over recordings (processes, BLAS pinned to one thread each), atomic writes, finished
outputs skipped on rerun (so an interrupted run resumes), deterministic, shardable for clusters.
Per-recording failures are collected; the batch goes on, a summary is logged, and a SemgError at
the end makes the entry script exit non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from semg_hht.errors import SemgError
from semg_hht.hht import convert
from semg_hht.hht.convert import JobResult, convert_recording, output_columns, versions
from semg_hht.hht.inputs import Job, discover, drop_duplicates
from semg_hht.hht.manifest import check_output_manifest, numbered, write_manifest
from semg_hht.hht.memory import check_spectrum
from semg_hht.hht.record import read_record, write_record
from semg_hht.hht.settings import Settings, settings_from_cfg
from semg_hht.run_folder import holding

log = logging.getLogger("semg_hht.hht")
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cluster job cancelled or preempted), handled like Ctrl-C."""


class _WorkerStop(SystemExit):
    """SIGTERM inside a worker: unwinds (atomic_open removes its temp file), then the worker exits."""


def make_hht(cfg: Any) -> dict:
    """The conversion of conf/hht.yaml's settings. Returns a summary dict. make_hht.py runs
    semg_hht.conversion.convert: this, then preview.png (a figure, so drawn outside hht/)."""
    s = settings_from_cfg(cfg)
    return run(s)


def run(s: Settings) -> dict:
    started = time.perf_counter()
    input_path, out_dir = _absolute(s.input), Path(_absolute(s.output))
    if out_dir.exists() and Path(input_path).is_dir() and out_dir.samefile(input_path):
        raise SemgError("output is the input folder", path=out_dir, fix="choose another output folder")
    jobs, extra = discover(input_path, s.inputs, out_dir, s.filename_scheme)
    jobs = numbered(jobs, out_dir)
    mine = [j for j in jobs if j.index % s.num_shards == s.shard]
    _make_output_folder(out_dir)
    with holding(out_dir, f".make_hht-shard{s.shard}-of-{s.num_shards}.lock"):  # 3 runs at once kept 1 matrix
        return _run_claimed(s, input_path, out_dir, jobs, mine, extra, started)


def _run_claimed(s: Settings, input_path: str, out_dir: Path, jobs: list, mine: list, extra, started: float) -> dict:
    check_output_manifest(out_dir, input_path)
    read_record(out_dir)  # a conversion.yaml that is not ours is refused now, not replaced at the end
    log.info(
        "make_hht: %d of %d recordings (shard %d/%d) from %s -> %s",
        len(mine),
        len(jobs),
        s.shard,
        s.num_shards,
        input_path,
        out_dir,
    )

    converted = _refuse_other_conversions(out_dir, s.signature())
    duplicates: list[str] = []
    if s.segment.enabled:
        mine, duplicates = drop_duplicates(jobs, mine, converted)
        for line in duplicates:
            log.warning("duplicate session skipped: %s", line)
    try:
        with _sigterm_raises():
            results = _run_jobs(mine, s, out_dir)
    except KeyboardInterrupt as stop:
        done = len(list(out_dir.glob("*.npz")))
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        log.warning("%s: %d finished outputs are kept; rerun the same command to finish the rest", what, done)
        raise SystemExit(143 if isinstance(stop, Terminated) else 130) from None
    results.sort(key=lambda r: r.index)
    rows = [row for r in results for row in r.rows]
    if mine and not rows and not any(r.error for r in results):
        raise _nothing_made(len(mine), results, s)
    meta = [c for c in s.segment.meta_keys or () if c != "gender" and c not in extra] if s.segment.enabled else []
    columns = list(output_columns(s.segment.enabled, [*extra, *meta]))  # gender has its own column
    try:
        manifest = write_manifest(out_dir, rows, columns, s.shard, s.num_shards)
        record = None if manifest is None else write_record(out_dir, s)  # with the manifest: how it was made
    except OSError as err:
        raise SemgError(
            f"could not write {Path(err.filename).name if err.filename else 'the manifest'} ({err.strerror or err});"
            f" the {sum(r.written for r in results)} matrices written are kept",
            path=err.filename or out_dir / "manifest.csv",
            fix="free disk space, then rerun the same command (finished outputs are skipped)",
        ) from None
    _warn_clipped_band(results, s)

    failed = [r for r in results if r.error]
    summary = {
        "recordings": len(mine),
        "recordings_total": len(jobs),
        "written": sum(r.written for r in results),
        "skipped": sum(r.skipped for r in results),
        "failed": [{"source": r.source, "error": r.error} for r in failed],
        "output": str(out_dir),
        "manifest": None if manifest is None else str(manifest),
        "record": None if record is None else str(record),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if s.segment.enabled:
        summary["segments"] = sum(r.segments for r in results)
        summary["segments_skipped"] = [line for r in results for line in r.segments_skipped]
        summary["warnings"] = [line for r in results for line in r.warnings]
        summary["duplicates"] = duplicates
        log.info(
            "make_hht: %d segments done (written or already there), %d skipped (listed above)",
            summary["segments"],
            len(summary["segments_skipped"]),
        )
    log.info(
        "make_hht: %d written, %d already done (skipped), %d of %d recordings failed, %.1f s; manifest: %s",
        summary["written"],
        summary["skipped"],
        len(failed),
        len(mine),
        summary["seconds"],
        summary["manifest"] or "waiting for the other shards",
    )
    for r in failed:
        log.error("failed: %s", r.error)
    if failed:
        others = "none was converted" if len(failed) == len(mine) else "the others were converted"
        raise SemgError(
            f"{len(failed)} of {len(mine)} recordings failed (listed above); {others}",
            fix="fix or drop those recordings and rerun: finished outputs are kept and skipped",
        )
    return summary


def _refuse_other_conversions(out_dir: Path, signature: str) -> dict[str, str]:
    """A matrix is compared with the settings only when this run would write its name again; settings
    that change the names (layout.stack_channels, window.*) put a second conversion beside the first in
    silence. So every matrix already in the folder must carry this run's settings signature. Returns the
    sources converted there by content (sha256 -> source), for drop_duplicates."""
    import numpy as np

    converted = {}
    for path in sorted(out_dir.glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as z:
                theirs = str(z["settings_signature"]) if "settings_signature" in z.files else signature
                if "source_sha256" in z.files and "source" in z.files:
                    converted.setdefault(str(z["source_sha256"]), str(z["source"]))
        except Exception:  # unreadable: named by the per-matrix check if this run writes its name
            continue
        if theirs != signature:
            raise SemgError(
                f"the folder holds matrices of another conversion ({path.name}: settings {theirs}, this run's "
                f"{signature}): converting here would mix two conversions",
                path=out_dir,
                fix="choose another output folder, or convert with the settings those matrices were made with",
            )
    return converted


def _nothing_made(n: int, results: list[JobResult], s: Settings) -> SemgError:
    """A run that converted recordings into no matrix at all (a session that is all rest, duration
    limits that skip every segment) is an error, not "0 written" and a header-only manifest."""
    if s.segment.enabled:
        skipped = sum(len(r.segments_skipped) for r in results)
        why = f"{skipped} segments skipped (listed above)" if skipped else "no movement segment found (all rest?)"
        return SemgError(
            f"no matrix made from {n} recording(s): {why}; no manifest written",
            path=s.output,
            fix="check segment.min_duration_s / max_duration_s and the label or marker settings (segment.*)",
        )
    return SemgError(f"no matrix made from {n} recording(s); no manifest written", path=s.output)


def _make_output_folder(out_dir: Path) -> None:
    """Before any conversion: an output that cannot take files fails now, not after an hour."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SemgError("output is an existing file, not a folder", path=out_dir, fix="pass output=<folder>")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SemgError(
            f"cannot create the output folder ({err.strerror or err})", path=out_dir, fix="choose another output"
        ) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise SemgError("output folder is not writable", path=out_dir, fix="choose a folder you can write to")


def worker_count(requested: int) -> int:
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))  # respects SLURM/cgroup CPU limits
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run_jobs(jobs: list[Job], s: Settings, out_dir: Path) -> list[JobResult]:
    signature, vers = s.signature(), versions()
    workers = min(worker_count(s.workers), max(len(jobs), 1))
    if jobs:  # before any worker starts: a matrix of spectrum.size that cannot fit in memory
        check_spectrum(s.spectrum.size, len(s.reader.channels or ()) if s.layout.stack_channels else 1,
                       s.max_memory_fraction, workers)  # fmt: skip
    results: list[JobResult] = []
    bar = _bar(s, len(jobs), "make_hht", "file" if s.segment.enabled else "rec", 0)
    # Long sessions: a second bar counts segments, as the workers find and finish them.
    segments = _bar(s, 0, "segments", "seg", 1) if s.segment.enabled and s.progress else None
    with bar, logging_redirect_tqdm(), contextlib.ExitStack() as stack:
        if segments is not None:
            stack.enter_context(segments)
        if workers <= 1:
            convert.set_progress(None if segments is None else lambda event: _segment_event(segments, event))
            try:
                for job in jobs:
                    results.append(_report(convert_recording(job, s, str(out_dir), signature, vers), bar))
            finally:
                convert.set_progress(None)
            return results
        ctx = _mp_context()
        events = ctx.SimpleQueue() if segments is not None else None
        with _single_threaded_env():  # processes are spawned lazily, on submit: keep it for the pool's life
            pool = ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_init_worker, initargs=(events, os.getpid())
            )
            try:
                futures = {pool.submit(_convert_in_worker, job, s, str(out_dir), signature, vers): job for job in jobs}
                for fut in _completed(futures, events, segments):
                    results.append(_report(_result(fut, futures[fut]), bar))
            except BaseException:
                _stop_workers(pool)
                raise
            pool.shutdown(wait=True)
    return results


_converting = False  # in a worker: a recording (and maybe its temp file) is in progress


def _convert_in_worker(job: Job, s: Settings, out_dir: str, signature: str, vers: dict) -> JobResult:
    global _converting
    _converting = True
    try:
        return convert_recording(job, s, out_dir, signature, vers)
    except _WorkerStop:
        os._exit(143)  # the pool would otherwise catch it and start the next recording
    finally:
        _converting = False


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop now: the pool's own shutdown lets running and already queued recordings finish (and
    keep writing after the parent is gone). SIGTERM makes each worker drop its temp file and exit."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in processes:
        p.join(timeout=10)
        if p.is_alive():  # pragma: no cover - stuck in C code
            p.kill()
    # wait=True joins the pool's manager thread (it exits at once, its workers gone): left running, it
    # closes its wake-up pipe while the interpreter's exit hook writes to it (a CPython 3.11 race that
    # printed "OSError: Bad file descriptor" with a traceback after the one-line message)
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM -> Terminated in the main thread, so workers are stopped and the exit is non-zero."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _result(fut, job: Job) -> JobResult:
    try:
        return fut.result()
    except BrokenProcessPool:
        return JobResult(
            job.index,
            job.source,
            error=f"{job.path}: worker process died (killed or out of memory?) -> rerun with fewer workers",
        )


def _report(res: JobResult, bar: tqdm) -> JobResult:
    if res.error:
        log.warning("failed: %s", res.error)
    for line in res.warnings:
        log.warning("%s", line)
    for line in res.segments_skipped:
        log.warning("segment skipped: %s", line)
    bar.update(1)
    return res


def _bar(s: Settings, total: int, desc: str, unit: str, position: int) -> tqdm:
    return tqdm(
        total=total,
        disable=not s.progress,
        unit=unit,
        desc=desc,
        position=position,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 30,  # log files / SLURM: a line every 30 s
    )


def _segment_event(bar: tqdm, event: tuple[str, int]) -> None:
    kind, n = event
    if kind == "found":  # a session's segments are known once it is read: the total grows
        bar.total += n
        bar.refresh()
    else:
        bar.update(n)


def _completed(futures: dict, events, segments: tqdm | None) -> Iterator:
    """as_completed, updating the segment bar from the workers' events while waiting."""
    if events is None:
        yield from as_completed(futures)
        return
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        while not events.empty():
            _segment_event(segments, events.get())
        yield from done


def _warn_clipped_band(results: list[JobResult], s: Settings) -> None:
    """Once per run, not per file: the band-pass asked for does not fit below Nyquist."""
    clipped = sorted({r.clipped for r in results if r.clipped})
    if not clipped:
        return
    low, high = s.filter.bandpass
    used = ", ".join(f"{lo:g}-{hi:g} Hz at fs={fs:g} Hz" for lo, hi, fs in clipped)
    log.warning(
        "filter.bandpass %g-%g Hz is above Nyquist for %d recording(s): used %s "
        "(filter.max_nyquist_fraction=%g) -> set filter.bandpass below fs/2 to choose the band yourself",
        low,
        high,
        sum(1 for r in results if r.clipped),
        used,
        s.filter.max_nyquist_fraction,
    )


def _mp_context():
    """forkserver where available: workers fork from a clean, single-threaded server that imported
    the converter once (fast start, no inherited threads or torch state); spawn elsewhere.
    As with any multiprocessing, a script calling make_hht needs `if __name__ == "__main__":`."""
    try:
        ctx = get_context("forkserver")
    except ValueError:  # pragma: no cover - Windows
        return get_context("spawn")
    ctx.set_forkserver_preload(["semg_hht.hht.convert"])
    return ctx


PARENT_POLL_S = 0.5  # how often a worker checks that make_hht is still there


def _init_worker(events, parent_pid: int | None = None) -> None:
    """Worker initializer: segment progress goes to the parent through `events` (None: no bar)."""
    _pin_threads()
    if events is not None:
        convert.set_progress(events.put)
    if parent_pid is not None:
        threading.Thread(target=_stop_when_gone, args=(parent_pid,), daemon=True, name="parent-watch").start()


def _stop_when_gone(parent_pid: int) -> None:
    """kill -9 of make_hht (what the OOM killer does) runs no handler in it: its workers would convert
    the rest of their queue with nobody to write the manifest. The parent of a forkserver worker is the
    forkserver, so no parent-death signal would fire: watch make_hht's own pid, then stop as on SIGTERM
    (the recording in progress drops its temp file)."""
    while _alive(parent_pid):
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _alive(pid: int) -> bool:
    """pid exists and is not a zombie (a killed parent stays one until its own parent reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - pid reused by another user's process
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): os.kill's answer stands
        return True
    return state not in ("Z", "X")


def _worker_stop(signum, frame):
    """Unwind a recording in progress (its temp file is dropped on the way out); a worker that is
    still starting up or waiting for work has nothing to clean and exits without a traceback."""
    if _converting:
        raise _WorkerStop(143)
    os._exit(143)


def _pin_threads() -> None:
    """One BLAS/OpenMP thread per worker process (we parallelise over recordings). Also signals:
    Ctrl-C is the parent's to handle (it stops the workers), SIGTERM stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_stop)
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - env vars still apply to libraries loaded later
        pass


@contextlib.contextmanager
def _single_threaded_env() -> Iterator[None]:
    """Children start with BLAS threads = 1 (set before numpy loads there); parent env restored."""
    old = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for var, value in old.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _absolute(path: str) -> str:
    """Relative paths are relative to where the command was started (Hydra may change cwd)."""
    try:
        from hydra.utils import to_absolute_path

        return to_absolute_path(path)
    except Exception:  # pragma: no cover - hydra missing
        return str(Path(path).resolve())
