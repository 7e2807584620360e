"""Faults: a checkpoint write that fails mid-way, low disk, a training killed with SIGKILL."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from semg_hht.errors import SemgError, run_guarded
from semg_hht.models import HHTClassifier
from semg_hht.training import checkpoint_io, train
from semg_hht.training.checkpoint_io import SafeCheckpointIO
from semg_hht.training.train import build_datamodule
from tests.helpers import ROOT, TINY


def test_disk_full_mid_write_keeps_the_previous_checkpoint_and_says_so(train_cfg, tmp_path, monkeypatch):
    train(train_cfg("trainer.max_epochs=1"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    real_open = checkpoint_io.atomic_open

    @contextlib.contextmanager
    def half_then_full(path, mode="w", **kwargs):  # the disk fills half-way through the bytes
        with real_open(path, mode, **kwargs) as f:
            yield SimpleNamespace(write=lambda data: (f.write(bytes(data)[: len(data) // 2]), _enospc()))

    monkeypatch.setattr(checkpoint_io, "atomic_open", half_then_full)
    with pytest.raises(SemgError, match=r"\(No space left on device\); the previous checkpoint file is intact") as err:
        train(train_cfg(f"ckpt_path={last}", "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'run'}"))
    assert "resume with ckpt_path" in str(err.value)
    monkeypatch.undo()
    assert last.read_bytes() == before  # untouched, still loadable
    assert torch.load(last, weights_only=True)["epoch"] == 0
    assert not [p for p in last.parent.iterdir() if p.suffix != ".ckpt"]  # no temp files left behind


def _enospc():
    raise OSError(errno.ENOSPC, "No space left on device")


# The run folder on a small tmpfs of its own (a user + mount namespace: no root needed), $TMPDIR on
# the ordinary disk, training until the tmpfs is full. Lightning's own save wrote the temp file
# under $TMPDIR and copied it into the folder in place: a truncated epoch_005.ckpt stayed behind.
_FULL_DISK = """
set -u
mount -t tmpfs -o size=2M tmpfs "$RUN" || exit 99
"$PY" "$TRAIN" "$@" > "$LOG.out" 2> "$LOG.err"
echo $? > "$LOG.rc"
cd "$RUN/checkpoints" && "$PY" -c '
import glob, json, os, sys, torch
def loads(p):
    try:
        return torch.load(p, weights_only=True)["epoch"] >= 0
    except Exception:
        return False
