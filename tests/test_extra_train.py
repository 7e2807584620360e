"""data.extra_train: manifest rows added to the training side only (e.g. a second device's people),
never to validation or test, with the validation people exactly those of the run without it."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch

from semg_hht.data.labels import read_manifest
from semg_hht.errors import SemgError
from semg_hht.synth.matrices import make_dataset
from semg_hht.training import train
from semg_hht.training.train import build_datamodule

# S01-S05 on device "a", S06-S08 on device "b"; S05 has two of its recordings on "b" too
DEVICES = ["data.label_source=manifest", "data.manifest=devices.csv", "data.split=group", "data.n_folds=3"]
ON_A, PLUS_B = "+data.filter.device=a", "data.extra_train={device:b}"
B_PEOPLE = {"S05", "S06", "S07", "S08"}


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_devices")
    rows = make_dataset(out, subjects=8, per_class=2, size=32, unlabeled=0, seed=1)
    s05 = [r for r in rows if r["subject"] == "S05"]
    for row in rows:
        row["device"] = "b" if row["subject"] in ("S06", "S07", "S08") or row in s05[:2] else "a"
    with (out / "devices.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def _datamodule(train_cfg, data_dir, *overrides):
    dm = build_datamodule(train_cfg(*DEVICES, *overrides, data_dir=data_dir))
    dm.setup()
    return dm


def _files(dm, index):
    return {dm.recordings[i].path.name for i in index.tolist()}


def _people(dm, index):
    return {dm.recordings[i].subject for i in index.tolist()}


def _s05_validates(train_cfg, data_dir, fold: int) -> bool:
    """Whether S05 (device a, two recordings on device b) is a validation person of the fold."""
    plain = _datamodule(train_cfg, data_dir, ON_A, f"data.fold={fold}")
    return "S05" in _people(plain, plain.val_index)


def _s05_trains(train_cfg, data_dir) -> int:
    return next(f for f in range(3) if not _s05_validates(train_cfg, data_dir, f))


def test_extra_rows_train_only_and_the_validation_people_are_unchanged(train_cfg, two_devices, caplog):
    """Every fold where S05 trains (the fold where S05 validates is refused: the test below)."""
    b_rows = {r.path.name for r in read_manifest(two_devices / "devices.csv", two_devices) if r.labels["device"] == "b"}
    folds = [f for f in range(3) if not _s05_validates(train_cfg, two_devices, f)]
    assert len(folds) == 2
    for fold in folds:
        plain = _datamodule(train_cfg, two_devices, ON_A, f"data.fold={fold}")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="semg_hht.data.datamodule"):
            extra = _datamodule(train_cfg, two_devices, ON_A, PLUS_B, f"data.fold={fold}")
        assert _files(extra, extra.val_index) == _files(plain, plain.val_index)  # the same validation recordings
        assert _files(extra, extra.train_index) == _files(plain, plain.train_index) | b_rows
        assert extra.n_extra == len(b_rows) == 3 * 3 * 2 + 2
        n = len(plain.recordings)
        assert set(extra.train_index[-extra.n_extra :].tolist()) == set(range(n, len(extra.recordings)))
        assert not _people(extra, extra.val_index) & {"S06", "S07", "S08"}
        assert "data.extra_train {'device': 'b'}: 20 recordings of 4 people added to training" in caplog.text
        rows = extra.split_rows()
        assert {r["subset"] for r in rows if r["file"].endswith(tuple(b_rows))} == {"train"}


def test_test_people_are_never_added(train_cfg, two_devices):
    fold = f"data.fold={_s05_trains(train_cfg, two_devices)}"
    dm = _datamodule(train_cfg, two_devices, ON_A, PLUS_B, "data.test_filter={subject:[S02,S07]}", fold)
    assert {r.subject for r in dm.test_recordings} == {"S02"}
    assert "S07" not in {r.subject for r in dm.recordings}  # S07's rows do not pass data.filter: still left out
    assert _people(dm, dm.train_index[-dm.n_extra :]) == B_PEOPLE - {"S07"}
    # test people drawn from data.filter's rows: their other-device rows stay out too
    dm = _datamodule(train_cfg, two_devices, ON_A, PLUS_B, "data.test_filter={subject:[S05]}", "data.fold=0")
    assert {r.subject for r in dm.test_recordings} == {"S05"}
    assert "S05" not in {r.subject for r in dm.recordings}


def test_person_norm_and_split_none_take_the_extra_rows(train_cfg, two_devices):
    dm = _datamodule(train_cfg, two_devices, ON_A, PLUS_B, "data.person_norm.enabled=true", "data.split=none")
    assert len(dm.val_index) == 0 and len(dm.train_index) == len(dm.recordings) == 8 * 3 * 2
    people = np.array([r.subject for r in dm.recordings])
    for person in set(people):  # each person standardised by their own recordings, extra people too
        assert dm.x[torch.from_numpy(people == person)].mean().abs() < 1e-4


def test_a_training_run_with_extra_rows(train_cfg, two_devices, tmp_path):
    fold = _s05_trains(train_cfg, two_devices)
    metrics = train(
        train_cfg(*DEVICES, ON_A, PLUS_B, f"data.fold={fold}", "trainer.max_epochs=1", data_dir=two_devices)
    )
    split = list(csv.DictReader((tmp_path / "run" / "split.csv").open()))
    assert {r["subset"] for r in split if r["subject"] in ("S06", "S07", "S08")} == {"train"}
    assert metrics["n_train"] == sum(r["subset"] == "train" for r in split) and metrics["val/acc"] is not None


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ([ON_A, "data.extra_train={device:c}"], r"devices.csv: no manifest row matches data.extra_train"),
        ([ON_A, "data.extra_train={device:a}"], r"adds no recording .* 28 already selected by data.filter"),
        ([ON_A, "data.extra_train={subject:S07}", "data.test_filter={subject:[S01,S07]}"], "6 of test people"),
        (["data.label_source=filename", PLUS_B], "data.extra_train selects manifest rows"),
    ],
)
def test_extra_rows_that_cannot_work_are_one_line(train_cfg, two_devices, overrides, match):
    with pytest.raises(SemgError, match=match):
        _datamodule(train_cfg, two_devices, *overrides)


def test_extra_rows_of_a_validation_person_are_refused(train_cfg, two_devices):
    """S05 trains on device a in some folds (its device-b rows may join) and validates in one (refused)."""
    outcomes = []
    for fold in range(3):
        if _s05_validates(train_cfg, two_devices, fold):
            with pytest.raises(SemgError, match=r"adds recordings of validation people \['S05'\]"):
                _datamodule(train_cfg, two_devices, ON_A, PLUS_B, f"data.fold={fold}")
            outcomes.append("refused")
        else:
            dm = _datamodule(train_cfg, two_devices, ON_A, PLUS_B, f"data.fold={fold}")
            assert "S05" in _people(dm, dm.train_index[-dm.n_extra :])
            outcomes.append("trained")
    assert outcomes.count("refused") == 1


def test_the_linear_control_refuses_extra_rows(two_devices):
    """evaluate.py's HHT rows draw their folds from every row the DataModule returns with split=none."""
    from semg_hht.evaluation.hht_features import hht_feature_sets

    with pytest.raises(SemgError, match="linear control does not take data.extra_train"):
        hht_feature_sets(two_devices, {"extra_train": {"device": "b"}})
