"""train(cfg) end to end on synthetic matrices: outputs, TensorBoard, resume, group split, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from semg_hht.errors import SemgError
from semg_hht.training import train


@pytest.fixture(scope="module")
def trained(synthetic_dir, tmp_path_factory):
    """One 2-epoch run shared by the output checks."""
    from tests.helpers import TINY, compose_cfg

    out = tmp_path_factory.mktemp("run")
    cfg = compose_cfg([*TINY, f"paths.data_dir={synthetic_dir}", f"paths.output_dir={out}", "logger=many"])
    return out, train(cfg)


def test_run_dir_has_everything_a_researcher_looks_at(trained):
    out, metrics = trained
    for name in [
        "metrics.json", "split.csv", "classification_report.txt", "confusion_matrix.png",
        "training_curves.png", "history.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "saliency.png",
    ]:  # fmt: skip
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["epochs"] == 2 and saved["classes"] == ["full", "half", "invalid"]
    assert 0 <= saved["val/acc"] <= 1 and saved["val/chance"] == pytest.approx(1 / 3, abs=0.1)
    assert saved["val/acc_best"] == pytest.approx(metrics["val/acc_best"])
    assert "precision" in (out / "classification_report.txt").read_text()


def test_split_file_lists_every_labelled_recording_once(trained, synthetic_dir):
    out, metrics = trained
    rows = list(csv.DictReader((out / "split.csv").open()))
    assert len(rows) == metrics["n_train"] + metrics["n_val"] == 36  # Test_ files are not in it
    assert {r["subset"] for r in rows} == {"train", "val"}
    assert len({r["file"] for r in rows}) == 36


def test_validation_predictions_are_the_scored_figures(trained):
    """val_predictions.csv holds every validation file once, with probabilities that give val/acc."""
    out, metrics = trained
    rows = list(csv.DictReader((out / "val_predictions.csv").open()))
    val = {r["file"] for r in csv.DictReader((out / "split.csv").open()) if r["subset"] == "val"}
    assert len(rows) == metrics["n_val"] and {r["file"] for r in rows} == val
    probs = np.array([[float(r[f"p_{c}"]) for c in ("full", "half", "invalid")] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    hits = [["full", "half", "invalid"][p.argmax()] == r["true"] for p, r in zip(probs, rows, strict=True)]
    assert np.mean(hits) == pytest.approx(metrics["val/acc"])


def test_tensorboard_has_scalars_lr_hparams_and_confusion_images(trained):
    out, _ = trained
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "val/f1_macro"} <= scalars
    assert any(tag.startswith("lr-") for tag in scalars)
    assert "val/confusion_matrix" in events.Tags()["images"]
    # callbacks.confusion_matrix.every_n_epochs=10: of 2 epochs, only the last
    assert [image.step for image in events.Images("val/confusion_matrix")] == [1]
    assert len(events.Images("val/saliency")) == 1  # once, at the end of fit
    hparams = [f for f in (out / "tensorboard").iterdir() if f.name.startswith("events")]
    assert any(b"val/acc_best" in f.read_bytes() and b"num_layers" in f.read_bytes() for f in hparams)
    assert (out / "csv" / "metrics.csv").is_file()


def test_confusion_images_come_every_n_epochs_and_after_the_last():
    from types import SimpleNamespace

    from semg_hht.training.callbacks import ConfusionMatrixImage

    image = ConfusionMatrixImage("val/confusion_matrix", every_n_epochs=3)
    due = [image.due(SimpleNamespace(current_epoch=e, max_epochs=8, should_stop=False)) for e in range(8)]
    assert [e for e, d in enumerate(due) if d] == [2, 5, 7]
    assert image.due(SimpleNamespace(current_epoch=3, max_epochs=8, should_stop=True))  # early stopping
    with pytest.raises(SemgError, match="every_n_epochs"):
        ConfusionMatrixImage("val/confusion_matrix", every_n_epochs=0)


def test_checkpoint_is_self_contained_and_weights_only(trained):
    out, _ = trained
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    hp = checkpoint["hyper_parameters"]
    assert hp["class_names"] == ["full", "half", "invalid"] and hp["num_layers"] == 2
    assert hp["optimizer"]["name"] == "AdamW" and checkpoint["datamodule_hyper_parameters"]["split_seed"] == 42


def test_resume_continues_at_the_next_epoch(trained, train_cfg, tmp_path):
    out, _ = trained
    metrics = train(train_cfg(f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=3"))
    assert metrics["epochs"] == 3
    with (tmp_path / "run" / "history.csv").open() as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2]  # restored epochs + the one trained now


def test_resume_refuses_a_checkpoint_of_another_model(trained, train_cfg):
    out, _ = trained
    with pytest.raises(SemgError, match=r"num_layers: checkpoint 2, config 3"):
        train(train_cfg(f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "model.num_layers=3"))
    with pytest.raises(SemgError, match=r"leaky_slope: checkpoint 0.2, config 0.1"):  # every encoder argument
        train(train_cfg(f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "model.leaky_slope=0.1"))


def test_group_split_by_subject_from_the_manifest(train_cfg, tmp_path):
    metrics = train(
        train_cfg(
            "data.label_source=manifest",
            "data.manifest=manifest.csv",
            "data.split=group",
            "data.n_folds=4",
            "data.fold=1",
            "data.target=gender",
            "trainer.max_epochs=1",
        )
    )
    rows = list(csv.DictReader((tmp_path / "run" / "split.csv").open()))
    train_subjects = {r["subject"] for r in rows if r["subset"] == "train"}
    val_subjects = {r["subject"] for r in rows if r["subset"] == "val"}
    assert len(val_subjects) == 1 and not train_subjects & val_subjects
    assert metrics["classes"] == ["M", "F"] and metrics["val/subject_vote_acc"] in (0.0, 1.0)


@pytest.mark.parametrize("target", ["gender", "gender_movement"])
def test_other_targets(train_cfg, target):
    metrics = train(train_cfg(f"data.target={target}", "trainer.max_epochs=1", "~callbacks.periodic_checkpoint"))
    assert len(metrics["classes"]) == (2 if target == "gender" else 6)


def _copy(src, dst, n=None):
    dst.mkdir()
    for p in sorted(src.glob("*.npz"))[:n]:
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


@pytest.mark.parametrize(
    ("break_data", "overrides", "message"),
    [
        (lambda d: d / "missing", [], "data folder not found"),
        (lambda d: (d / "empty").mkdir() or d / "empty", [], "no .npz files"),
        (None, ["model.num_layers=6"], "num_layers=6 is out of range"),
        (None, ["data.target=speed"], "data.target='speed' is not one of"),
    ],
)
def test_bad_input_is_one_clear_error(train_cfg, tmp_path, break_data, overrides, message):
    data_dir = break_data(tmp_path) if break_data else None
    with pytest.raises(SemgError, match=message) as err:
        train(train_cfg(*overrides, data_dir=data_dir))
    assert "\n" not in str(err.value)


def test_corrupt_files_fail_by_default_and_are_listed_then_skipped_on_request(synthetic_dir, train_cfg, tmp_path):
    data = _copy(synthetic_dir, tmp_path / "data")
    (data / "BICEPS_full_M_999.npz").write_bytes(b"garbage")
    np.savez(data / "BICEPS_half_F_998.npz", hht=np.full((32, 32), np.nan))
    (data / "BICEPS_stretch_M_997.npz").write_bytes(b"")
    with pytest.raises(SemgError, match=r"3 of 41 files are unusable.*data.bad_files=skip"):
        train(train_cfg(data_dir=data))
    metrics = train(train_cfg("data.bad_files=skip", "trainer.max_epochs=1", data_dir=data))
    assert metrics["n_train"] + metrics["n_val"] == 36


def test_a_class_too_small_to_stratify(synthetic_dir, train_cfg, tmp_path):
    data = _copy(synthetic_dir, tmp_path / "data")
    for p in list(data.glob("*_invalid_*"))[1:]:
        p.unlink()
    with pytest.raises(SemgError, match=r"fewer than 2 recordings: \{'invalid': 1\}"):
        train(train_cfg(data_dir=data))


def test_fast_dev_run_smoke_test(train_cfg, tmp_path):
    metrics = train(train_cfg("trainer.fast_dev_run=true"))
    assert metrics["best_checkpoint"] is None  # no best: the report scores the in-memory model
    assert metrics["n_val"] > 0 and (tmp_path / "run" / "metrics.json").is_file()


def test_resumed_run_keeps_the_best_accuracy_so_far(trained, train_cfg):
    out, first = trained
    resumed = train(train_cfg(f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=3"))
    assert resumed["val/acc_best"] >= first["val/acc_best"]


def test_contradicting_lightning_settings_are_one_line(train_cfg):
    cfg = train_cfg("+callbacks.bar._target_=lightning.pytorch.callbacks.RichProgressBar")
    with pytest.raises(
        SemgError, match="conflicting settings: Trainer was configured with `enable_progress_bar=False`"
    ):
        train(cfg)


def test_report_scores_the_best_checkpoint_or_the_last_epoch(trained, train_cfg, tmp_path):
    _, best = trained
    assert best["scored_model"] == "best" and best["val/acc"] == pytest.approx(best["val/acc_best"])
    last = train(train_cfg("report_on=last", "trainer.max_epochs=3"))
    history = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert last["scored_model"] == "last"
    assert last["val/acc"] == pytest.approx(float(history[-1]["val/acc"]))  # the final epoch, not the best one


def test_unknown_report_on_fails_before_training(train_cfg, tmp_path):
    with pytest.raises(SemgError, match="report_on='bset' is not one of best, last"):
        train(train_cfg("report_on=bset"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_class_mean_differences_show_where_classes_differ(trained):
    from semg_hht.reporting.plots import class_mean_differences

    out, _ = trained
    assert (out / "class_mean_spectra.png").is_file()
    x = np.zeros((4, 1, 4, 4))
    x[:2, 0, 0, :] = 1.0  # class 0: energy in the lowest frequency row
    x[2:, 0, 3, :] = 1.0  # class 1: in the highest
    diffs = class_mean_differences(x, np.array([0, 0, 1, 1]), 3)
    assert diffs.shape == (3, 1, 4, 4) and not diffs[2].any()  # class 2 absent
    assert diffs[0, 0, 0].min() > 0 and diffs[0, 0, 3].max() < 0 and diffs[1, 0, 3].min() > 0