other_fs = os.stat(os.environ["TMPDIR"]).st_dev != os.stat(".").st_dev
print(json.dumps({"other_fs": other_fs, "files": {p: loads(p) for p in sorted(os.listdir("."))}}))
' > "$LOG.json"
"""


def test_disk_full_with_tmpdir_on_another_file_system_leaves_only_loadable_checkpoints(synthetic_dir, tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare (user + mount namespaces) for a small tmpfs")
    run, tmpdir, log = tmp_path / "run", tmp_path / "tmp", tmp_path / "log"
    run.mkdir()
    tmpdir.mkdir()
    cmd = _train_cmd(synthetic_dir, run, "trainer.max_epochs=80", "callbacks.periodic_checkpoint.every_n_epochs=2")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmpdir), "RUN": str(run), "LOG": str(log),
           "PY": cmd[0], "TRAIN": cmd[1]}  # fmt: skip
    proc = subprocess.run(["unshare", "-rm", "bash", "-c", _FULL_DISK, "sh", *cmd[2:]], env=env, timeout=600)
    if proc.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    err = Path(f"{log}.err").read_text()
    assert Path(f"{log}.rc").read_text().strip() == "1", err[-3000:]
    assert "Traceback" not in err and "Logging error" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "resume with ckpt_path" in lines[0], err
    state = json.loads(Path(f"{log}.json").read_text())
    assert state["other_fs"]
    assert {"best.ckpt", "last.ckpt", "epoch_001.ckpt"} <= set(state["files"])
    assert all(state["files"].values()), state  # every checkpoint left loads, no temp file either


def test_low_disk_space_is_warned_before_writing(tmp_path, caplog):
    io = SafeCheckpointIO(min_free_mb=1e12, headroom=3)
    with caplog.at_level(logging.WARNING):
        io.save_checkpoint({"state_dict": {}}, tmp_path / "c.ckpt")
    assert "free for checkpoints" in caplog.text and (tmp_path / "c.ckpt").is_file()


def _train_cmd(data_dir, out, *extra):
    overrides = [o for o in TINY if o != "trainer.max_epochs=2"]
    return [
        sys.executable, str(ROOT / "train.py"), *overrides, f"paths.data_dir={data_dir}",
        f"hydra.run.dir={out}", "trainer.deterministic=true", "trainer.max_epochs=4", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_equals_an_uninterrupted_run(synthetic_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    clean = subprocess.run(_train_cmd(synthetic_dir, tmp_path / "clean"), env=env, capture_output=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-2000:]

    # slow each step a little so the kill lands mid-epoch, after epoch 1's last.ckpt exists
    crash = subprocess.Popen(_train_cmd(synthetic_dir, tmp_path / "crash", "data.batch_size=2"), env=env)
    last = tmp_path / "crash" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not (last.exists() and torch.load(last, weights_only=True)["epoch"] >= 1):
        time.sleep(0.2)
    crash.send_signal(signal.SIGKILL)
    crash.wait()
    assert crash.returncode == -signal.SIGKILL
    assert not (tmp_path / "crash" / "metrics.json").exists()  # it really died before finishing

    resumed = subprocess.run(
        _train_cmd(synthetic_dir, tmp_path / "resumed", "data.batch_size=2", f"ckpt_path={last}"),
        env=env, capture_output=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference = subprocess.run(
        _train_cmd(synthetic_dir, tmp_path / "reference", "data.batch_size=2"),
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert reference.returncode == 0
    got = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    want = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    for key in ("val/acc", "val/acc_best", "val/f1_macro", "val/confusion_matrix", "epochs"):
        assert got[key] == want[key], key
    history = [(tmp_path / d / "history.csv").read_text() for d in ("resumed", "reference")]
    assert history[0] == history[1]  # every epoch's loss, accuracy and learning rate


def test_a_log_file_on_a_full_disk_warns_once_not_a_traceback_per_line(tmp_path, capsys):
    handler = logging.FileHandler(tmp_path / "train.log", delay=True)
    handler.stream = SimpleNamespace(write=lambda _: _enospc(), flush=lambda: None, close=lambda: None)
    logging.getLogger().addHandler(handler)
    try:

        def chatty() -> int:
            for i in range(50):
                logging.getLogger("semg_hht.test").warning("line %d", i)
            return 7

        assert run_guarded(chatty) == 7
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("train.log (No space left on device); logging there stopped") == 1


def test_sigterm_saves_last_ckpt_says_how_to_resume_and_exits_1(synthetic_dir, tmp_path):
    """SIGTERM is how SLURM preempts: no silent exit 0, and the one line's command resumes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _train_cmd(synthetic_dir, run, "trainer.max_epochs=200", "data.batch_size=2"),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not last.exists():
        time.sleep(0.2)
    time.sleep(0.5)  # mid-epoch
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in err and "weights_only" not in err  # the full state is saved on purpose
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "SIGTERM" in line and f"resume with ckpt_path={last}" in line, line
    epoch = torch.load(last, weights_only=True)["epoch"]
    assert 0 <= epoch < 150
    resumed = subprocess.run(
        _train_cmd(synthetic_dir, tmp_path / "resumed", f"trainer.max_epochs={epoch + 2}", f"ckpt_path={last}"),
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["epochs"] == epoch + 2


@pytest.mark.slow
def test_ddp_on_cpu_two_processes_synced_metrics_files_written_once(synthetic_dir, train_cfg, tmp_path):
    """trainer=ddp as on a GPU node, here with two gloo processes: SyncBatchNorm (GPU-only) is
    turned off, epoch metrics are synced, and rank zero alone writes the run's files. Both processes
    score the validation rows and the test set (each its share, gathered): every recording once, with
    the best checkpoint's probabilities."""
    run = tmp_path / "ddp"
    held_out = ["data.label_source=manifest", "data.manifest=manifest.csv", "data.test_filter={subject:[S04]}"]
    cmd = _train_cmd(synthetic_dir, run, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *held_out)
    cmd = [c for c in cmd if c not in ("trainer.max_epochs=4", "trainer.deterministic=true")]
    cmd += ["trainer.max_epochs=2", "trainer.precision=32-true", "data.load_workers=0"]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SyncBatchNorm layers only work with GPU" not in proc.stderr and "sync_dist=True" not in proc.stderr
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    logs = "".join(p.read_text() for p in run.glob("*.log"))
    assert logs.count("wrote metrics.json, reports and plots") == 1  # rank zero only
    assert logs.count("test set (9 recordings, 1 people)") == 1 and "test stage skipped" not in logs
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["n_train"] == 21 and metrics["n_test"] == 9
    assert (run / "split.csv").is_file() and (run / "history.csv").is_file()
    # 21 training recordings in batches of 8: 3 batches an epoch, shared by the two processes (2 each)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2 * 2

    dm = build_datamodule(train_cfg(*held_out))
    dm.setup("fit")
    model = HHTClassifier.load_from_checkpoint(metrics["best_checkpoint"], weights_only=True).eval()
    with torch.inference_mode():
        val, test = (torch.softmax(model(x), 1) for x in (dm.x[torch.from_numpy(dm.val_index)], dm.test_x))
    # 9 test rows over 2 processes: 5 + 4, no padded duplicate; all of them back in manifest order
    rows = list(csv.DictReader((run / "test_predictions.csv").open()))
    assert [r["file"] for r in rows] == [str(r.path) for r in dm.test_recordings]
    written = torch.tensor([[float(r[f"p_{c}"]) for c in dm.class_names] for r in rows])
    assert torch.allclose(written, test, atol=1e-5)
    assert sum(map(sum, metrics["test/confusion_matrix"])) == 9 and metrics["test/n_recordings"] == 9
    y_val = dm.y[torch.from_numpy(dm.val_index)]
    assert sum(map(sum, metrics["val/confusion_matrix"])) == metrics["n_val"] == len(y_val)
    assert metrics["val/acc"] == pytest.approx(float((val.argmax(1) == y_val).float().mean()))
    assert (run / "test_confusion_matrix.png").is_file() and (run / "test_classification_report.txt").is_file()
