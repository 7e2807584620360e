"""Temperature scaling: the fit (T < 1 for under-confident logits, lower ECE), the record train.py
writes into the scored model's checkpoint, predict.py's probabilities at that temperature (arg max
unchanged), older checkpoints (T = 1), adapted checkpoints keeping the source's T, the final-model key."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semg_hht.adaptation.people import Adapted
from semg_hht.adaptation.run import write_adapted
from semg_hht.errors import SemgError
from semg_hht.io import save_npz
from semg_hht.models import HHTClassifier
from semg_hht.models.calibration import (
    CHECKPOINT_KEY,
    CalibrationSettings,
    expected_calibration_error,
    fit_temperature,
    heldout_ece,
    log_probabilities,
    scaled,
)
from semg_hht.models.checkpoint import read_checkpoint
from semg_hht.models.loading import load_classifier
from semg_hht.reporting.sweep import median_temperature
from semg_hht.training import train
from tests.helpers import HP, TINY, compose_cfg, matrix, run_predict, write_ckpt

BOUNDS = (0.01, 100.0)


def smoothed_logits(n: int = 2000, classes: int = 3, squash: float = 0.2, seed: int = 0):
    """Calibrated logits (each label drawn from their own softmax) divided by 1/squash: the arg max is
    kept and every probability pulled towards 1/classes, as label smoothing does."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, classes))
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    y = (rng.random((n, 1)) > p.cumsum(1)).sum(1)
    return torch.from_numpy(logits * squash), torch.from_numpy(y)


def test_under_confident_logits_get_t_below_one_and_a_lower_ece():
    logits, y = smoothed_logits()
    probs = torch.softmax(logits, 1)
    t = fit_temperature(log_probabilities(probs), y, *BOUNDS)  # as train() does: from the softmax outputs
    assert 0.15 < t < 0.25  # the logits were squashed by 0.2
    before = expected_calibration_error(probs, y, 15)
    after = expected_calibration_error(scaled(log_probabilities(probs), t), y, 15)
    assert before > 0.25 and after < 0.05
    assert torch.equal(scaled(logits, t).argmax(1), probs.argmax(1))


def test_over_confident_logits_get_t_above_one():
    logits, y = smoothed_logits(squash=4.0)
    assert fit_temperature(logits, y, *BOUNDS) > 2.0


def test_rows_all_right_with_a_margin_give_a_small_finite_temperature():
    y = torch.arange(30) % 3
    logits = torch.nn.functional.one_hot(y, 3).double() * 5
    t = fit_temperature(logits, y, *BOUNDS)  # the NLL falls towards 0 as T -> 0: the range keeps T finite
    assert BOUNDS[0] <= t < 0.2 and scaled(logits, t).max(1).values.min() > 0.999


def test_ece_is_the_weighted_gap_between_accuracy_and_confidence():
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = torch.tensor([0, 1, 0, 0])  # bin 0.9: accuracy 0.5; bin 0.6: accuracy 1.0
    assert expected_calibration_error(probs, y, 15) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_heldout_ece_fits_each_person_on_the_others():
    logits, y = smoothed_logits()
    people = [f"p{i % 3}" for i in range(len(y))]
    heldout = heldout_ece(log_probabilities(torch.softmax(logits, 1)), y, people, 15, *BOUNDS)
    assert heldout < expected_calibration_error(torch.softmax(logits, 1), y, 15) / 3
    assert heldout_ece(logits, y, ["one"] * len(y), 15, *BOUNDS) is None


def test_an_empty_search_range_is_refused():
    with pytest.raises(SemgError, match="min_temperature"):
        CalibrationSettings.of({"enabled": True, "temperature": None, "bins": 15, "min_temperature": 2,
                                "max_temperature": 1})  # fmt: skip


# ---------------------------------------------------------------- the record in a checkpoint, predict.py


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    for i in range(4):
        save_npz(folder / f"Test_{i:03d}.npz", hht=matrix(seed=i))
    return folder


def trained_like(path: Path, data_dir: Path, **changes) -> Path:
    """A checkpoint with a head of clear preferences (an untrained one answers ~1/3 everywhere)."""
    torch.manual_seed(0)
    model = HHTClassifier(**HP)
    with torch.no_grad():
        for module in model.head.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(20)
    return write_ckpt(path, data_dir, state_dict=model.state_dict(), **changes)


