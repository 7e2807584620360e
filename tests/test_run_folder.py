"""A run folder belongs to one run (issue 32): default folders never collide, a folder in use or holding
an earlier run is refused in one line, and a refused command leaves the folder's .hydra/ record as it was."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semg_hht import run_folder
from semg_hht.errors import SemgError
from tests.helpers import ROOT, emg_like, last_line, script, temp_writer


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    cmd = [sys.executable, str(ROOT / "train.py"), "model.num_layers=0"]  # refused at once: only the folders
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [1, 1]
    folders = sorted((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(folders) == 2 and {f.name.rsplit("_", 1)[1] for f in folders} == {str(p.pid) for p in procs}


def test_a_folder_in_use_is_refused_naming_the_pid(tmp_path):
    run = tmp_path / "run"
    run_folder.claim(run)
    try:
        result = script("train.py", f"hydra.run.dir={run}", f"paths.data_dir={tmp_path}", cwd=tmp_path)
    finally:
        run_folder.release(run)
    assert result.returncode == 1
    assert last_line(result) == (
        f"error: {run}: in use by PID {os.getpid()}: another run is writing this folder -> wait for it to finish, "
        "or pass hydra.run.dir=<another folder>"
    )
    assert not (run / ".lock").exists()  # released: no trace left


def test_a_second_claim_in_another_process_fails_and_a_released_lock_is_taken(tmp_path):
    code = f"from semg_hht import run_folder; from pathlib import Path; run_folder.claim(Path({str(tmp_path)!r}))"
    run_folder.claim(tmp_path)
    busy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    run_folder.release(tmp_path)
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "in use by PID" in busy.stderr and free.returncode == 0
    with pytest.raises(SemgError, match="earlier run"):
        (tmp_path / "metrics.json").write_text("{}")
        run_folder.refuse_earlier_run(tmp_path, resuming=False, overwrite=False)
    run_folder.refuse_earlier_run(tmp_path, resuming=True, overwrite=False)


def _old_run(folder: Path) -> tuple[Path, str]:
    record = folder / ".hydra" / "config.yaml"
    record.parent.mkdir(parents=True)
    record.write_text("the earlier run's config\n")
    return record, record.read_text()


def test_a_rerun_into_a_finished_run_is_refused_and_writes_nothing(tmp_path):
    run = tmp_path / "run"
    record, before = _old_run(run)
    (run / "metrics.json").write_text('{"val/acc": 0.9}\n')
    result = script("train.py", f"hydra.run.dir={run}", f"paths.data_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 1 and "holds an earlier run (metrics.json)" in last_line(result)
    assert f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}, pass overwrite=true" in last_line(result)
    assert record.read_text() == before and (run / "metrics.json").read_text() == '{"val/acc": 0.9}\n'
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == ["config.yaml"]


def test_a_refused_fit_svm_leaves_the_old_record(tmp_path):
    run = tmp_path / "svm"
    record, before = _old_run(run)
    (run / "svm.skops").write_bytes(b"an earlier SVM")
    result = script("fit_svm.py", "ckpt=null", f"hydra.run.dir={run}", f"paths.data_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 1 and "svm.skops: output exists and would be overwritten" in last_line(result)
    assert record.read_text() == before and (run / "svm.skops").read_bytes() == b"an earlier SVM"


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_refused_command_leaves_an_existing_folder_byte_for_byte_its_log_included(tmp_path):
    """The error line of a refused command was appended to the folder's log file (another run's train.log,
    fit_svm.log), and a refusal after the claim left its .lock behind. Now the folder keeps every byte."""
    run, svm, busy = tmp_path / "run", tmp_path / "svm", tmp_path / "busy"
    _old_run(run)
    (run / "metrics.json").write_text('{"val/acc": 0.9}\n')
    (run / "train.log").write_text("[the earlier run's log]\n")
    _old_run(svm)
    (svm / "svm.skops").write_bytes(b"an earlier SVM")
    (svm / "fit_svm.log").write_text("[the earlier SVM's log]\n")
    _old_run(busy)  # no log file yet: none is created
    before = {f: _folder_bytes(f) for f in (run, svm, busy)}
    data = f"paths.data_dir={tmp_path}"
    refused = [
        script("train.py", f"hydra.run.dir={run}", data, cwd=tmp_path),  # a finished run
        script("train.py", f"hydra.run.dir={run}", data, "model.num_layers=0", cwd=tmp_path),  # a bad value
        script("fit_svm.py", "ckpt=null", f"hydra.run.dir={svm}", data, cwd=tmp_path),  # svm.skops exists
    ]
    run_folder.claim(busy)  # in use by this process
    try:
        refused.append(script("train.py", f"hydra.run.dir={busy}", data, cwd=tmp_path))
        busy_during = _folder_bytes(busy)
    finally:
        run_folder.release(busy)
    assert [r.returncode for r in refused] == [1, 1, 1, 1]
    assert all(last_line(r).startswith("error: ") for r in refused)  # the line is still on the terminal
    assert busy_during == {**before[busy], ".lock": str(os.getpid()).encode()}
    assert {f: _folder_bytes(f) for f in (run, svm, busy)} == before
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "metrics.json", "train.log"]


def test_a_refused_command_writes_no_record_nor_do_refused_sweep_jobs(tmp_path):
    run = tmp_path / "run"
    result = script("train.py", f"hydra.run.dir={run}", "paths.data_dir=nope", cwd=tmp_path)
    assert "data folder not found" in last_line(result) and not (run / ".hydra").exists()
    script("predict.py", f"hydra.run.dir={run}", "ckpt=missing.ckpt", cwd=tmp_path)
    assert not (run / ".hydra").exists()
    sweep = tmp_path / "sweep"
    script("train.py", "-m", "model.num_layers=2,3", f"hydra.sweep.dir={sweep}", "paths.data_dir=nope", cwd=tmp_path)
    assert not list(sweep.glob("*/.hydra"))  # refused jobs too


def test_a_run_that_passes_its_checks_writes_its_record(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    np.savetxt(raw / "S01_M_full.csv", emg_like(600, 1000.0)[:, None], delimiter=",")
    run = tmp_path / "run"
    args = [f"input={raw}", f"output={tmp_path / 'out'}", "reader.fs=1000", "spectrum.size=16", "workers=1"]
    args += ["progress=false", "preview.enabled=false", f"hydra.run.dir={run}"]
    result = script("make_hht.py", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "size: 16" in (run / ".hydra" / "config.yaml").read_text()
    assert "- spectrum.size=16" in (run / ".hydra" / "overrides.yaml").read_text()
    assert "output_subdir: null" in (run / ".hydra" / "hydra.yaml").read_text()
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # the lock is gone


def test_ddp_ranks_started_by_lightning_run_in_rank_zeros_folder(tmp_path):
    """Lightning's DDP launcher starts the other ranks as new train.py processes with the same run folder
    (LOCAL_RANK set): they neither claim it (rank 0 holds it) nor write its record."""
    run = tmp_path / "run"
    run_folder.claim(run)
    try:
        cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run}", "paths.data_dir=nope"]
        env = {**os.environ, "LOCAL_RANK": "1"}
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    finally:
        run_folder.release(run)
    assert "data folder not found" in last_line(result) and not (run / ".hydra").exists()


def test_a_second_make_hht_into_a_folder_in_use_is_refused_before_any_work(tmp_path):
    """Three make_hht runs at once into one folder kept one matrix and one manifest row; a run now holds
    its shard of the output folder (the shards of one conversion still share it)."""
    from tests.helpers import recordings, run_make_hht

    raw = recordings(tmp_path / "raw", ["S1_M_full.csv"])
    out = tmp_path / "out"
    hold = (
        "import time; from pathlib import Path; from semg_hht import run_folder\n"
        f"run_folder.claim(Path({str(out)!r}), '.make_hht-shard0-of-1.lock'); print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)  # a running make_hht
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SemgError, match=rf"{out}: in use by PID {holder.pid}"):
            run_make_hht(raw, out)
        assert run_make_hht(raw, out, "shard=1", "num_shards=2")["recordings"] == 0  # another shard: not refused
    finally:
        holder.kill()
        holder.wait()
    assert not list(out.glob("*.npz")) and run_make_hht(raw, out)["written"] == 1  # the holder gone: it runs


def test_evaluate_never_replaces_an_earlier_table(tmp_path, capsys):
    from semg_hht.errors import run_guarded
    from semg_hht.evaluation.run import evaluate
    from tests.helpers import compose_cfg

    (tmp_path / "results.md").write_text("an earlier table\n")
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", "raw=x.csv"], "evaluate")
    with pytest.raises(SystemExit):
        run_guarded(evaluate, cfg)
    assert "results.md: output exists and would be overwritten -> pass overwrite=true" in capsys.readouterr().err
    assert (tmp_path / "results.md").read_text() == "an earlier table\n"


def test_a_make_hht_shard_removes_a_killed_writers_temp_files_and_keeps_a_live_shards(tmp_path, caplog):
    """kill -9 (the OOM killer) mid-write leaves a temp file; the next make_hht shard to hold the folder
    removes it, here and in checkpoints/. Another shard writing into the same folder keeps its own."""
    out = tmp_path / "out"
    dead, _ = temp_writer(out / "BICEPS_full_M_001.npz", kill=True)
    dead_below, _ = temp_writer(out / "checkpoints" / "last.ckpt", kill=True)
    live, shard = temp_writer(out / "BICEPS_full_M_002.npz", kill=False)  # shard 1 of 2, still converting
    try:
        with caplog.at_level(logging.INFO), run_folder.holding(out, ".make_hht-shard0-of-2.lock"):
            assert live.exists() and not dead.exists() and not dead_below.exists()
    finally:
        shard.stdin.close()  # shard 1 finishes its matrix: renamed into place, whole
        shard.wait(timeout=60)
    assert (out / "BICEPS_full_M_002.npz").read_bytes() == b"half a file" and not live.exists()
    assert f"removed 2 temp file(s) left by killed writers in {out}" in caplog.text


def test_a_command_removes_killed_writers_temp_files_once_its_checks_pass_and_never_a_users_file(tmp_path):
    run = tmp_path / "run"
    dead, _ = temp_writer(run / "metrics.json", kill=True)
    other_host = run / re.sub(r"semg-(\d+)-[0-9a-f]{8}-", r"semg-\1-00000000-", dead.name)  # its PID means nothing here
    users = [run / "notes.tmp", run / ".notes.txt.k3j9x2ab.tmp", run / "x.npz.tmp", other_host]
    for path in users:
        path.write_text("mine")
    with pytest.raises(SemgError), run_folder.checking(run):
        raise SemgError("refused")  # a refused command leaves the folder as it was
    assert dead.exists()
    with run_folder.checking(run):
        pass
    run_folder.release(run)
    assert not dead.exists() and [p.read_text() for p in users] == ["mine"] * 4
