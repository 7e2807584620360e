"""Issue #32 (reliability, round 3): misleading messages, tracebacks and silently wrong results, each a
case that failed before its fix."""

from __future__ import annotations

import json
import logging
import os
import signal
from functools import partial

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from semg_hht.data.cache import load_matrices_cached
from semg_hht.data.matrices import read_matrix
from semg_hht.errors import SemgError, run_guarded
from semg_hht.hht import memory
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import ReaderSettings
from semg_hht.svm.pipeline import fit_pipeline
from semg_hht.training import train
from semg_hht.training.callbacks import EpochHistory
from tests.helpers import CONF, emg_like, run_make_hht


def test_svm_calibration_never_turns_the_predictions_around(caplog):
    """svm.calibration.cv=2 on a few recordings: the held-out decision values of an SVM that memorises
    noise rank the classes backwards, and a free Platt sigmoid fitted on them (slope > 0) flipped every
    prediction: train accuracy 0.000. Now the sigmoid is kept non-decreasing and a warning says why."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "fit_svm.yaml").svm)
    cfg["calibration"]["cv"] = 2
    x = np.random.default_rng(1).normal(size=(8, 4))
    y = np.array([0, 1] * 4)
    with caplog.at_level(logging.WARNING):
        pipeline, _ = fit_pipeline(cfg, x, y, [None] * 8, 0)
    sigmoid = pipeline[-1].calibrated_classifiers_[0].calibrators[0]
    assert sigmoid.a_ <= 0
    assert (pipeline.predict(x) == y).mean() == 0.5  # the class share: no better than chance, never inverted
    assert np.allclose(pipeline.predict_proba(x), 0.5)
    assert "rank the classes backwards (svm.calibration.cv=2)" in caplog.text
    # an SVM that does generalise keeps its own, decreasing sigmoid and no warning
    caplog.clear()
    x[y == 1] += 3.0
    with caplog.at_level(logging.WARNING):
        pipeline, _ = fit_pipeline(cfg, x, y, [None] * 8, 0)
    assert pipeline[-1].calibrated_classifiers_[0].calibrators[0].a_ < 0
    assert (pipeline.predict(x) == y).all() and "backwards" not in caplog.text


def test_ctrl_c_during_training_saves_the_state_and_says_how_to_resume(
    train_cfg, tmp_path, monkeypatch, capsys, request
):
    """Ctrl-C mid-epoch: Lightning's KeyboardInterrupt exited 1 with only "Detected KeyboardInterrupt". Now as
    SIGTERM: stop after the batch, the whole state in last.ckpt, one line with the resume command, exit 130."""

    def ctrl_c_at_batch_2(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(EpochHistory, "on_train_batch_end", ctrl_c_at_batch_2, raising=False)
    # as in a terminal: a shell's background job (CI run with '&') starts with Ctrl-C ignored, which the tool
    # keeps ignored, so the test gives itself Python's own handler first
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with pytest.raises(SystemExit) as stopped:
        run_guarded(train, train_cfg("trainer.max_epochs=5", "data.batch_size=4"))
    assert stopped.value.code == 130
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Ctrl-C (SIGINT)" in line and f"resume with ckpt_path={last}" in line
    assert "Detected KeyboardInterrupt" not in err and "Traceback" not in err
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] > 0 and state["optimizer_states"]  # mid-epoch 1: all of it
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is Python's again afterwards


def test_a_truncated_npz_is_named_as_truncated_by_make_hht_and_by_the_matrix_reader(tmp_path):
    """make_hht's recording reader let zipfile's BadZipFile through ("unexpected BadZipFile"); the matrix
    reader (training, predict.py) said "File is not a zip file". Both now share one line: truncated."""
    recording, matrix = tmp_path / "rec.npz", tmp_path / "m.npz"
    np.savez(recording, signal=np.random.default_rng(0).standard_normal((2000, 2)), fs=1000.0)
    np.savez(matrix, hht=np.random.default_rng(0).random((8, 8), dtype=np.float32))
    for path in (recording, matrix):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SemgError) as raw:
        read_recording(recording, ReaderSettings(), fs_hint=1000.0)
    with pytest.raises(SemgError) as hht:
        read_matrix(matrix, 1, 8)
    for err, path in ((raw.value, recording), (hht.value, matrix)):
        assert err.path == str(path) and "cannot read npz (truncated or damaged" in err.problem, err
    assert "copy or export the recording again" in raw.value.fix and "re-create or remove" in hht.value.fix


@pytest.mark.parametrize("scope", ["recording", "window"])
def test_samples_near_1e_300_are_called_tiny_not_constant(scope, tmp_path, caplog):
    """Their squares underflow, so the spread reads 0: that was "constant (all samples equal)"."""
    src = tmp_path / "raw"
    src.mkdir()
    np.savetxt(src / "a_M_full.csv", emg_like(600, 1000.0)[:, None] * 1e-300)
    with pytest.raises(SemgError, match=r"1 of 1 recordings failed"):
        run_make_hht(src, tmp_path / "out", f"normalise.scope={scope}")
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "samples too small to compute with (largest |value| " in errors and "e-300" in errors, errors
    assert "sEMG is about 1e-6 to 1e-2 V" in errors and "all samples equal" not in errors


@pytest.mark.parametrize("header", ["Zeit (s);Bizeps, links;Trizeps\n", ""])
@pytest.mark.parametrize("setting", ["auto", "semicolon"])
def test_a_european_csv_with_semicolons_and_decimal_commas_is_read(header, setting, tmp_path):
    """Excel in a German locale saves '0,25;-1,5': sniffed as comma-separated, "line 2 is not numeric"."""
    signal = np.random.default_rng(0).standard_normal((300, 3)).round(6)
    rows = "\n".join(";".join(f"{v:.6f}".replace(".", ",") for v in row) for row in signal)
    path = tmp_path / "a.csv"
    path.write_text(header + rows + "\n", encoding="utf-8")
    rec = read_recording(path, ReaderSettings(delimiter=setting), fs_hint=1000.0)
    np.testing.assert_array_equal(rec.signal, signal)
    assert rec.channel_names == (["Zeit (s)", "Bizeps, links", "Trizeps"] if header else ["CH1", "CH2", "CH3"])
    if not header:  # one channel of decimal commas: ambiguous when sniffed, read with the setting the line names
        path.write_text("\n".join(f"{v:.6f}".replace(".", ",") for v in signal[:, 0]) + "\n", encoding="utf-8")
        with pytest.raises(SemgError, match=r"for one, reader\.delimiter=semicolon \(it reads decimal commas\)"):
            read_recording(path, ReaderSettings(), fs_hint=1000.0)
        rec = read_recording(path, ReaderSettings(delimiter="semicolon"), fs_hint=1000.0)
        np.testing.assert_array_equal(rec.signal[:, 0], signal[:, 0])


@pytest.mark.parametrize("payload", ["nan", "finite", "nan, no checksum recorded"])
def test_a_data_cache_damaged_in_place_is_rebuilt_with_a_warning(payload, synthetic_dir, tmp_path, caplog):
    """Same size, same manifest: the damaged .npy was loaded unchecked (NaN trained an epoch, then the
    saliency plot raised). Now its sha256 (or, for a cache without one, its finiteness) is checked."""
    files, cache = sorted(synthetic_dir.glob("*_*_*.npz"))[:6], tmp_path / "cache"
    good, _ = load_matrices_cached(files, 1, 32, "minmax", 1, cache)
    npy, manifest = next(cache.glob("*.npy")), next(cache.glob("*.json"))
    size = npy.stat().st_size
    with open(npy, "r+b") as f:  # the header stays, every value after it is replaced
        f.seek(size - good.nbytes)
        f.write(np.full(good.size, np.nan if "nan" in payload else 0.5, dtype=np.float32).tobytes())
    if "no checksum" in payload:
        meta = json.loads(manifest.read_text())
        meta.pop("sha256", None)
        manifest.write_text(json.dumps(meta))
    assert npy.stat().st_size == size
    with caplog.at_level(logging.WARNING):
        again, errors = load_matrices_cached(files, 1, 32, "minmax", 1, cache)
    assert not errors and np.array_equal(again, good)
    assert f"data cache {npy} is damaged" in caplog.text and "rebuilding it from the .npz files" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # the rebuilt cache is whole again
        assert np.array_equal(load_matrices_cached(files, 1, 32, "minmax", 1, cache)[0], good)
    assert "damaged" not in caplog.text


def test_an_npy_header_claiming_1e11_samples_is_refused_before_any_allocation(tmp_path):
    """np.load believed the header: "unexpected MemoryError" (800 GB), or the OOM killer."""
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 1)})
        f.write(np.zeros(3000).tobytes())
    with pytest.raises(SemgError) as err:
        read_recording(path, ReaderSettings(), fs_hint=1000.0)
    assert err.value.path == str(path)
    assert "header claims shape (100000000000, 1) of float64 (800.0 GB) but the file holds 24.0 kB" in err.value.problem


def test_sizes_that_cannot_fit_in_memory_are_refused_in_one_line(tmp_path, monkeypatch):
    """spectrum.size=20000 (about 10 GB a matrix, in each worker) and a recording too long to convert: each
    estimated first and refused above max_memory_fraction of the available memory (here made 2 GB)."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * 10**9)
    src = tmp_path / "raw"
    src.mkdir()
    np.savetxt(src / "a_M_full.csv", emg_like(600, 1000.0)[:, None])
    with pytest.raises(
        SemgError, match=r"spectrum\.size=20000 needs about 9\.6 GB per matrix in each of 1 worker\(s\)"
    ):
        run_make_hht(src, tmp_path / "out", "spectrum.size=20000")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.npz"))
    assert run_make_hht(src, tmp_path / "out", "spectrum.size=32")["written"] == 1  # 0.5 of 2 GB: plenty
    np.save(tmp_path / "long.npy", np.zeros((2_000_000, 8)))  # 128 MB; with its copies and IMFs about 1.4 GB
    check = partial(memory.check_signal, max_imf=10, fraction=0.5, path=tmp_path / "long.npy")
    with pytest.raises(SemgError, match=r"signal of shape \(2000000, 8\) needs about 1\.4 GB to convert, more than "):
        read_recording(tmp_path / "long.npy", ReaderSettings(), fs_hint=1000.0, check_size=check)
    check = partial(memory.check_signal, max_imf=10, fraction=1.0, path=tmp_path / "long.npy")
    assert read_recording(tmp_path / "long.npy", ReaderSettings(), fs_hint=1000.0, check_size=check) is not None
