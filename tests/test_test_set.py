"""The test set (data.test_dir / data.test_filter), the test stage of train.py and data.split=none."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from semg_hht.data.splits import stratified_split
from semg_hht.errors import SemgError
from semg_hht.reporting.report import classification_metrics
from semg_hht.training import train

MANIFEST = ["data.label_source=manifest", "data.manifest=manifest.csv"]
HOLD_OUT_S04 = "data.test_filter={subject:[S04]}"


def test_final_model_on_everyone_then_scored_on_held_out_people(train_cfg, tmp_path):
    metrics = train(train_cfg(*MANIFEST, "experiment=final_model", HOLD_OUT_S04, "logger=many"))
    out = tmp_path / "run"
    assert metrics["split"] == "none" and metrics["n_val"] == 0
    assert metrics["n_train"] == 27 and metrics["n_test"] == 9  # S04's 9 recordings never train
    assert not any(k.startswith("val/") and v is not None for k, v in metrics.items())
    for key in ("test/acc", "test/balanced_acc", "test/f1_macro", "test/chance", "test/recording_acc"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["test/recording_acc"] == metrics["test/acc"]  # one matrix per recording
    assert np.array(metrics["test/confusion_matrix"]).sum() == 9
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])
    rows = list(csv.DictReader((out / "test_predictions.csv").open()))
    assert len(rows) == 9 and {r["subject"] for r in rows} == {"S04"}
    assert list(rows[0])[:5] == ["file", "subject", "recording", "true", "predicted"]
    hits = [r["true"] == r["predicted"] for r in rows]
    assert np.mean(hits) == pytest.approx(metrics["test/acc"])
    probs = np.array([[float(r[f"p_{c}"]) for c in ("full", "half", "invalid")] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (out / "test_confusion_matrix.png").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert not (out / "checkpoints" / "best.ckpt").exists()
    assert not (out / "saliency.png").exists()  # no validation set: the saliency callback does nothing
    split = list(csv.DictReader((out / "split.csv").open()))
    assert {r["subset"] for r in split} == {"train", "test"}
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert {"test/acc", "test/balanced_acc", "test/recording_acc", "test/loss"} <= set(events.Tags()["scalars"])


def test_cross_validation_fold_reports_val_and_test_side_by_side(train_cfg):
    metrics = train(train_cfg(*MANIFEST, "data.split=group", "data.n_folds=3", HOLD_OUT_S04))
    assert metrics["n_train"] + metrics["n_val"] == 27 and metrics["n_test"] == 9
    assert metrics["val/acc"] is not None and metrics["test/acc"] is not None


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["data.test_filter={movement:[full]}"], "in both the training side and the test set"),
        (["data.test_filter={subject:[S99]}"], "no manifest row matches data.test_filter"),
        (["data.split=none"], "set report_on=last"),
        (["data.split=none", "report_on=last"], "callbacks.model_checkpoint watches val/acc"),
        (["data.split=none", "report_on=last", "~callbacks.model_checkpoint"], "scheduler plateau cuts"),
        (["test=true"], "no test set is configured"),
    ],
)
def test_settings_that_cannot_work_are_one_line_before_training(train_cfg, tmp_path, overrides, match):
    with pytest.raises(SemgError, match=match):
        train(train_cfg(*MANIFEST, *overrides))
    assert not (tmp_path / "run" / "metrics.json").exists()


def _copy_set(src, dst, rows):
    dst.mkdir()
    for row in rows:
        shutil.copy(src / row["file"], dst / row["file"])
    with (dst / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_separate_test_folder_overlap_and_unknown_classes(train_cfg, synthetic_dir, tmp_path):
    rows = list(csv.DictReader((synthetic_dir / "manifest.csv").open()))
    same = [r for r in rows if r["subject"] == "S04"]
    _copy_set(synthetic_dir, tmp_path / "copy", same)
    with pytest.raises(SemgError, match="in both the training side and the test set"):  # same people, other files
        train(train_cfg(*MANIFEST, f"data.test_dir={tmp_path / 'copy'}"))
    with pytest.raises(SemgError, match="also training recordings"):  # the training folder itself
        train(train_cfg(*MANIFEST, f"data.test_dir={synthetic_dir}"))
    new = [r | {"subject": "N01", "movement": "sideways" if i == 0 else r["movement"]} for i, r in enumerate(same)]
    _copy_set(synthetic_dir, tmp_path / "new", new)
    with pytest.raises(SemgError, match=r"test labels \['sideways'\] are not among the trained classes"):
        train(train_cfg(*MANIFEST, f"data.test_dir={tmp_path / 'new'}"))
    ok = train(train_cfg(*MANIFEST, f"data.test_dir={tmp_path / 'new'}", "data.test_filter={movement:[full,half]}"))
    assert ok["n_test"] == 5  # the sideways row is filtered out and 0 <= ok["test/acc"] <= 1


def test_recording_vote_averages_window_probabilities():
    # Two recordings of 3 windows each: windows 2/3 right in each, but recording 1's wrong window is
    # very confident, so the mean probability gets recording 1 wrong: window acc 4/6, recording acc 1/2.
    y = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.01, 0.99], [0.3, 0.7], [0.4, 0.6], [0.55, 0.45]])
    units = ["a", "a", "a", "b", "b", "b"]
    scores = classification_metrics(y, probs.argmax(1), ["x", "y"], [None] * 6, units, probs)
    assert scores["acc"] == pytest.approx(4 / 6)
    assert scores["recording_acc"] == pytest.approx(0.5) and scores["n_recordings"] == 2
    votes = classification_metrics(y, probs.argmax(1), ["x", "y"], [None] * 6, units)  # majority of hard votes
    assert votes["recording_acc"] == 1.0
    alone = classification_metrics(y, probs.argmax(1), ["x", "y"], [None] * 6)
    assert alone["recording_acc"] == alone["acc"]


def test_stratified_split_keeps_the_windows_of_a_recording_together():
    y = np.repeat([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 4)  # 10 recordings x 4 windows
    units = np.repeat(np.arange(10), 4)
    train_rows, val_rows = stratified_split(y, ["a", "b"], 0.2, seed=1, units=units.tolist())
    assert len(val_rows) == 8 and not set(units[train_rows]) & set(units[val_rows])
    plain_train, _ = stratified_split(y[::4], ["a", "b"], 0.2, seed=1)
    assert sorted(set(units[train_rows])) == plain_train.tolist()  # the same draw over recordings


def test_svms_score_the_held_out_people_too(train_cfg, synthetic_dir, tmp_path):
    """fit_svm on the final model's encoder, and the random-encoder baseline with data.split=none:
    fitted on everyone but the test people, scored on them (test/* in metrics.json)."""
    from semg_hht.svm import fit_svm
    from tests.helpers import compose_cfg

    train(train_cfg(*MANIFEST, "experiment=final_model", HOLD_OUT_S04))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    on_cnn = fit_svm(compose_cfg([f"paths.output_dir={tmp_path / 'svm'}", f"ckpt={ckpt}", "target=gender"], "fit_svm"))
    random = fit_svm(
        compose_cfg(
            [
                f"paths.output_dir={tmp_path / 'random'}", "ckpt=null", "target=gender",
                f"paths.data_dir={synthetic_dir}",
                "data.input_size=32", "model.num_layers=2", "model.base_channels=4", *MANIFEST, "data.split=none",
                HOLD_OUT_S04,
            ],
            "fit_svm",
        )
    )  # fmt: skip
    for metrics, folder in ((on_cnn, "svm"), (random, "random")):
        assert metrics["n_val"] == 0 and metrics["n_test"] == 9 and metrics["test/subjects"] == ["S04"]
        assert 0 <= metrics["test/acc"] <= 1 and metrics["test/chance"] == 1.0  # one person: one gender
        assert (tmp_path / folder / "test_confusion_matrix.png").is_file()


def test_per_person_accuracy_is_reported_and_drawn(tmp_path):
    from semg_hht.reporting.report import write_split_report

    y = np.array([0, 1, 0, 1, 0, 1])
    pred = np.array([0, 1, 1, 0, 0, 1])
    scores = classification_metrics(y, pred, ["a", "b"], ["p1", "p1", "p2", "p2", "p3", "p3"])
    assert scores["per_subject_acc"] == {"p1": 1.0, "p2": 0.0, "p3": 1.0}
    metrics = write_split_report(tmp_path, "test", scores, ["a", "b"], "last epoch")
    assert metrics["test/per_subject_acc"]["p2"] == 0.0
    assert (tmp_path / "test_per_person_accuracy.png").is_file() and (tmp_path / "test_confusion_matrix.png").is_file()
