"""Train (tiny, 2 epochs) -> fit_svm -> predict on synthetic matrices with a planted gender effect."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from semg_hht.errors import SemgError
from semg_hht.prediction import predict
from semg_hht.svm import fit_svm
from semg_hht.synth.matrices import make_dataset
from semg_hht.training import train
from tests.config_keys import unread_keys
from tests.helpers import TINY, compose_cfg

RANDOM_ENCODER = ["data.input_size=32", "model.num_layers=3", "model.base_channels=8", "data.load_workers=2"]
METRIC_KEYS = {
    "train/acc", "train/balanced_acc", "val/acc", "val/balanced_acc", "val/f1_macro", "val/chance",
    "val/subject_vote_acc", "val/confusion_matrix", "target", "classes", "encoder", "feature_dim",
    "n_train", "n_val", "split_source", "svm", "grid_search",
}  # fmt: skip


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """8 subjects (4 M, 4 F) x 3 movements x 4 recordings: enough for a stable gender estimate."""
    out = tmp_path_factory.mktemp("svm_data")
    make_dataset(out, subjects=8, per_class=4, size=32, unlabeled=3, seed=0)
    return out


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> Path:
    """best.ckpt of a tiny movement CNN trained on data_dir (the run folder holds split.csv)."""
    run = tmp_path_factory.mktemp("train") / "run"
    train(compose_cfg([*TINY, f"paths.data_dir={data_dir}", f"paths.output_dir={run}", "logger=csv"]))
    return run / "checkpoints" / "best.ckpt"


def svm_cfg(out: Path, *overrides: str):
    return compose_cfg([f"paths.output_dir={out}", *overrides], "fit_svm")


def predict_cfg(out: Path, *overrides: str):
    return compose_cfg([f"paths.output_dir={out}", *overrides], "predict")


@pytest.fixture(scope="module")
def fitted(trained, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fit_svm")
    return out, fit_svm(svm_cfg(out, f"ckpt={trained}"))


def test_gender_svm_on_trained_encoder_is_well_above_chance(fitted, trained):
    _, metrics = fitted
    assert metrics["target"] == "gender" and metrics["classes"] == ["M", "F"]
    assert metrics["encoder"] == "checkpoint" and metrics["n_val"] >= 16
    assert metrics["val/balanced_acc"] >= 0.75 > metrics["val/chance"] + 0.15


def test_fit_svm_writes_complete_outputs(fitted, trained):
    out, metrics = fitted
    for name in (
        "svm.skops",
        "svm.json",
        "metrics.json",
        "classification_report.txt",
        "confusion_matrix.png",
    ):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= METRIC_KEYS
    assert np.array(saved["val/confusion_matrix"]).sum() == saved["n_val"]
    assert "M" in (out / "classification_report.txt").read_text()
    sidecar = json.loads((out / "svm.json").read_text())
    assert sidecar["encoder"]["checkpoint_sha256"] and sidecar["feature_dim"] == metrics["feature_dim"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_svm_uses_the_checkpoints_own_split(fitted, trained):
    out, _ = fitted
    trained_split = {(Path(r["file"]).name, r["subset"]) for r in read_csv(trained.parent.parent / "split.csv")}
    svm_split = {(Path(r["file"]).name, r["subset"]) for r in read_csv(out / "split.csv")}
    assert svm_split == trained_split  # no recording the CNN trained on is in the SVM's validation set
    assert {r["label"] for r in read_csv(out / "split.csv")} == {"M", "F"}


def test_random_encoder_baseline(data_dir, tmp_path):
    metrics = fit_svm(svm_cfg(tmp_path, "ckpt=null", f"paths.data_dir={data_dir}", *RANDOM_ENCODER))
    assert metrics["encoder"] == "random" and metrics["checkpoint"] is None
    assert metrics["val/balanced_acc"] >= 0.75
    assert json.loads((tmp_path / "svm.json").read_text())["encoder"]["kind"] == "random"


def test_group_split_grid_search_and_subject_vote(data_dir, tmp_path):
    metrics = fit_svm(
        svm_cfg(
            tmp_path, "ckpt=null", f"paths.data_dir={data_dir}", *RANDOM_ENCODER,
            "data.label_source=manifest", "data.manifest=manifest.csv", "data.split=group", "data.n_folds=4",
            "svm.grid_search.enabled=true", "svm.grid_search.C=[1.0,10.0]", "svm.grid_search.gamma=[scale]",
        )
    )  # fmt: skip
    assert metrics["grid_search"]["folds"].endswith("subject")
    assert metrics["grid_search"]["best_params"]["C"] in (1.0, 10.0)
    assert metrics["val/subject_vote_acc"] is not None


@pytest.mark.parametrize("config", ["fit_svm", "predict"])
def test_every_key_of_the_svm_configs_is_read(config, tmp_path):
    cfg = compose_cfg([f"paths.output_dir={tmp_path}"], config)
    OmegaConf.resolve(cfg.paths)
    assert unread_keys(cfg) == []


def test_moved_data_folder_still_matches_but_changed_one_is_refused(trained, data_dir, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    metrics = fit_svm(svm_cfg(tmp_path / "ok", f"ckpt={trained}", f"data_dir={moved}"))
    assert metrics["split_source"].endswith("split.csv")
    next(moved.glob("*_F_*.npz")).unlink()
    with pytest.raises(SemgError, match="no longer matches"):
        fit_svm(svm_cfg(tmp_path / "bad", f"ckpt={trained}", f"data_dir={moved}"))


def test_a_data_folder_on_another_frequency_axis_is_refused(trained, data_dir, tmp_path):
    log_axis = tmp_path / "log"
    shutil.copytree(data_dir, log_axis)
    for path in log_axis.glob("*.npz"):  # the same matrices, said to be on a log axis
        with np.load(path) as archive:
            arrays = dict(archive)
        np.savez(path, **arrays, freq_scale=np.str_("log"), freq_range=np.array([20.0, 450.0]))
    with pytest.raises(SemgError, match="log 20-450 Hz frequency axis, the model was trained on linear"):
        fit_svm(svm_cfg(tmp_path / "svm", f"ckpt={trained}", f"data_dir={log_axis}"))


def test_predict_writes_movement_and_gender_for_test_files(fitted, trained, tmp_path, capsys):
    out, _ = fitted
    rows = predict(predict_cfg(tmp_path, f"ckpt={trained}", f"svm={out / 'svm.skops'}", "batch_size=2"))
    printed = capsys.readouterr().out
    written = read_csv(tmp_path / "predictions.csv")
    assert [r["file"] for r in written] == ["Test_001.npz", "Test_002.npz", "Test_003.npz"] and len(rows) == 3
    assert list(written[0]) == [
        "file", "movement", "movement_confidence", "p_movement_full", "p_movement_half", "p_movement_invalid",
        "gender", "gender_confidence", "p_gender_M", "p_gender_F",
    ]  # fmt: skip
    for row in written:
        for target, classes in (("movement", ("full", "half", "invalid")), ("gender", ("M", "F"))):
            probs = np.array([float(row[f"p_{target}_{c}"]) for c in classes])
            assert probs.sum() == pytest.approx(1.0, abs=1e-5)
            assert float(row[f"{target}_confidence"]) == pytest.approx(probs.max())
            assert row[target] == classes[int(probs.argmax())]
    assert "Test_001.npz" in printed and "gender" in printed


def test_predict_without_svm_and_refusing_to_overwrite(trained, data_dir, tmp_path):
    target = tmp_path / "mine.csv"
    cfg = predict_cfg(tmp_path, f"ckpt={trained}", f"input={data_dir}", f"output={target}")
    rows = predict(cfg)
    assert len(rows) == len(list(data_dir.glob("*.npz"))) and "gender" not in rows[0]
    with pytest.raises(SemgError, match="overwrite"):
        predict(cfg)
    predict(predict_cfg(tmp_path, f"ckpt={trained}", f"input={data_dir}", f"output={target}", "overwrite=true"))


def test_random_encoder_svm_scores_new_people_and_says_it_is_the_baseline(data_dir, tmp_path, capsys):
    fit_svm(svm_cfg(tmp_path / "random", "ckpt=null", f"paths.data_dir={data_dir}", *RANDOM_ENCODER))
    new = tmp_path / "new"
    make_dataset(new, subjects=2, per_class=2, size=32, unlabeled=0, seed=7)  # 2 people never seen
    rows = predict(predict_cfg(tmp_path / "p", "ckpt=null", f"svm={tmp_path / 'random' / 'svm.skops'}", f"input={new}"))
    assert len(rows) == 12 and {"gender", "true_gender"} <= set(rows[0]) and "movement" not in rows[0]
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["acc"] == pytest.approx(np.mean([r["gender"] == r["true_gender"] for r in rows]))
    assert metrics["targets"]["gender"]["source"].startswith("random-encoder SVM baseline")
    assert "random-encoder SVM baseline" in capsys.readouterr().out


def test_manifest_input_with_cnn_and_svm_scores_both_targets(fitted, trained, data_dir, tmp_path):
    out, _ = fitted
    rows = predict(
        predict_cfg(
            tmp_path, f"ckpt={trained}", f"svm={out / 'svm.skops'}", f"input={data_dir / 'manifest.csv'}",
            "filter={subject:[S01,S02]}",
        )
    )  # fmt: skip
    assert len(rows) == 24 and {r["subject"] for r in rows} == {"S01", "S02"}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["targets"]) == {"movement", "gender"}
    for target in ("movement", "gender"):
        hits = np.mean([r[target] == r[f"true_{target}"] for r in rows])
        assert metrics["targets"][target]["acc"] == pytest.approx(hits)
        assert (tmp_path / f"confusion_matrix_{target}.png").is_file()
    assert metrics["targets"]["gender"]["subject_vote_acc"] is not None  # one gender per person


def test_predict_refuses_svm_of_another_encoder(fitted, trained, data_dir, tmp_path):
    other = tmp_path / "other.ckpt"
    checkpoint = torch.load(trained, weights_only=True)
    checkpoint["epoch"] = -1  # same architecture, another file
    torch.save(checkpoint, other)
    with pytest.raises(SemgError, match="another checkpoint"):
        predict(predict_cfg(tmp_path, f"ckpt={other}", f"svm={fitted[0] / 'svm.skops'}"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_bf16_features_agree_with_cpu(fitted, trained, tmp_path):
    svm = f"svm={fitted[0] / 'svm.skops'}"
    cpu = predict(predict_cfg(tmp_path / "cpu", f"ckpt={trained}", svm, "device=cpu"))
    gpu = predict(predict_cfg(tmp_path / "gpu", f"ckpt={trained}", svm, "device=cuda", "bf16=true"))
    for a, b in zip(cpu, gpu, strict=True):
        assert a["movement_confidence"] == pytest.approx(b["movement_confidence"], abs=0.05)
        assert a["gender_confidence"] == pytest.approx(b["gender_confidence"], abs=0.1)
    metrics = fit_svm(svm_cfg(tmp_path / "svm", f"ckpt={trained}", "device=cuda", "bf16=true"))
    assert metrics["device"].startswith("cuda") and metrics["val/balanced_acc"] >= 0.75


def test_a_validation_fold_with_one_class_is_scored_with_a_warning(tmp_path, caplog):
    """Subject folds of men only happen with few women (MuscleTracker gender fold 4): with one
    person per fold every validation side has one gender."""
    import logging

    data = tmp_path / "data"
    make_dataset(data, subjects=6, per_class=2, size=32, unlabeled=0, seed=1)
    cfg = compose_cfg(
        [
            "ckpt=null", f"paths.data_dir={data}", f"paths.output_dir={tmp_path / 'out'}", "data.input_size=32",
            "model.num_layers=2", "model.base_channels=4", "data.label_source=manifest", "data.manifest=manifest.csv",
            "data.split=group", "data.n_folds=6", "data.fold=0",
        ],
        "fit_svm",
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        metrics = fit_svm(cfg)
    assert "one 'gender' class only" in caplog.text
    assert 0.0 <= metrics["val/acc"] <= 1.0
