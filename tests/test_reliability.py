"""Faults: a checkpoint write that fails mid-way, low disk, a training killed with SIGKILL."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from fsspec.implementations.local import LocalFileOpener

from semg_hht.errors import SemgError
from semg_hht.training import train
from semg_hht.training.checkpoint_io import SafeCheckpointIO
from tests.conftest import ROOT, TINY


def test_disk_full_mid_write_keeps_the_previous_checkpoint_and_says_so(train_cfg, tmp_path, monkeypatch):
    train(train_cfg("trainer.max_epochs=1"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    real_write = LocalFileOpener.write

    def half_then_full(self, data):  # the disk fills half-way through the bytes
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalFileOpener, "write", half_then_full)
    with pytest.raises(SemgError, match=r"\(No space left on device\); the previous checkpoint file is intact") as err:
        train(train_cfg(f"ckpt_path={last}", "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'run'}"))
    assert "resume with ckpt_path" in str(err.value)
    monkeypatch.undo()
    assert last.read_bytes() == before  # untouched, still loadable
    assert torch.load(last, weights_only=True)["epoch"] == 0
    assert not [p for p in last.parent.iterdir() if p.suffix != ".ckpt"]  # no temp files left behind


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
