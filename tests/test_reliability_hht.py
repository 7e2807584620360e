"""make_hht never loses or mixes up data (issue #13): user manifests are never replaced, a matrix is
only reused when made from the same source content, duplicate rows are refused, ambiguous CSVs are
not guessed, and signals stop the workers."""

from __future__ import annotations

import csv
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import ReaderSettings
from semg_hht.synth.raw import SynthConfig, generate
from tests.helpers import ROOT, emg_like, recordings, run_make_hht, session_alive, temp_writer


def manifest_rows(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_users_training_manifest_in_the_output_folder_is_never_replaced(tmp_path):
    src = recordings(tmp_path / "raw", ["a_M_full.csv"])
    out = tmp_path / "out"
    out.mkdir()
    mine = "file,subject,movement,gender\nBICEPS_full_M_001.npz,S1,full,M\n"  # README's training format
    (out / "manifest.csv").write_text(mine)
    with pytest.raises(SemgError, match=r"manifest\.csv not written by make_hht"):
        run_make_hht(src, out)
    assert (out / "manifest.csv").read_text() == mine and not list(out.glob("*.npz"))


def test_the_input_manifest_is_never_replaced_by_the_output_manifest(tmp_path):
    src = recordings(tmp_path / "raw", ["a.csv", "b.csv"])
    text = "file,movement,gender\na.csv,full,M\nb.csv,half,F\n"
    (src / "manifest.csv").write_text(text)
    with pytest.raises(SemgError, match="input manifest would be replaced"):
        run_make_hht(src / "manifest.csv", src, "inputs.manifest.path_col=file")
    assert (src / "manifest.csv").read_text() == text and not list(src.glob("*.npz"))


def test_duplicate_manifest_rows_are_refused_not_converted_twice(tmp_path):
    src = recordings(tmp_path / "raw", ["a.csv", "b.csv"])
    (src / "list.csv").write_text("path,movement,gender\na.csv,full,M\nb.csv,half,F\n./a.csv,full,M\n")
    with pytest.raises(SemgError, match=r"list\.csv: line 4 lists \./a\.csv again \(already on line 2\)"):
        run_make_hht(src / "list.csv", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.npz"))


def test_a_matrix_of_another_input_with_the_same_name_is_not_reused(tmp_path):
    first = recordings(tmp_path / "first", ["EMG_M_full.csv"], seed=0)
    second = recordings(tmp_path / "second", ["EMG_M_full.csv"], seed=7)  # same name, other signal
    out = tmp_path / "out"
    run_make_hht(first, out)
    made = (out / "CH1_full_M_001.npz").read_bytes()
    with pytest.raises(SemgError, match="1 of 1 recordings failed"):
        run_make_hht(second, out)
    assert (out / "CH1_full_M_001.npz").read_bytes() == made  # kept, but never passed off as the second's
    summary = run_make_hht(second, out, "overwrite=true")
    assert summary["written"] == 1
    with np.load(out / "CH1_full_M_001.npz") as z:
        assert str(z["source_sha256"]) != "" and (out / "CH1_full_M_001.npz").read_bytes() != made


def test_a_changed_recording_is_converted_again_only_with_overwrite(tmp_path):
    src = recordings(tmp_path / "raw", ["x_M_full.csv"])
    out = tmp_path / "out"
    run_make_hht(src, out)
    np.savetxt(src / "x_M_full.csv", emg_like(600, 1000.0, seed=3)[:, None])  # edited in place
    with pytest.raises(SemgError, match="1 of 1 recordings failed"):
        run_make_hht(src, out)


def test_a_second_input_keeps_the_manifest_rows_of_the_files_already_there(tmp_path):
    """...and numbers its recordings after them: both inputs counted from 1, and recordings of different
    classes shared a recording id (scored as one recording)."""
    out = tmp_path / "out"
    run_make_hht(recordings(tmp_path / "a", ["x_M_full.csv", "y_M_half.csv"]), out)
    run_make_hht(recordings(tmp_path / "b", ["z_F_invalid.csv"], seed=5), out)
    files = sorted(p.name for p in out.glob("*.npz"))
    assert files == ["CH1_full_M_001.npz", "CH1_half_M_002.npz", "CH1_invalid_F_003.npz"]
    assert sorted(r["file"] for r in manifest_rows(out)) == files
    assert sorted(r["recording"] for r in manifest_rows(out)) == ["1", "2", "3"]
    assert run_make_hht(tmp_path / "a", out)["skipped"] == 2  # each input's rerun finds its numbers again
    (out / "CH1_half_M_002.npz").unlink()  # rows of deleted matrices go
    assert run_make_hht(tmp_path / "b", out)["skipped"] == 1
    assert sorted(r["file"] for r in manifest_rows(out)) == ["CH1_full_M_001.npz", "CH1_invalid_F_003.npz"]


def test_decimal_commas_in_a_single_column_are_not_read_as_two_channels(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("".join(f"{v:.3f}\n".replace(".", ",") for v in 20 + emg_like(200, 1000.0)))
    with pytest.raises(SemgError, match=r"one\.csv: every line looks like .*decimal commas.*reader\.delimiter=comma"):
        read_recording(path, ReaderSettings(fs=1000.0))
    two = read_recording(path, ReaderSettings(fs=1000.0, delimiter="comma"))  # the explicit choice is honoured
    assert two.signal.shape == (200, 2)


def test_a_terminate_while_a_worker_starts_up_exits_quietly():
    """SIGTERM can reach a worker still in the pool's initializer (which logs any exception with its
    traceback, as the pool does) or idle between recordings: nothing to clean there, so exit 143 quietly."""
    code = (
        "import os, signal, time, traceback\n"
        "from semg_hht.hht import pipeline\n"
        "try:\n"
        "    pipeline._init_worker(None)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "except BaseException:\n"
        "    traceback.print_exc()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_parent_alone_stops_the_workers_and_keeps_finished_outputs(tmp_path, sig, code):
    """SIGTERM is how SLURM cancels or preempts; SIGINT here goes to the parent only (kill -INT)."""
    raw = tmp_path / "raw"
    # enough recordings that the run outlasts a poller starved of CPU by the two workers (the signal
    # must land mid-run; with 18 recordings it sometimes came after a 6 s run had finished)
    reps = 10
    generate(raw, SynthConfig(subjects=2, reps=reps, duration_s=6.0, fs=1000.0, channels=2, seed=1))
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "make_hht.py"), f"input={raw / 'manifest.csv'}", f"output={out}"]
    cmd += ["workers=2", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")]
    log_path = tmp_path / "log.txt"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            start_new_session=True,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # as from a terminal: a test run started in the background (`cmd &`, some CI runners)
            # inherits SIGINT ignored, and Python then never turns it into KeyboardInterrupt
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.time() + 120
        while not list(out.glob("*.npz")) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # both workers are mid-recording now
        at_signal = len(list(out.glob("*.npz")))
        proc.send_signal(sig)
        sent = time.time()
        proc.wait(timeout=60)
    stopped_after = time.time() - sent
    log = log_path.read_text()
    assert proc.returncode == code, log
    assert "rerun the same command" in log and "Traceback" not in log
    assert stopped_after < 10, stopped_after  # promptly: no queued recording converted first
    kept = sorted(p.name for p in out.glob("*.npz"))
    time.sleep(3)
    assert session_alive(proc.pid) == []  # no worker left running ...
    assert sorted(p.name for p in out.glob("*.npz")) == kept  # ... or writing
    assert len(kept) <= at_signal + 2  # at most the file being renamed as the signal came, per worker
    assert 1 <= len(kept) < 2 * 3 * reps * 2  # people x movements x repetitions x channels: stopped early
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files
    for name in kept:
        assert np.load(out / name)["hht"].shape == (256, 256)


def test_kill_9_of_the_parent_leaves_no_worker_writing(tmp_path):
    """The OOM killer's SIGKILL runs no handler in make_hht: its workers (children of the forkserver,
    not of make_hht) notice within a second, drop the recording in progress and exit; the forkserver and
    the resource tracker follow. Without the watch they converted their whole queue, 90 s later."""
    raw = tmp_path / "raw"
    generate(raw, SynthConfig(subjects=2, reps=10, duration_s=6.0, fs=1000.0, channels=2, seed=1))
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "make_hht.py"), f"input={raw / 'manifest.csv'}", f"output={out}"]
    cmd += ["workers=2", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not list(out.glob("*.npz")) and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    time.sleep(4)  # the watch polls every 0.5 s; a recording in progress unwinds
    assert session_alive(proc.pid) == []
    kept = sorted(p.name for p in out.glob("*.npz"))
    time.sleep(2)
    assert sorted(p.name for p in out.glob("*.npz")) == kept  # nobody writes any more
    assert len(kept) < 2 * 3 * 10 * 2
    assert not list(out.glob(".*.tmp"))  # no temp file left behind (the lock file stays, unheld)


def test_a_rerun_removes_a_killed_runs_temp_file_without_reading_it_and_keeps_a_users(tmp_path, caplog):
    """make_hht killed outright (the OOM killer) mid-write leaves .<matrix>.npz.semg-<pid>-...tmp; the rerun
    removes it, never reading it as a matrix (here one of another conversion, which a read would refuse)."""
    src = recordings(tmp_path / "raw", ["a_M_full.csv"])
    out = tmp_path / "out"
    run_make_hht(src, out)
    (first,) = out.glob("*.npz")
    other = tmp_path / "other.npz"
    with np.load(first) as z:
        np.savez(other, **{**{k: z[k] for k in z.files}, "settings_signature": np.array("another conversion")})
    dead, _ = temp_writer(out / f"new_{first.name}", kill=True, content=other)
    (out / "notes.tmp").write_text("mine")
    with caplog.at_level(logging.INFO):
        summary = run_make_hht(src, out)
    assert summary["failed"] == [] and summary["written"] == 0 and list(out.glob("*.npz")) == [first]
    assert not dead.exists() and (out / "notes.tmp").read_text() == "mine"
    assert f"removed 1 temp file(s) left by killed writers in {out}" in caplog.text


def test_a_manifest_whose_path_column_has_another_name_is_named_not_read_as_a_recording(tmp_path):
    recordings(tmp_path, ["a.csv"])
    (tmp_path / "m.csv").write_text("filepath,fs_hz,subject,movement\na.csv,1000,S1,full\n")
    with pytest.raises(SemgError, match=r"m\.csv: manifest has fs_hz, subject, movement columns but no 'path'.*"
                       r"inputs\.manifest\.path_col=<the column naming the recordings>"):  # fmt: skip
        run_make_hht(tmp_path / "m.csv", tmp_path / "out")
    (tmp_path / "rec.csv").write_text("BICEPS,TRICEPS\n0.1,0.2\n0.3,0.1\n")  # a recording with channel names
    from semg_hht.hht.inputs import discover
    from semg_hht.hht.settings import InputSettings

    assert [j.source for j in discover(tmp_path / "rec.csv", InputSettings())[0]] == ["rec.csv"]


@pytest.mark.parametrize("change", ["layout.stack_channels=true", "window.length_s=0.2"])
def test_settings_that_change_the_names_cannot_mix_two_conversions_in_one_folder(tmp_path, change):
    raw = recordings(tmp_path / "raw", ["S1_M_full.csv", "S1_M_half.csv"])
    out = tmp_path / "out"
    run_make_hht(raw, out)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(SemgError, match=r"holds matrices of another conversion .*would mix two conversions"):
        run_make_hht(raw, out, change)
    assert sorted(p.name for p in out.iterdir()) == before  # nothing added
    assert run_make_hht(raw, out)["skipped"] == 2  # the same settings still reuse every matrix


def test_emd_options_are_a_checked_schema_that_reaches_pyemd():
    from semg_hht.hht.settings import settings_from_cfg
    from semg_hht.hht.transform import emd_options, make_decomposer
    from tests.helpers import hht_cfg

    base = ["input=a", "output=b"]
    s = settings_from_cfg(hht_cfg(*base, "emd.options.std_thr=0.1", "emd.options.FIXE=2"))  # no + needed
    assert emd_options(s.emd) == {"std_thr": 0.1, "FIXE": 2}
    with pytest.raises(SemgError, match=r"emd\.options\.bogus"):
        settings_from_cfg(hht_cfg(*base, "+emd.options.bogus=1"))  # accepted and ignored before
    with pytest.raises(SemgError, match=r"emd\.options\.spline_kind"):
        settings_from_cfg(hht_cfg(*base, "emd.options.spline_kind=bspline"))
    default = settings_from_cfg(hht_cfg(*base))
    assert emd_options(default.emd) == {} and s.signature() != default.signature()
    x = emg_like(600, 1000.0)
    plain, fixed = (make_decomposer(c.emd)(x, 0) for c in (default, s))
    assert plain.shape != fixed.shape or not np.allclose(plain, fixed)  # the options change the IMFs
