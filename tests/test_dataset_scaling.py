"""data.scaling=dataset: matrices in their recordings' units divided by one number, the training
recordings' median peak, which the checkpoint carries to new people (predict.py)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from semg_hht.errors import SemgError
from semg_hht.io import save_npz
from semg_hht.models import HHTClassifier
from semg_hht.prediction import predict
from semg_hht.svm import fit_svm
from semg_hht.training import train
from semg_hht.training.train import build_datamodule
from tests.helpers import HP, compose_cfg, data_hparams, matrix, run_predict, write_ckpt

DATASET = ["data.label_source=manifest", "data.manifest=manifest.csv", "data.scaling=dataset"]


def with_gains(source: Path, out: Path, gain_of) -> Path:
    """source's matrices and manifest, each file given the channel scales make_hht stores."""
    shutil.copytree(source, out)
    for row in csv.DictReader((out / "manifest.csv").open(newline="")):
        path = out / row["file"]
        hht = np.load(path)["hht"]
        save_npz(path, hht=hht, norm_scale=np.array([gain_of(row)]), spectrum_peak=np.array([2.0]))
    return out


def peak_in_units(path: Path) -> float:
    with np.load(path) as z:
        return float(z["hht"].max() * z["norm_scale"][0] * z["spectrum_peak"][0])


@pytest.fixture
def gained(synthetic_dir, tmp_path) -> Path:
    """The synthetic set with a gain per person; S04 (the test person below) 1000 times louder."""
    gains = {"S01": 1.0, "S02": 3.0, "S03": 0.5, "S04": 1000.0}
    return with_gains(synthetic_dir, tmp_path / "gained", lambda row: gains[row["subject"]])


def test_the_reference_is_the_training_peoples_median_peak(train_cfg, gained):
    """Only training rows set it: the held-out person's 1000-fold gain does not move it; validation
    and test rows are divided by that same number, so how loud each recording was stays."""
    dm = build_datamodule(train_cfg(*DATASET, "data.test_filter={subject:[S04]}", data_dir=gained))
    dm.setup()
    expected = np.median([peak_in_units(dm.recordings[i].path) for i in dm.train_index.tolist()])
    assert dm.hparams.scale_reference == pytest.approx(expected, rel=1e-5)
    for row, rec in ((dm.x[0], dm.recordings[0]), (dm.test_x[0], dm.test_recordings[0])):
        assert row.max().item() == pytest.approx(peak_in_units(rec.path) / expected, rel=1e-5)
    assert dm.test_x.max() > 100  # the loud person stays loud
    fixed = build_datamodule(train_cfg(*DATASET, "data.scale_reference=2.5", data_dir=gained))
    fixed.setup()
    assert fixed.hparams.scale_reference == 2.5  # a given number (a checkpoint's) is used as it is


def test_a_reference_without_dataset_scaling_is_one_line(train_cfg):
    with pytest.raises(SemgError, match="is for data.scaling=dataset") as err:
        build_datamodule(train_cfg("data.scale_reference=2.0"))
    assert "\n" not in str(err.value)


def test_the_checkpoint_carries_the_reference_to_new_people(train_cfg, gained, tmp_path):
    cfg = train_cfg(*DATASET, "experiment=final_model", "data.test_filter={subject:[S04]}", data_dir=gained)
    metrics = train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)["datamodule_hyper_parameters"]
    assert saved["scaling"] == "dataset" and saved["scale_reference"] > 0
    predict_cfg = [f"ckpt={ckpt}", f"input={gained / 'manifest.csv'}", "filter={subject:[S04]}"]
    run_predict(tmp_path / "p", *predict_cfg)
    scored = json.loads((tmp_path / "p" / "out" / "metrics.json").read_text())
    assert scored["acc"] == pytest.approx(metrics["test/acc"])  # the same scale, the same answers


def test_each_ensemble_member_reads_with_its_own_reference(tmp_path):
    """Fold models' references differ (different training people): each divides by its own."""
    folder = tmp_path / "new"
    save_npz(folder / "a.npz", hht=matrix(seed=3), norm_scale=np.array([5.0]), spectrum_peak=np.array([1.0]))
    members, by_hand = [], []
    for seed, reference in ((1, 1.0), (2, 20.0)):
        torch.manual_seed(seed)
        model = HHTClassifier(**HP)
        data = data_hparams(folder) | {"scaling": "dataset", "scale_reference": reference}
        path = write_ckpt(tmp_path / f"m{seed}.ckpt", folder, state_dict=model.state_dict())
        checkpoint = torch.load(path, weights_only=True) | {"datamodule_hyper_parameters": data}
        torch.save(checkpoint, path)
        members.append(path)
        x = torch.from_numpy(matrix(seed=3) * 5.0)[None, None] / reference
        by_hand.append(torch.softmax(model.eval()(x), 1)[0].detach().numpy())
    rows = run_predict(tmp_path, f"ckpt=[{members[0]},{members[1]}]", f"input={folder / 'a.npz'}")
    probs = np.array([float(rows[0][f"p_movement_{c}"]) for c in HP["class_names"]])
    assert np.allclose(probs, np.mean(by_hand, axis=0), atol=1e-5)
    assert not np.allclose(by_hand[0], by_hand[1], atol=1e-3)  # the references matter, so the check does


def test_the_random_encoder_svm_carries_the_reference_too(gained, tmp_path):
    tiny = ["data.input_size=32", "model.num_layers=2", "model.base_channels=4", "data.load_workers=2"]
    held_out = ["data.test_filter={subject:[S04]}", "data.split=group", "data.n_folds=3"]
    cfg = [f"paths.output_dir={tmp_path / 'svm'}", "ckpt=null", f"paths.data_dir={gained}", *DATASET, *held_out]
    metrics = fit_svm(compose_cfg([*cfg, *tiny], "fit_svm"))
    meta = json.loads((tmp_path / "svm" / "svm.json").read_text())
    assert meta["encoder"]["scaling"] == "dataset" and meta["encoder"]["scale_reference"] > 0
    predict(
        compose_cfg(
            [f"paths.output_dir={tmp_path / 'p'}", "ckpt=null", f"svm={tmp_path / 'svm' / 'svm.skops'}",
             f"input={gained / 'manifest.csv'}", "filter={subject:[S04]}"],
            "predict",
        )
    )  # fmt: skip
    scored = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert scored["acc"] == pytest.approx(metrics["test/acc"])  # S04 read on the training people's scale


def test_extra_training_rows_are_warned_to_share_the_units(train_cfg, gained, caplog):
    rows = ["+data.filter={subject:[S01,S02,S03]}", "data.extra_train={subject:S04}"]
    dm = build_datamodule(train_cfg(*DATASET, *rows, data_dir=gained))
    with caplog.at_level("WARNING"):
        dm.setup()
    assert dm.n_extra == 9 and "added rows must be in the same units" in caplog.text
