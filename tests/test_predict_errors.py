"""Bad input to predict.py / fit_svm.py: one clear SemgError (one line, exit 1), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from semg_hht.data.datamodule import renamed_data_keys
from semg_hht.errors import SemgError
from semg_hht.io import save_npz
from semg_hht.models import HHTClassifier
from semg_hht.models.loading import load_classifier
from semg_hht.svm import fit_svm
from tests.helpers import HP, ROOT, compose_cfg, data_hparams, matrix, run_predict, write_ckpt


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    for i in range(3):
        save_npz(folder / f"Test_{i:03d}.npz", hht=matrix(seed=i))
    return folder


@pytest.fixture
def ckpt(tmp_path, data_dir) -> Path:
    return write_ckpt(tmp_path / "best.ckpt", data_dir)


def test_synthesised_checkpoint_predicts(tmp_path, ckpt):
    rows = run_predict(tmp_path, f"ckpt={ckpt}")
    assert [r["file"] for r in rows] == ["Test_000.npz", "Test_001.npz", "Test_002.npz"]


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, d: p / "missing.ckpt", "checkpoint not found"),
        (lambda p, d: truncate(write_ckpt(p / "t.ckpt", d)), "not a readable semg-hht checkpoint"),
        (
            lambda p, d: (p / "n.ckpt").write_text("hello") and p / "n.ckpt",
            "not a readable semg-hht checkpoint",
        ),
        (lambda p, d: torch.save(torch.zeros(3), p / "z.ckpt") or p / "z.ckpt", "not a semg-hht Lightning"),
        (
            lambda p, d: write_ckpt(p / "s.ckpt", d, HP | {"base_channels": 8}),
            "do not fit its own architecture",
        ),
        (lambda p, d: write_ckpt(p / "v.ckpt", d, HP | {"new_key": 1}), "incompatible semg-hht version"),
        (lambda p, d: write_ckpt(p / "r.ckpt", d, HP | {"residual": True, "residual_from": 1}), "missing"),
        (lambda p, d: write_ckpt(p / "d.ckpt", d, datamodule_hyper_parameters=None), "no data settings"),
    ],
)
def test_bad_checkpoints(tmp_path, data_dir, make, message):
    with pytest.raises(SemgError, match=message):
        run_predict(tmp_path, f"ckpt={make(tmp_path, data_dir)}")


def test_metric_states_of_other_versions_do_not_matter(tmp_path, data_dir):
    state = {k: v for k, v in HHTClassifier(**HP).state_dict().items() if not k.startswith("val_acc_best")}
    ckpt = write_ckpt(tmp_path / "old.ckpt", data_dir, state_dict=state | {"old_metric.total": torch.zeros(1)})
    assert len(run_predict(tmp_path, f"ckpt={ckpt}")) == 3


def test_bad_checkpoint_for_fit_svm_too(tmp_path, data_dir):
    bad = truncate(write_ckpt(tmp_path / "t.ckpt", data_dir))
    with pytest.raises(SemgError, match="not a readable"):
        fit_svm(compose_cfg([f"paths.output_dir={tmp_path / 'svm'}", f"ckpt={bad}"], "fit_svm"))


def test_empty_input_folder_and_no_test_files(tmp_path, ckpt, data_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SemgError, match="no .npz files in the input folder"):
        run_predict(tmp_path, f"ckpt={ckpt}", f"input={tmp_path / 'empty'}")
    for test_file in data_dir.glob("Test_*"):
        test_file.rename(test_file.with_name("x" + test_file.name))
    with pytest.raises(SemgError, match=r"no unlabeled \(test\*\) .npz files"):
        run_predict(tmp_path, f"ckpt={ckpt}")


def test_wrong_size_matrix_is_named_or_skipped(tmp_path, ckpt, data_dir):
    save_npz(data_dir / "Test_big.npz", hht=matrix(size=64))
    with pytest.raises(SemgError, match=r"1 of 4 input files are unusable.*Test_big.npz.*shape \(64, 64\)"):
        run_predict(tmp_path, f"ckpt={ckpt}")
    rows = run_predict(tmp_path, f"ckpt={ckpt}", "bad_files=skip")
    assert len(rows) == 3


def test_cli_prints_one_line_and_exits_1(tmp_path, data_dir):
    bad = truncate(write_ckpt(tmp_path / "t.ckpt", data_dir))
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "SEMG_HHT_ROOT": str(tmp_path)}
    env.pop("HYDRA_FULL_ERROR", None), env.pop("SEMG_DEBUG", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "predict.py"), f"ckpt={bad}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: not a readable semg-hht checkpoint"), done.stderr
    assert not list(tmp_path.rglob("predictions.csv"))


def test_ctrl_c_while_writing_leaves_no_predictions_file_and_the_rerun_completes(tmp_path, ckpt, monkeypatch):
    import csv

    real = csv.DictWriter.writerows

    def interrupted(self, rows):
        real(self, list(rows)[:1])  # one row on disk, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(csv.DictWriter, "writerows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_predict(tmp_path, f"ckpt={ckpt}")
    out = tmp_path / "out"
    assert not (out / "predictions.csv").exists() and not [p for p in out.iterdir() if p.suffix == ".tmp"]
    monkeypatch.undo()
    rows = run_predict(tmp_path, f"ckpt={ckpt}")
    assert len(rows) == 3 and (out / "predictions.csv").read_text().count("\n") == 4


def test_a_checkpoint_of_an_older_version_with_data_normalize_reads_it_as_data_scaling(tmp_path, data_dir):
    """data.normalize was renamed data.scaling: a checkpoint that stores the old key predicts exactly
    as the same checkpoint with the new one."""
    old_settings = {k: v for k, v in data_hparams(data_dir).items() if k != "scaling"} | {"normalize": "none"}
    torch.manual_seed(0)
    old = write_ckpt(tmp_path / "old.ckpt", data_dir, datamodule_hyper_parameters=old_settings)
    torch.manual_seed(0)
    new = write_ckpt(
        tmp_path / "new.ckpt", data_dir, datamodule_hyper_parameters=data_hparams(data_dir) | {"scaling": "none"}
    )
    loaded = load_classifier(old).data_hparams
    assert loaded["scaling"] == "none" and "normalize" not in loaded
    assert run_predict(tmp_path / "a", f"ckpt={old}") == run_predict(tmp_path / "b", f"ckpt={new}")
    assert renamed_data_keys({"normalize": "none", "scaling": "recording"}) == {"scaling": "recording"}  # today's wins


def test_matrices_on_another_frequency_axis_than_the_model_was_trained_on_are_refused(tmp_path, data_dir):
    log_axis = {"frequency_axis": {"scale": "log", "range": [20.0, 450.0]}}
    trained_on_log = write_ckpt(tmp_path / "log.ckpt", data_dir, HHTDataModule=log_axis)
    assert load_classifier(trained_on_log).frequency_axis == ("log", (20.0, 450.0))
    with pytest.raises(SemgError, match=r"linear frequency axis.*trained on log.*spectrum.freq_scale=log"):
        run_predict(tmp_path, f"ckpt={trained_on_log}")  # the folder's Test* files: the default linear axis
    linear = write_ckpt(
        tmp_path / "linear.ckpt", data_dir, HHTDataModule={"frequency_axis": {"scale": "linear", "range": None}}
    )
    with pytest.raises(SemgError, match="different frequency axes"):
        run_predict(tmp_path, f"ckpt=[{trained_on_log},{linear}]")
    assert len(run_predict(tmp_path, f"ckpt={linear}")) == 3
    for i, path in enumerate(sorted(data_dir.glob("Test_*.npz"))):
        save_npz(path, hht=matrix(seed=i), freq_scale=np.str_("log"), freq_range=np.array([20.0, 450.0]))
    assert len(run_predict(tmp_path, f"ckpt={trained_on_log}", "overwrite=true")) == 3
    older = write_ckpt(tmp_path / "old.ckpt", data_dir)  # written before the axis was recorded: no check
    assert len(run_predict(tmp_path, f"ckpt={older}", "overwrite=true")) == 3
    assert len(run_predict(tmp_path, f"ckpt=[{trained_on_log},{older}]", "overwrite=true")) == 3  # unknown: no clash
