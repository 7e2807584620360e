"""data.person_norm: each person standardised by their own statistics (training, test set, predict)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semg_hht.classic.recordings import FeatureSet
from semg_hht.data.person_norm import log_compress, person_standardize
from semg_hht.errors import SemgError
from semg_hht.evaluation.classic import person_standardized
from semg_hht.training import train
from semg_hht.training.train import build_datamodule

MANIFEST = ["data.label_source=manifest", "data.manifest=manifest.csv"]


def test_each_person_is_centred_on_their_own_mean_spectrum():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 2, 4, 4, generator=gen)
    x[3:] = x[3:] * 5 + 2  # person b: another gain and offset, the same patterns
    subjects = ["a"] * 3 + ["b"] * 3
    out = person_standardize(x, subjects, log_ref=None)
    for rows in (slice(0, 3), slice(3, 6)):
        assert torch.allclose(out[rows].mean(0), torch.zeros(2, 4, 4), atol=1e-5)
        assert torch.allclose(out[rows].std(dim=(0, 2, 3)), torch.ones(2), atol=1e-4)
    # a person's gain and offset are gone: b's standardised rows equal a's pattern for the same rows
    same = person_standardize(torch.cat([x[:3], x[:3] * 5 + 2]), subjects, log_ref=None)
    assert torch.allclose(same[:3], same[3:], atol=1e-4)
    logged = person_standardize(x, subjects, log_ref=0.01)
    assert torch.allclose(logged[:3], person_standardize(log_compress(x, 0.01), subjects, None)[:3])


def test_calibration_rows_limit_the_statistics_and_unknown_people_are_refused():
    x = torch.arange(4 * 1 * 2 * 2, dtype=torch.float32).reshape(4, 1, 2, 2)
    calibration = np.array([True, False, True, False])
    out = person_standardize(x, ["a", "a", "b", "b"], None, calibration)
    assert torch.allclose(out[0], torch.zeros(1, 2, 2))  # a's mean is row 0 alone
    with pytest.raises(SemgError, match="needs the person of every recording"):
        person_standardize(x, ["a", None, "b", "b"], None)
    with pytest.raises(SemgError, match="no calibration recording"):
        person_standardize(x, ["a", "a", "b", "b"], None, np.array([True, True, False, False]))


def test_classic_features_are_standardised_per_person():
    x = np.array([[1.0, 10], [3, 30], [100, 0], [300, 2]])
    fs = FeatureSet(x, np.array([0, 1, 0, 1]), ["m1", "m2"], ["a", "a", "b", "b"], [], ["f1", "f2"])
    out = person_standardized(fs).x
    assert np.allclose(out, [[-1, -1], [1, 1], [-1, -1], [1, 1]])


def test_datamodule_training_and_test_set_with_person_norm(train_cfg):
    cfg = train_cfg(*MANIFEST, "experiment=person_norm", "data.test_filter={subject:[S04]}")
    dm = build_datamodule(cfg)
    dm.setup()
    people = np.array([r.subject for r in dm.recordings])
    for person in set(people):
        assert dm.x[torch.from_numpy(people == person)].mean().abs() < 1e-4
    assert dm.test_x.mean().abs() < 1e-4  # the test person calibrated on their own recordings
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1
    with pytest.raises(SemgError, match="must not log-compress it again"):
        train(train_cfg(*MANIFEST, "data.person_norm.enabled=true", "model.input_log_ref=0.01"))
    with pytest.raises(SemgError, match=r"calibrate_on \['m9'\] are not classes"):
        build_datamodule(train_cfg(*MANIFEST, "experiment=person_norm", "data.person_norm.calibrate_on=[m9]")).setup()


def test_predict_calibrates_new_people_as_the_test_stage_did(train_cfg, synthetic_dir, tmp_path):
    import json

    from semg_hht.prediction import predict
    from tests.helpers import compose_cfg

    cfg = train_cfg(*MANIFEST, "experiment=[person_norm,final_model]", "data.test_filter={subject:[S04]}")
    metrics = train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    predict(
        compose_cfg(
            [f"paths.output_dir={tmp_path / 'p'}", f"ckpt={ckpt}", f"input={synthetic_dir / 'manifest.csv'}",
             "filter={subject:[S04]}"],
            "predict",
        )
    )  # fmt: skip
    scored = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert scored["acc"] == pytest.approx(metrics["test/acc"])  # the same person statistics, the same answers