def predicted(tmp_path: Path, name: str, ckpt: Path) -> list[dict[str, str]]:
    run_predict(tmp_path / name, f"ckpt={ckpt}")
    with (tmp_path / name / "out" / "predictions.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_stored_temperature_sharpens_predict_and_keeps_the_arg_max(tmp_path, data_dir):
    plain = trained_like(tmp_path / "plain.ckpt", data_dir)  # no record: an older checkpoint
    sharp = trained_like(tmp_path / "sharp.ckpt", data_dir, **{CHECKPOINT_KEY: {"temperature": 0.25}})
    assert load_classifier(plain).temperature == 1.0 and load_classifier(sharp).temperature == 0.25
    before, after = predicted(tmp_path, "plain", plain), predicted(tmp_path, "sharp", sharp)
    assert [r["movement"] for r in after] == [r["movement"] for r in before]
    columns = [f"p_movement_{c}" for c in HP["class_names"]]
    p_plain = torch.tensor([[float(r[c]) for c in columns] for r in before])
    p_sharp = torch.tensor([[float(r[c]) for c in columns] for r in after])
    assert torch.allclose(p_sharp, torch.softmax(p_plain.log() / 0.25, 1), atol=1e-5)
    sharp, plain = ([float(r["movement_confidence"]) for r in rows] for rows in (after, before))
    assert all(s > p for s, p in zip(sharp, plain, strict=True))


@pytest.mark.parametrize("record", [{"temperature": -1.0}, {"temperature": float("nan")}, {"t": 1.0}, 0.5])
def test_an_edited_record_is_one_clear_error(tmp_path, data_dir, record):
    ckpt = write_ckpt(tmp_path / "bad.ckpt", data_dir, **{CHECKPOINT_KEY: record})
    with pytest.raises(SemgError, match="calibration record is unreadable"):
        load_classifier(ckpt)


def test_an_adapted_checkpoint_keeps_the_source_temperature(tmp_path, data_dir):
    source = trained_like(tmp_path / "source.ckpt", data_dir, **{CHECKPOINT_KEY: {"temperature": 0.3}})
    loaded = load_classifier(source)
    adapted = Adapted(loaded.model, np.zeros((1, 3)), np.zeros((1, 3)), 0.0)
    write_adapted(read_checkpoint(source), adapted, tmp_path / "person.ckpt", {"person": "p"})
    assert load_classifier(tmp_path / "person.ckpt").temperature == 0.3


# ---------------------------------------------------------------- train.py


def run(synthetic_dir: Path, out: Path, *overrides: str) -> dict:
    return train(compose_cfg([*TINY, f"paths.data_dir={synthetic_dir}", f"paths.output_dir={out}", *overrides]))


def test_train_fits_the_scored_models_temperature_and_stores_it_in_its_checkpoint(synthetic_dir, tmp_path):
    metrics = run(synthetic_dir, tmp_path, "trainer.max_epochs=3", "data.label_source=manifest",
                  "data.manifest=manifest.csv", "data.split=group", "data.n_folds=2")  # fmt: skip
    saved = json.loads((tmp_path / "metrics.json").read_text())
    t = saved["temperature"]
    assert saved["scored_model"] == "best" and BOUNDS[0] <= t <= BOUNDS[1] and t == metrics["temperature"]
    assert 0 <= saved["val/ece_calibrated"] <= 1 and 0 <= saved["val/ece"] <= 1
    assert saved["val/ece_calibrated_heldout"] is not None  # two validation people
    best = tmp_path / "checkpoints" / "best.ckpt"
    assert saved["calibrated_checkpoint"] == str(best) and load_classifier(best).temperature == t
    assert load_classifier(tmp_path / "checkpoints" / "last.ckpt").temperature == 1.0  # not the scored weights
    # the stored T reproduces metrics.json's calibrated ECE from the plain softmax of val_predictions.csv
    with (tmp_path / "val_predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    probs = torch.tensor([[float(r[f"p_{c}"]) for c in saved["classes"]] for r in rows])
    y = torch.tensor([saved["classes"].index(r["true"]) for r in rows])
    assert expected_calibration_error(probs, y, 15) == pytest.approx(saved["val/ece"], abs=1e-6)
    after = expected_calibration_error(scaled(log_probabilities(probs), t), y, 15)
    assert after == pytest.approx(saved["val/ece_calibrated"], abs=1e-6)


def test_a_final_model_takes_the_yaml_temperature_into_last_ckpt(synthetic_dir, tmp_path):
    saved = run(synthetic_dir, tmp_path, "experiment=final_model", "calibration.temperature=0.4")
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert saved["temperature"] == 0.4 and saved["calibrated_checkpoint"] == str(last)
    assert load_classifier(last).temperature == 0.4
    assert read_checkpoint(last)[CHECKPOINT_KEY]["source"] == "calibration.temperature"


def test_a_final_model_without_a_temperature_stays_plain(synthetic_dir, tmp_path):
    saved = run(synthetic_dir, tmp_path, "experiment=final_model")
    assert saved["temperature"] is None and "calibrated_checkpoint" not in saved
    assert load_classifier(tmp_path / "checkpoints" / "last.ckpt").temperature == 1.0


def test_calibration_disabled_changes_nothing(synthetic_dir, tmp_path):
    saved = run(synthetic_dir, tmp_path, "trainer.max_epochs=1", "calibration.enabled=false")
    assert not {k for k in saved if "ece" in k or k in ("temperature", "calibrated_checkpoint")}
    assert CHECKPOINT_KEY not in read_checkpoint(tmp_path / "checkpoints" / "best.ckpt")


def test_the_sweep_summary_gives_the_folds_median_temperature():
    rows = [{"status": "ok", "temperature": t} for t in (0.2, 0.5, 0.3)] + [{"status": "failed", "temperature": None}]
    assert median_temperature(rows) == (0.3, 3)
    assert median_temperature([{"status": "ok", "temperature": None}]) is None
