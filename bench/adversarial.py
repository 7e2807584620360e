"""Issue 32's adversarial list, rerun as a new user would: every case that failed there (data loss,
tracebacks, orphans, runs that made nothing, misleading messages), each on small synthetic data made in
a temp folder and the real entry scripts run as commands (make_hht.py, train.py with a tiny model,
fit_svm.py), judged by what is on disk and on the terminal afterwards.

    python -m bench.adversarial [--only TEXT] [--keep]

Each case is held, or one of: data-loss, traceback, orphan, silent-empty, misleading (a case that does
not hold counts as its issue's kind; a traceback anywhere counts as a traceback). Prints one table and
the tally; exits 1 if any case did not hold. --only: the cases whose name contains TEXT. --keep: leave
the temp folder and print where it is. Three cases are their existing tests, rerun with pytest (a flaky
test's case, and the scale-out ones: make_hht through submitit, train.py DDP on CPU). About 4 minutes on
2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from bench import common
from semg_hht.hht.memory import available_bytes
from semg_hht.synth.raw import SynthConfig, generate
from semg_hht.synth.sessions import SessionConfig, generate_sessions
from tests.helpers import FAST_HHT, ROOT, TINY, emg_like, last_line, recordings, session_alive
from tests.helpers import script as _script

OUTCOMES = ("held", "data-loss", "traceback", "orphan", "silent-empty", "misleading")
HELD, LOSS, TRACEBACK, ORPHAN, EMPTY, MISLEADING = OUTCOMES
HHT = [*FAST_HHT, "progress=false", "workers=1"]  # make_hht on quick settings (tests/helpers.py)
TRAIN = [*TINY, "trainer.max_epochs=1"]  # train.py on a tiny model (tests/helpers.py)
Run = subprocess.CompletedProcess
WIDTH = 130  # characters of evidence shown per case


@dataclass
class Case:
    kind: str  # the heading: what a case that does not hold counts as
    name: str
    check: Callable[[World, Path], tuple[bool, str]]  # (held, what shows it)


class World:
    """One temp folder; what several cases share (matrices, a finished train.py and fit_svm.py run) is
    made on first use. Every command a case runs is kept, so a traceback anywhere is seen."""

    def __init__(self, tmp: Path):
        self.tmp, self.outputs = tmp, []

    def script(self, name: str, *args: str, cwd: Path) -> Run:
        result = _script(name, *args, cwd=cwd, timeout=600)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def popen(self, name: str, *args: str, cwd: Path, **kwargs) -> subprocess.Popen:
        out = open(cwd / f".out_{len(self.outputs)}_{time.monotonic_ns()}.txt", "w+")  # noqa: SIM115 - read in wait
        proc = subprocess.Popen([sys.executable, str(ROOT / name), *args], cwd=cwd, stdout=out, stderr=out, **kwargs)
        proc.out = out  # type: ignore[attr-defined]
        return proc

    def wait(self, proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
        code = proc.wait(timeout=timeout)
        proc.out.seek(0)  # type: ignore[attr-defined]
        text = proc.out.read()  # type: ignore[attr-defined]
        proc.out.close()  # type: ignore[attr-defined]
        self.outputs.append(text)
        return code, text

    @cached_property
    def matrices(self) -> Path:
        return common.synthetic_set(self.tmp / "matrices", n=36, size=32)  # 4 people x 3 movements x 3, 32 x 32

    @cached_property
    def trained(self) -> Path:
        """A finished train.py run (one epoch), its data cache in <tmp>/cache."""
        run = self.tmp / "trained"
        r = self.script("train.py", *TRAIN, *self.data, f"data.cache_dir={self.tmp / 'cache'}", f"hydra.run.dir={run}",
                        cwd=self.tmp)  # fmt: skip
        if r.returncode != 0:
            raise SystemExit(f"train.py failed, no case can use its run:\n{r.stderr[-2000:]}")
        return run

    @cached_property
    def svm(self) -> Path:
        run = self.tmp / "svm"
        r = self.script("fit_svm.py", f"ckpt={self.trained / 'checkpoints' / 'best.ckpt'}", f"hydra.run.dir={run}",
                        cwd=self.tmp)  # fmt: skip
        if r.returncode != 0:
            raise SystemExit(f"fit_svm.py failed, no case can use its run:\n{r.stderr[-2000:]}")
        return run

    @property
    def data(self) -> list[str]:
        return [f"paths.data_dir={self.matrices}"]


# ---------------------------------------------------------------- what the cases look at


def refused(r: Run, *says: str, code: int = 1) -> tuple[bool, str]:
    """Stopped with exit `code` and one 'error:' line, the last on stderr, saying each of `says`."""
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    line = last_line(r)
    ok = r.returncode == code and errors == [line] and all(s in line for s in says)
    return ok, f"exit {r.returncode}: {line}" if r.returncode else "exit 0"


def said(r: Run, *says: str, absent: tuple[str, ...] = (), code: int = 1) -> tuple[bool, str]:
    """Exit `code`, each of `says` somewhere in the output (a logged line), none of `absent`."""
    text = r.stdout + r.stderr
    ok = r.returncode == code and all(s in text for s in says) and not any(s in text for s in absent)
    shown = next((ln for ln in text.splitlines() if says and says[0] in ln), last_line(r))
    return ok, f"exit {r.returncode}: {_message(shown)}"


def _message(line: str) -> str:
    return re.sub(r"^\[[^]]*\]\[[^]]*\]\[\w+\] - ", "", line)  # a log line without its time and logger


def files(folder: Path) -> dict[str, bytes]:
    """Every file under folder, byte for byte."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest(folder: Path) -> list[dict]:
    if not (folder / "manifest.csv").exists():
        return []
    with open(folder / "manifest.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def written(log: str) -> int:
    match = re.search(r"make_hht: (\d+) written", log)
    return int(match.group(1)) if match else 0


def hht(w: World, t: Path, source: Path, *extra: str, out: str = "out") -> Run:
    return w.script("make_hht.py", f"input={source}", f"output={t / out}", *HHT, *extra, cwd=t)


# ---------------------------------------------------------------- data loss or overwrite


def three_make_hht_at_once(w: World, t: Path) -> tuple[bool, str]:
    """Three runs at once into one output folder, their inputs mapping to the same file names (recordings
    long enough that the runs overlap)."""
    names = ["S1_M_full.csv", "S1_M_half.csv", "S2_F_full.csv"]
    inputs = [recordings(t / f"raw{i}", names, seed=10 * i, samples=20000) for i in range(3)]
    procs = [w.popen("make_hht.py", f"input={p}", f"output={t / 'out'}", *HHT, cwd=t) for p in inputs]
    ran = [w.wait(p) for p in procs]
    rows, npz = manifest(t / "out"), sorted(p.name for p in (t / "out").glob("*.npz"))
    done = sum(written(text) for code, text in ran if code == 0)
    why = [_refusal(text) for code, text in ran if code != 0]
    kept = None not in why and done == len(npz) == len(rows) and sorted(r["file"] for r in rows) == npz
    refusals = ", ".join(f"{n} {reason}" for reason, n in Counter(why).items()) or "none"
    return kept, f"exits {[code for code, _ in ran]}; refused: {refusals}; {done} written = {len(npz)} matrices = " + (
        f"{len(rows)} manifest rows"
    )


def _refusal(text: str) -> str | None:
    """Why a make_hht run was refused, when it is one of the two ways that lose nothing."""
    return (
        "in use by PID" if "in use by PID" in text else "other content" if "made from other content" in text else None
    )


def _train_folder_whole(run: Path) -> bool:
    ckpts = {p.name for p in (run / "checkpoints").glob("*.ckpt")} if (run / "checkpoints").is_dir() else set()
    whole = (run / "metrics.json").is_file() and {"best.ckpt", "last.ckpt"} <= ckpts
    return whole and not any("-v" in c for c in ckpts)  # best-v1.ckpt: two runs' checkpoints in one folder


def two_trains_default_folder(w: World, t: Path) -> tuple[bool, str]:
    procs = [w.popen("train.py", *TRAIN, *w.data, cwd=t) for _ in range(2)]
    codes = [w.wait(p)[0] for p in procs]
    folders = sorted((t / "logs" / "train" / "runs").iterdir()) if (t / "logs").exists() else []
    ok = codes == [0, 0] and len(folders) == 2 and all(_train_folder_whole(f) for f in folders)
    return ok, f"exits {codes}; folders {', '.join(f.name for f in folders)}, each with best/last.ckpt + metrics.json"


def two_trains_one_run_dir(w: World, t: Path) -> tuple[bool, str]:
    procs = [w.popen("train.py", *TRAIN, *w.data, f"hydra.run.dir={t / 'run'}", cwd=t) for _ in range(2)]
    ran = [w.wait(p) for p in procs]
    codes = sorted(code for code, _ in ran)
    refusal = next((_message(text.strip().splitlines()[-1]) for code, text in ran if code), "")
    told = re.search(r"in use by PID|holds an earlier run", refusal) is not None
    return codes == [0, 1] and told and _train_folder_whole(t / "run"), f"exits {codes}; {refusal}"


def _unchanged(before: dict[str, bytes], folder: Path) -> str:
    after = files(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return f"changed: {', '.join(changed)}" if changed else f"all {len(before)} files byte for byte"


def train_into_finished_run(w: World, t: Path) -> tuple[bool, str]:
    shutil.copytree(w.trained, t / "run")
    before = files(t / "run")
    ok, line = refused(w.script("train.py", *TRAIN, *w.data, f"hydra.run.dir={t / 'run'}", cwd=t),
                       "holds an earlier run")  # fmt: skip
    kept = _unchanged(before, t / "run")
    return ok and kept.startswith("all"), f"{kept}; {line}"


def refused_fit_svm(w: World, t: Path) -> tuple[bool, str]:
    shutil.copytree(w.svm, t / "svm")
    before = files(t / "svm")
    r = w.script("fit_svm.py", f"ckpt={w.trained / 'checkpoints' / 'best.ckpt'}", f"hydra.run.dir={t / 'svm'}", cwd=t)
    ok, line = refused(r, "svm.skops: output exists")
    kept = _unchanged(before, t / "svm")  # .hydra/ and fit_svm.log included
    return ok and kept.startswith("all"), f"{kept} (.hydra/, fit_svm.log); {line}"


def users_preview_png(w: World, t: Path) -> tuple[bool, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (t / "out").mkdir()
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(t / "out" / "preview.png")
    plt.close(fig)
    before = (t / "out" / "preview.png").read_bytes()
    r = hht(w, t, recordings(t / "raw", ["S1_M_full.csv"]))
    ok, line = said(r, "is not a make_hht preview: left as it is", code=0)
    same = (t / "out" / "preview.png").read_bytes() == before
    return ok and same, ("kept byte for byte; " if same else "replaced; ") + line


# ---------------------------------------------------------------- tracebacks


def latin1_file_name(w: World, t: Path) -> tuple[bool, str]:
    raw = recordings(t / "raw", ["S1_M_full.csv"])
    shutil.copy(raw / "S1_M_full.csv", os.path.join(os.fsencode(raw), b"S1_M_caf\xe9.csv"))
    ok, line = refused(hht(w, t, raw), "file name is not valid UTF-8")
    made = len(list((t / "out").glob("*.npz"))) if (t / "out").exists() else 0
    return ok and made == 0, f"{made} matrices written; {line}"


def logger_null(w: World, t: Path) -> tuple[bool, str]:
    return refused(w.script("train.py", *TRAIN, *w.data, "logger=null", cwd=t), "~logger")


def damaged_data_cache(w: World, t: Path) -> tuple[bool, str]:
    """The data cache's .npy overwritten in place (same size, NaN payload), then train.py again."""
    w.trained  # noqa: B018 - its run built the cache
    npy = next((w.tmp / "cache").glob("*.npy"))
    cached = np.load(npy, mmap_mode="r")
    nan = np.full(cached.shape, np.nan, dtype=cached.dtype).tobytes()
    size = npy.stat().st_size
    with open(npy, "r+b") as f:  # the header stays, every value after it is NaN
        f.seek(size - len(nan))
        f.write(nan)
    r = w.script("train.py", *TRAIN, *w.data, f"data.cache_dir={w.tmp / 'cache'}", f"hydra.run.dir={t / 'run'}", cwd=t)
    ok, line = said(r, "is damaged", "rebuilding it", code=0)
    metrics = json.loads((t / "run" / "metrics.json").read_text()) if (t / "run" / "metrics.json").exists() else {}
    finite = np.isfinite(metrics.get("val/acc", np.nan))
    warned = "warned 'data cache <.npy> is damaged', rebuilt it" if ok else line
    return ok and finite, f"{warned}; exit {r.returncode}, val/acc {metrics.get('val/acc')}"


# ---------------------------------------------------------------- exit 0 having made nothing


def _sessions(t: Path) -> Path:
    cfg = SessionConfig(subjects=1, movements=2, reps=2, channels=4, fs=200.0, move_s=1.5, rest_s=1.0, fmt="npz")
    generate_sessions(t / "raw", cfg)
    return t / "raw" / "manifest.csv"


def _nothing_made(w: World, t: Path, *extra: str, says: str, before: Callable[[Path], None] | None = None):
    source = _sessions(t)
    if before is not None:
        before(t / "raw")
    r = w.script("make_hht.py", f"input={source}", f"output={t / 'out'}", "preset=ninapro", "spectrum.size=16",
                 "emd.max_imf=4", "progress=false", *extra, cwd=t)  # fmt: skip
    ok, line = refused(r, "no matrix made", says)
    return ok and not (t / "out" / "manifest.csv").exists(), line


def _all_rest(raw: Path) -> None:
    for path in raw.glob("*.npz"):
        with np.load(path) as z:
            v = dict(z)
        v["restimulus"][:] = 0
        v["rerepetition"][:] = 0
        np.savez(path, **v)


def session_all_rest(w: World, t: Path) -> tuple[bool, str]:
    return _nothing_made(w, t, says="no movement segment found", before=_all_rest)


def min_duration_skips_all(w: World, t: Path) -> tuple[bool, str]:
    return _nothing_made(w, t, "segment.min_duration_s=5", says="segments skipped")


def max_duration_skips_all(w: World, t: Path) -> tuple[bool, str]:
    return _nothing_made(w, t, "segment.max_duration_s=0.2", says="segments skipped")


# ---------------------------------------------------------------- orphans


@dataclass
class Killed:
    alive: list[str]
    kept: int
    later: int


def _kill_9(w: World) -> Killed:
    """make_hht with 2 workers, kill -9 of the parent (what the OOM killer does) at its first matrix."""
    if not hasattr(w, "_killed"):
        t = w.tmp / "kill_9"
        generate(t / "raw", SynthConfig(subjects=2, reps=10, duration_s=6.0, fs=1000.0, channels=2, seed=1))
        proc = w.popen("make_hht.py", f"input={t / 'raw' / 'manifest.csv'}", f"output={t / 'out'}", "workers=2",
                       "progress=false", cwd=t, start_new_session=True)  # fmt: skip
        deadline = time.time() + 120
        while not list((t / "out").glob("*.npz")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.kill()
        w.wait(proc, timeout=30)
        time.sleep(4)  # the workers' watch polls every 0.5 s; a recording in progress unwinds
        alive, kept = session_alive(proc.pid), len(list((t / "out").glob("*.npz")))
        time.sleep(2)
        w._killed = Killed(alive, kept, len(list((t / "out").glob("*.npz"))))  # type: ignore[attr-defined]
    return w._killed  # type: ignore[attr-defined]


def kill_9_processes_left(w: World, t: Path) -> tuple[bool, str]:
    k = _kill_9(w)
    first = f": {k.alive[0]}" if k.alive else ""
    return not k.alive, f"{len(k.alive)} processes of its session alive 4 s later{first}"


def kill_9_still_writing(w: World, t: Path) -> tuple[bool, str]:
    k = _kill_9(w)
    return k.later == k.kept and k.kept < 120, f"{k.kept} of 120 matrices at 4 s, {k.later} at 6 s (the run of #13)"


# ---------------------------------------------------------------- misleading or silently wrong


def truncated_npz(w: World, t: Path) -> tuple[bool, str]:
    (t / "raw").mkdir()
    path = t / "raw" / "S1_M_full.npz"
    np.savez(path, signal=np.random.default_rng(0).standard_normal((2000, 2)), fs=1000.0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return said(hht(w, t, t / "raw"), "truncated or damaged", absent=("BadZipFile", "unexpected"))


def npy_header_1e11(w: World, t: Path) -> tuple[bool, str]:
    (t / "raw").mkdir()
    with open(t / "raw" / "S1_M_full.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 1)})
        f.write(np.zeros(3000).tobytes())
    return said(hht(w, t, t / "raw"), "header claims shape (100000000000, 1)", absent=("MemoryError", "unexpected"))


def spectrum_size_20000(w: World, t: Path) -> tuple[bool, str]:
    """As on a machine with 4 GB free: max_memory_fraction makes the bound 2 GB of what is available here
    (with 22 GB free, 20000 fits the bound, converts in 26 s and is a memory test of the machine, not a
    refusal; its preview.png was then the OOM: the next case)."""
    fraction = 2e9 / (available_bytes() or 4e9)
    r = hht(
        w, t, recordings(t / "raw", ["S1_M_full.csv"]), "spectrum.size=20000", f"max_memory_fraction={fraction:.4f}"
    )
    ok, line = refused(r, "spectrum.size=20000 needs about")
    return ok and not list(t.glob("out/*.npz")), line


PEAK = (  # run a command, then print its peak resident memory (kB) on stderr
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print('peak_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def _peak_gb(w: World, t: Path, *args: str) -> tuple[int, float]:
    cmd = [sys.executable, "-c", PEAK, sys.executable, str(ROOT / "make_hht.py"), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=t, timeout=600)
    w.outputs.append(r.stdout + r.stderr)
    kb = re.search(r"peak_kb (\d+)", r.stderr)
    return r.returncode, int(kb.group(1)) / 1e6 if kb else float("nan")


def large_matrices_preview(w: World, t: Path) -> tuple[bool, str]:
    """spectrum.size=4096 (a 20000 preview took 22 GB after the conversion had fitted): make_hht with its
    preview.png needs little more memory than without."""
    raw = recordings(t / "raw", ["S1_M_full.csv", "S1_M_half.csv"])
    args = [*HHT, "spectrum.size=4096"]
    code0, bare = _peak_gb(w, t, f"input={raw}", f"output={t / 'bare'}", *args, "preview.enabled=false")
    code1, drawn = _peak_gb(w, t, f"input={raw}", f"output={t / 'out'}", *args)
    ok = code0 == code1 == 0 and (t / "out" / "preview.png").is_file() and drawn < 1.25 * bare
    return ok, f"peak memory {drawn:.2f} GB with preview.png, {bare:.2f} GB without"


def european_csv(w: World, t: Path) -> tuple[bool, str]:
    (t / "raw").mkdir()
    signal_ = np.stack([emg_like(600, 1000.0, seed=s) for s in (1, 2)], axis=1)
    rows = "\n".join(";".join(f"{v:.6f}".replace(".", ",") for v in row) for row in signal_)
    (t / "raw" / "S1_M_full.csv").write_text("Bizeps;Trizeps\n" + rows + "\n", encoding="utf-8")
    r = hht(w, t, t / "raw")
    rows_ = manifest(t / "out")
    ok = r.returncode == 0 and sorted(row["channel"] for row in rows_) == ["Bizeps", "Trizeps"]
    return ok, f"exit {r.returncode}: channels {[row['channel'] for row in rows_]} ({written(r.stdout)} written)"


def manifest_path_column(w: World, t: Path) -> tuple[bool, str]:
    recordings(t, ["a.csv"])
    (t / "m.csv").write_text("filepath,fs_hz,subject,movement\na.csv,1000,S1,full\n")
    return refused(hht(w, t, t / "m.csv"), "but no 'path'", "inputs.manifest.path_col=")


def tiny_samples(w: World, t: Path) -> tuple[bool, str]:
    (t / "raw").mkdir()
    np.savetxt(t / "raw" / "S1_M_full.csv", emg_like(600, 1000.0)[:, None] * 1e-300)
    return said(hht(w, t, t / "raw"), "samples too small to compute with", absent=("all samples equal",))


def _unicode(w: World, t: Path) -> dict[str, dict]:
    if not (t / "out" / "manifest.csv").exists():
        raw = recordings(t / "raw", ["a.csv", "b.csv", "c.csv"])
        (raw / "manifest.csv").write_text(
            "path,fs_hz,subject,movement,gender\na.csv,1000,S1,握拳,M\nb.csv,1000,S1,öffnen,F\nc.csv,1000,S2,offnen,F\n",
            encoding="utf-8",
        )
        hht(w, t, raw / "manifest.csv")
    return {r["source"]: r for r in manifest(t / "out")}


def label_cjk(w: World, t: Path) -> tuple[bool, str]:
    rows = _unicode(w, t)
    row = rows.get("a.csv", {})
    ok = row.get("movement") == "握拳" and not row.get("file", "Test").lower().startswith("test")
    return ok, f"manifest: {row.get('file')} movement={row.get('movement')}"


def label_umlaut(w: World, t: Path) -> tuple[bool, str]:
    rows = _unicode(w, t)
    b, c = rows.get("b.csv", {}), rows.get("c.csv", {})
    ok = b.get("movement") == "öffnen" and "offnen" in b.get("file", "") and b.get("file") != c.get("file")
    return ok, f"manifest: {b.get('file')} movement={b.get('movement')}; 'offnen': {c.get('file')}"


def notch_above_nyquist(w: World, t: Path) -> tuple[bool, str]:
    r = hht(w, t, recordings(t / "raw", ["S1_M_full.csv"]), "filter.notch_hz=600")
    return said(r, "filter.notch_hz=600 is at or above Nyquist")


def emd_option_without_plus(w: World, t: Path) -> tuple[bool, str]:
    r = hht(w, t, recordings(t / "raw", ["S1_M_full.csv"]), "emd.options.std_thr=0.1")
    return r.returncode == 0 and written(r.stdout) == 1, f"exit {r.returncode}, {written(r.stdout)} written"


def emd_option_bogus(w: World, t: Path) -> tuple[bool, str]:
    return refused(hht(w, t, recordings(t / "raw", ["S1_M_full.csv"]), "+emd.options.bogus=1"), "emd.options.bogus")


def _rerun_other_settings(w: World, t: Path, change: str) -> tuple[bool, str]:
    raw = recordings(t / "raw", ["S1_M_full.csv", "S1_M_half.csv"], samples=2000)
    first = hht(w, t, raw)
    before = files(t / "out")
    ok, line = refused(hht(w, t, raw, change), "holds matrices of another conversion")
    kept = _unchanged(before, t / "out")
    return first.returncode == 0 and ok and kept.startswith("all"), f"{kept}; {line}"


def stack_channels_flipped(w: World, t: Path) -> tuple[bool, str]:
    return _rerun_other_settings(w, t, "layout.stack_channels=true")


def window_added(w: World, t: Path) -> tuple[bool, str]:
    return _rerun_other_settings(w, t, "window.length_s=1")


def two_inputs_one_folder(w: World, t: Path) -> tuple[bool, str]:
    hht(w, t, recordings(t / "a", ["S1_M_full.csv", "S1_M_half.csv"]))
    hht(w, t, recordings(t / "b", ["S2_F_full.csv", "S2_F_half.csv"], seed=7))
    ids = [r["recording"] for r in manifest(t / "out")]
    return len(ids) == 4 and len(set(ids)) == 4, f"recording ids {ids}"


def ctrl_c_in_training(w: World, t: Path) -> tuple[bool, str]:
    run = t / "run"
    args = [*TINY, *w.data, "trainer.max_epochs=200", f"hydra.run.dir={run}"]
    proc = w.popen("train.py", *args, cwd=t, start_new_session=True,
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip  # as from a terminal
    deadline = time.time() + 300
    while not (run / "checkpoints" / "last.ckpt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    code, text = w.wait(proc)
    line = text.strip().splitlines()[-1]
    ok = code == 130 and "resume with ckpt_path=" in line and "Detected KeyboardInterrupt" not in text
    return ok and (run / "checkpoints" / "last.ckpt").is_file(), f"exit {code}: {line}"


def svm_calibration_cv2(w: World, t: Path) -> tuple[bool, str]:
    ckpt = w.trained / "checkpoints" / "best.ckpt"
    r = w.script("fit_svm.py", f"ckpt={ckpt}", "svm.calibration.cv=2", f"hydra.run.dir={t / 'svm'}", cwd=t)
    metrics = json.loads((t / "svm" / "metrics.json").read_text()) if r.returncode == 0 else {}
    acc, chance = metrics.get("train/acc", 0.0), metrics.get("val/chance", 1.0)
    return r.returncode == 0 and acc >= chance - 0.05, f"exit {r.returncode}: train/acc {acc:.3f}, chance {chance:.3f}"


def its_test(node: str) -> Callable[[World, Path], tuple[bool, str]]:
    """A case its existing test reruns (pytest on that node, slow-marked ones included)."""

    def check(w: World, t: Path) -> tuple[bool, str]:
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "", "-p", "no:cacheprovider", node]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)  # its output: pytest's own
        return r.returncode == 0, f"{node}: {(r.stdout.strip().splitlines() or ['no output'])[-1]}"

    return check


CASES = [
    Case(LOSS, "3 make_hht at once into one folder, same file names", three_make_hht_at_once),
    Case(LOSS, "2 train.py in the same second, default folder", two_trains_default_folder),
    Case(LOSS, "2 train.py at once, one hydra.run.dir", two_trains_one_run_dir),
    Case(LOSS, "train.py rerun into a finished run", train_into_finished_run),
    Case(LOSS, "fit_svm.py refused (svm.skops exists)", refused_fit_svm),
    Case(LOSS, "a user's preview.png in make_hht's output", users_preview_png),
    Case(TRACEBACK, "file name with byte 0xE9", latin1_file_name),
    Case(TRACEBACK, "train.py logger=null", logger_null),
    Case(TRACEBACK, "data-cache .npy damaged in place (NaN)", damaged_data_cache),
    Case(EMPTY, "a session that is all rest", session_all_rest),
    Case(EMPTY, "segment.min_duration_s=5 skips every segment", min_duration_skips_all),
    Case(EMPTY, "segment.max_duration_s=0.2 skips every segment", max_duration_skips_all),
    Case(ORPHAN, "kill -9 of make_hht: processes left", kill_9_processes_left),
    Case(ORPHAN, "kill -9 of make_hht: matrices still written", kill_9_still_writing),
    Case(MISLEADING, "a truncated .npz recording", truncated_npz),
    Case(MISLEADING, ".npy header claiming 1e11 samples", npy_header_1e11),
    Case(MISLEADING, "spectrum.size=20000 beyond the memory bound", spectrum_size_20000),
    Case(MISLEADING, "spectrum.size=4096: preview.png's memory (found here)", large_matrices_preview),
    Case(MISLEADING, "European CSV (';', decimal commas)", european_csv),
    Case(MISLEADING, "manifest whose path column has another name", manifest_path_column),
    Case(MISLEADING, "samples near 1e-300", tiny_samples),
    Case(MISLEADING, "label 握拳", label_cjk),
    Case(MISLEADING, "label öffnen", label_umlaut),
    Case(MISLEADING, "filter.notch_hz=600 at 1 kHz", notch_above_nyquist),
    Case(MISLEADING, "emd.options.std_thr=0.1 without +", emd_option_without_plus),
    Case(MISLEADING, "+emd.options.bogus=1", emd_option_bogus),
    Case(MISLEADING, "rerun with layout.stack_channels flipped", stack_channels_flipped),
    Case(MISLEADING, "rerun with window.length_s=1", window_added),
    Case(MISLEADING, "two inputs into one folder: recording ids", two_inputs_one_folder),
    Case(MISLEADING, "Ctrl-C during train.py", ctrl_c_in_training),
    Case(MISLEADING, "fit_svm svm.calibration.cv=2", svm_calibration_cv2),
    Case(MISLEADING, "flaky: SIGTERM to a starting worker (its test)",
         its_test("tests/test_reliability_hht.py::test_a_terminate_while_a_worker_starts_up_exits_quietly")),
    Case(LOSS, "scale-out: make_hht sharded through submitit = 1 process",
         its_test("tests/test_scale_out.py::test_make_hht_sharded_through_submitit_equals_one_process")),
    Case(LOSS, "scale-out: train.py DDP on CPU, 2 processes, test stage",
         its_test("tests/test_reliability.py::test_ddp_on_cpu_two_processes_synced_metrics_files_written_once")),
]  # fmt: skip


def run_case(w: World, case: Case, number: int) -> dict:
    t = w.tmp / f"case{number:02d}"
    t.mkdir()
    seen, start = len(w.outputs), time.perf_counter()
    try:
        ok, evidence = case.check(w, t)
    except Exception as err:  # the case itself broke (a file it expected is missing): not held, say why
        ok, evidence = False, f"case failed: {type(err).__name__}: {err}"[:160]
    traceback = next((o for o in w.outputs[seen:] if "Traceback (most recent call last)" in o), None)
    outcome = TRACEBACK if traceback is not None else HELD if ok else case.kind
    if traceback is not None:
        evidence = "Traceback ... " + traceback.strip().splitlines()[-1]
    evidence = evidence.replace(f"{t}/", "").replace(f"{w.tmp}/", "")[:WIDTH]
    return {"#": number, "issue's kind": case.kind, "case": case.name, "outcome": outcome, "what shows it": evidence,
            "s": time.perf_counter() - start}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="run the cases whose name contains this")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = p.parse_args(argv)
    for var in ("HYDRA_FULL_ERROR", "SEMG_DEBUG", "SEMG_HHT_ROOT"):
        os.environ.pop(var, None)  # as a new user: one line, not the traceback
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    tmp = Path(tempfile.mkdtemp(prefix="adversarial_"))
    start, rows = time.perf_counter(), []
    try:
        w = World(tmp)
        for number, case in enumerate(CASES, 1):
            if a.only.lower() in case.name.lower():
                rows.append(run_case(w, case, number))
                print(f"{rows[-1]['outcome']:>12}  {case.name}", flush=True)
    finally:
        if a.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    common.print_table(rows, ["#", "issue's kind", "case", "outcome", "what shows it", "s"])
    tally = Counter(r["outcome"] for r in rows)
    counts = ", ".join(f"{tally[o]} {o}" for o in OUTCOMES)
    print(f"\n{len(rows)} cases in {time.perf_counter() - start:.0f} s: {counts}")
    return 0 if tally[HELD] == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
