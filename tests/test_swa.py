"""callbacks.swa (training/weight_average.py): the run ends on the mean of its last epochs' weights with
BatchNorm statistics recomputed, that model is what metrics.json scores and what last.ckpt holds,
resume carries the running mean, and the option is off by default."""

from __future__ import annotations

import csv
import importlib
import json
import math
from typing import ClassVar

import pytest
import torch

from semg_hht.errors import SemgError
from semg_hht.models import HHTClassifier
from semg_hht.training import train
from semg_hht.training.callbacks import EpochHistory
from semg_hht.training.train import build_datamodule, build_trainer
from semg_hht.training.weight_average import WeightAverage
from tests.helpers import TINY, compose_cfg

SWA = [
    "callbacks=[default,swa]",
    "report_on=last",
    "trainer.max_epochs=4",
    "callbacks.swa.start_fraction=0.5",  # epochs 2 and 3 of 0-3
    "callbacks.periodic_checkpoint.every_n_epochs=3",  # epoch_002.ckpt: a resume point inside the window
    "trainer.deterministic=true",
]
WINDOW = (2, 3)


class WeightRecorder(EpochHistory):
    """The history callback, also keeping a copy of the model's state at every epoch end."""

    states: ClassVar[dict[int, dict[str, torch.Tensor]]] = {}

    @property
    def state_key(self) -> str:  # the history's: a resume without the recorder restores it quietly
        return EpochHistory.__qualname__

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.states[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def _cfg(data_dir, out, *extra):
    return compose_cfg([*TINY, f"paths.data_dir={data_dir}", f"paths.output_dir={out}", *SWA, *extra])


@pytest.fixture(scope="module")
def averaged(synthetic_dir, tmp_path_factory):
    """One 4-epoch run averaging epochs 2-3, with the weights of every epoch end recorded."""
    out = tmp_path_factory.mktemp("swa")
    WeightRecorder.states = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importlib.import_module("semg_hht.training.train"), "EpochHistory", WeightRecorder)
        metrics = train(_cfg(synthetic_dir, out))
    return out, metrics, dict(WeightRecorder.states)


def _checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _model(checkpoint) -> HHTClassifier:
    model = HHTClassifier(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def test_last_ckpt_holds_the_mean_of_the_window_epochs_with_batchnorm_recomputed(averaged):
    out, metrics, states = averaged
    assert sorted(states) == [0, 1, 2, 3]
    checkpoint = _checkpoint(out / "checkpoints" / "last.ckpt")
    weights, model = checkpoint["state_dict"], _model(checkpoint)
    for name, _ in model.named_parameters():
        mean = sum(states[e][name] for e in WINDOW) / len(WINDOW)
        assert torch.allclose(weights[name], mean, atol=1e-6), name
        assert not torch.equal(weights[name], states[3][name]) or torch.equal(states[2][name], states[3][name])
    # update_bn reset the statistics and took one pass: every BatchNorm counted the training batches once
    n_train, batch_size = metrics["n_train"], 8
    batches = n_train // batch_size + (n_train % batch_size > 1)
    counters = [k for k in weights if k.endswith("num_batches_tracked")]
    assert counters and all(int(weights[k]) == batches for k in counters)
    means = [k for k in weights if k.endswith("running_mean")]
    assert any(not torch.allclose(weights[k], states[3][k]) for k in means)  # not the last epoch's statistics
    state = checkpoint["callbacks"][WeightAverage(0.5, 0, None).state_key]
    assert state["averaged"] and state["count"] == 2 and state["start"] == 2 and state["last_epoch"] == 3
    assert checkpoint["epoch"] == 3  # the final epoch's checkpoint, weights replaced


def test_metrics_json_scores_the_averaged_weights(averaged, synthetic_dir):
    out, metrics, _ = averaged
    model = _model(_checkpoint(out / "checkpoints" / "last.ckpt"))
    dm = build_datamodule(_cfg(synthetic_dir, out))
    dm.setup("fit")
    with torch.no_grad():
        probs = torch.softmax(model(dm.x[torch.from_numpy(dm.val_index)]), 1)
    rows = list(csv.DictReader((out / "val_predictions.csv").open()))
    saved = torch.tensor([[float(r[f"p_{c}"]) for c in dm.class_names] for r in rows])
    assert torch.allclose(saved, probs, atol=1e-5)
    hits = [dm.class_names[p] == r["true"] for p, r in zip(probs.argmax(1).tolist(), rows, strict=True)]
    assert metrics["scored_model"] == "last"
    assert json.loads((out / "metrics.json").read_text())["val/acc"] == pytest.approx(sum(hits) / len(hits))


def test_resume_inside_the_window_ends_where_the_uninterrupted_run_does(averaged, synthetic_dir, tmp_path):
    out, _, _ = averaged
    middle = _checkpoint(out / "checkpoints" / "epoch_002.ckpt")
    state = middle["callbacks"][WeightAverage(0.5, 0, None).state_key]
    assert state["count"] == 1 and not state["averaged"]  # the running mean travels in the checkpoint
    train(_cfg(synthetic_dir, tmp_path / "resumed", f"ckpt_path={out / 'checkpoints' / 'epoch_002.ckpt'}"))
    resumed = _checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["state_dict"]
    whole = _checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]
    for name in whole:
        assert torch.allclose(resumed[name].float(), whole[name].float(), atol=1e-6), name


def test_resume_refuses_a_finished_average_and_a_changed_window(averaged, synthetic_dir, tmp_path):
    out, _, _ = averaged
    last, middle = out / "checkpoints" / "last.ckpt", out / "checkpoints" / "epoch_002.ckpt"
    with pytest.raises(SemgError, match="holds the finished run's averaged weights"):
        train(_cfg(synthetic_dir, tmp_path / "a", f"ckpt_path={last}", "trainer.max_epochs=5"))
    with pytest.raises(SemgError, match=r"holds 1 epochs from epoch 2, this run needs 3 from epoch 0"):
        train(_cfg(synthetic_dir, tmp_path / "b", f"ckpt_path={middle}", "callbacks.swa.start_fraction=0"))


def test_bad_settings_are_one_line_errors(synthetic_dir, tmp_path):
    with pytest.raises(SemgError, match=r"report_on=best scores best.ckpt -> set report_on=last"):
        train(_cfg(synthetic_dir, tmp_path, "report_on=best"))
    with pytest.raises(SemgError, match="start_fraction"):
        train(_cfg(synthetic_dir, tmp_path, "callbacks.swa.start_fraction=1.0"))
    with pytest.raises(SemgError, match=r"start_fraction=-0.5 must be in \[0, 1\)"):
        WeightAverage(-0.5, 0, None)
    with pytest.raises(SemgError, match="is not a number"):
        WeightAverage("half", 0, None)


def test_the_window_is_the_last_epochs_and_never_empty():
    assert WeightAverage(0.75, 0, None).start_epoch(60) == 45  # epochs 45-59: the last quarter
    assert WeightAverage(0.0, 0, None).start_epoch(60) == 0
    assert WeightAverage(0.99, 0, None).start_epoch(2) == 1
    assert math.isclose(WeightAverage(0.5, 0, None).start_fraction, 0.5)


def test_off_by_default(synthetic_dir, tmp_path):
    cfg = compose_cfg([*TINY, f"paths.data_dir={synthetic_dir}", f"paths.output_dir={tmp_path}"])
    assert not any("WeightAverage" in str(c.get("_target_", "")) for c in cfg.callbacks.values() if c)
    assert not any(isinstance(c, WeightAverage) for c in build_trainer(cfg, []).callbacks)
