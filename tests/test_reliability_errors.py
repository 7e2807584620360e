"""Issue #13's tracebacks, each now one line naming the file or key, exit status 1 (the table
runner of test_bad_input_sweep.py, with the checkpoint fixture)."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from semg_hht.errors import run_guarded
from semg_hht.hht import manifest as hht_manifest
from semg_hht.svm.persist import save_svm
from tests.helpers import error_lines, manifest_case


def _recordingmanifest_case(t: Path, text: str) -> tuple[list[str], Path]:
    (t / "raw").mkdir()
    np.savetxt(t / "raw" / "a.csv", np.random.default_rng(0).standard_normal(600))
    (t / "raw" / "list.csv").write_text(text)
    return [f"input={t / 'raw' / 'list.csv'}", f"output={t / 'o'}", "reader.fs=1000"], t / "raw" / "list.csv"


def _epoch(t: Path, c: Path, epoch: int) -> Path:
    state = torch.load(c, weights_only=True)
    state["epoch"] = epoch
    torch.save(state, t / "e.ckpt")
    return t / "e.ckpt"


def _foreign_svm(t: Path, c: Path) -> tuple[list[str], Path]:
    path = save_svm(t / "svm.skops", Pipeline([("svc", SVC(probability=True))]), {"target": "gender"})
    return [f"ckpt={c}", f"svm={path}"], path


def _file(t: Path) -> Path:
    (t / "f").write_text("x")
    return t / "f"


CASES = {
    "make_hht/manifest-extra-field": ("make_hht", lambda t, d, c: _recordingmanifest_case(t, "path,movement\na.csv,full,x\n"), "line 2 has more fields than the header"),
    "train/manifest-extra-field": ("train", lambda t, d, c: manifest_case(t, d, "file,movement\na.npz,full,x\n"), "line 2 has more fields than the header"),
    "train/max_epochs-abc": ("train", lambda t, d, c: (["trainer.max_epochs=abc"], None), "trainer.max_epochs='abc' is not an integer"),
    "train/max_epochs-0": ("train", lambda t, d, c: (["trainer.max_epochs=0"], None), "trainer.max_epochs=0 is not an integer >= 1"),
    "train/batch_size-0": ("train", lambda t, d, c: (["data.batch_size=0"], None), "data.batch_size=0"),
    "train/batch_size-neg": ("train", lambda t, d, c: (["data.batch_size=-4"], None), "data.batch_size=-4"),
    "train/eval_batch_size-0": ("train", lambda t, d, c: (["data.eval_batch_size=0"], None), "data.eval_batch_size=0"),
    "train/lr-neg": ("train", lambda t, d, c: (["optimizer.lr=-1"], None), "optimizer.lr=-1"),
    "train/seed-abc": ("train", lambda t, d, c: (["seed=abc"], None), "seed='abc'"),
    "train/dropout": ("train", lambda t, d, c: (["model.dropout=1.5"], None), "model.dropout=1.5 is not a number >= 0 and < 1"),
    "train/resume-below-epoch": ("train", lambda t, d, c: ([f"ckpt_path={_epoch(t, c, 5)}", "trainer.max_epochs=3"], t / "e.ckpt"), "below the 6 epochs"),
    "train/no-logger-lr-monitor": ("train", lambda t, d, c: (["~logger"], None), "no logger is configured"),
    "make_hht/output-is-file": ("make_hht", lambda t, d, c: ([f"input={d}", f"output={_file(t)}"], t / "f"), "existing file, not a folder"),
    "make_hht/output-under-file": ("make_hht", lambda t, d, c: ([f"input={d}", f"output={_file(t) / 'o'}"], t / "f" / "o"), "cannot create the output folder"),
    "make_hht/output-is-input": ("make_hht", lambda t, d, c: ([f"input={d}", f"output={d}"], d), "output is the input folder"),
    "predict/output-is-folder": ("predict", lambda t, d, c: ([f"ckpt={c}", f"output={t}", "overwrite=true"], t), "existing folder, not a file"),
    "predict/output-not-writable": ("predict", lambda t, d, c: ([f"ckpt={c}", f"output={_file(t) / 'p.csv'}"], t / "f" / "p.csv"), "not a writable folder"),
    "predict/foreign-svm": ("predict", lambda t, d, c: _foreign_svm(t, c), "unfitted or foreign pipeline"),
    "fit_svm/C-neg": ("fit_svm", lambda t, d, c: (["svm.C=-1"], None), "svm.C=-1 is not a number > 0"),
}  # fmt: skip


def _run(entry: str, overrides: list[str], tmp_path: Path, synthetic_dir: Path, capsys) -> str:
    lines = error_lines(entry, overrides, tmp_path, synthetic_dir, capsys)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_was_a_traceback_now_one_line(case, synthetic_dir, checkpoint, tmp_path, capsys):
    entry, make, message = CASES[case]
    overrides, named = make(tmp_path, synthetic_dir, checkpoint)
    line = _run(entry, overrides, tmp_path, synthetic_dir, capsys)
    assert message in line, line
    if named is not None:
        assert str(named) in line, line


def test_make_hht_manifest_write_on_a_full_disk_keeps_the_matrices(tmp_path, monkeypatch, capsys):
    overrides, _ = _recordingmanifest_case(tmp_path, "path,movement,gender\na.csv,full,M\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hht_manifest, "write_csv", full)
    line = _run("make_hht", [*overrides, "progress=false", "workers=1"], tmp_path, tmp_path, capsys)
    assert "manifest.csv: could not write the manifest (No space left on device)" in line
    assert "rerun the same command" in line and len(list((tmp_path / "o").glob("*.npz"))) == 1


def test_an_os_error_naming_a_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_guarded(lambda: open(tmp_path / "no" / "x.csv", "w"))  # noqa: SIM115
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'no' / 'x.csv'}: No such file or directory"
        " -> check the path, its permissions and the free disk space"
    )
