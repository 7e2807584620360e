"""train()'s reports come from trainer.predict (training/scoring.py): the rows of every process back
in row order, the weights of the scored checkpoint, float32 probabilities under bf16, every row
under fast_dev_run, and nothing written while scoring."""

from __future__ import annotations

import csv
import importlib

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

from semg_hht.models import HHTClassifier
from semg_hht.reporting.report import recording_metrics
from semg_hht.training import scoring, train
from semg_hht.training.scoring import RowsOf, in_row_order, score_sets
from semg_hht.training.train import build_datamodule

train_module = importlib.import_module("semg_hht.training.train")  # the package exports train() under that name


def by_hand(ckpt, x: torch.Tensor) -> torch.Tensor:
    """The checkpoint's class probabilities, computed without Lightning."""
    model = HHTClassifier.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    with torch.inference_mode():
        return torch.softmax(model(x), dim=1)


def cpu_trainer(**settings) -> L.Trainer:
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    return L.Trainer(accelerator="cpu", devices=1, enable_checkpointing=False, **(quiet | settings))


@pytest.mark.parametrize("n", [1, 2, 5, 9])
@pytest.mark.parametrize("processes", [1, 2, 3])
def test_shares_of_lightnings_predict_sampler_go_back_into_row_order(n, processes):
    """Each process's share as Lightning's predict sampler deals it (no padding; with fewer rows than
    processes some rows repeat): gathered, every row lands once, in the order asked for."""
    x = torch.arange(20.0).view(20, 1, 1, 1)  # matrix i holds the value i
    rows = torch.randperm(20, generator=torch.Generator().manual_seed(n))[:n]
    dataset = RowsOf(x, rows, processes)
    shares = []
    for rank in range(processes):
        sampler = UnrepeatedDistributedSampler(dataset, num_replicas=processes, rank=rank, shuffle=False)
        items = [dataset[i] for i in sampler]
        assert items, "Lightning refuses a process without a row"
        probs = torch.stack([m.view(1) for m, _ in items])  # a "probability" that names its matrix
        shares.append((probs, torch.tensor([p for _, p in items])))
    assert sum(len(s[1]) for s in shares) == max(n, processes)
    assert torch.equal(in_row_order(shares, n).view(-1), rows.float())


def test_a_row_no_process_scored_is_an_error():
    with pytest.raises(RuntimeError, match="left 1 of 3 rows unscored"):
        in_row_order([(torch.ones(2, 2), torch.tensor([0, 2]))], 3)


def test_the_checkpoint_is_scored_in_row_order_then_left_in_the_model(checkpoint):
    x = torch.rand(10, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([7, 2, 9, 0, 4])
    model = HHTClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()  # other weights than the checkpoint's
    scrambled = by_hand(checkpoint, x[rows])
    probs = score_sets(cpu_trainer(), model, {"val": (x, rows), "empty": (x, rows[:0])}, str(checkpoint), 2)
    assert set(probs) == {"val"} and probs["val"].dtype == torch.float32
    assert torch.allclose(probs["val"], scrambled, atol=1e-6)
    again = score_sets(cpu_trainer(), model, {"a": (x, rows), "b": (x, rows.flip(0))}, None, 3)  # as it is
    assert torch.allclose(again["a"], scrambled, atol=1e-6) and torch.allclose(again["b"], scrambled.flip(0), atol=1e-6)
    assert score_sets(cpu_trainer(), model, {"val": (x, rows[:0])}, None, 2) == {}


def test_bf16_autocast_still_gives_float32_probabilities(checkpoint):
    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    model = HHTClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    probs = score_sets(cpu_trainer(precision="bf16-mixed"), model, {"val": (x, torch.arange(6))}, None, 4)["val"]
    assert probs.dtype == torch.float32 and torch.allclose(probs.sum(1), torch.ones(6), atol=1e-6)
    assert torch.allclose(probs, by_hand(checkpoint, x), atol=0.05)  # bf16 logits: close, not equal


def test_fast_dev_run_still_scores_every_row(checkpoint):
    x = torch.rand(5, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    model = HHTClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    probs = score_sets(cpu_trainer(fast_dev_run=True), model, {"val": (x, torch.arange(5))}, None, 2)["val"]
    assert torch.allclose(probs, by_hand(checkpoint, x), atol=1e-6)  # 3 batches, not fast_dev_run's one


@pytest.mark.parametrize("report_on", ["best", "last"])
def test_reported_figures_are_the_scored_weights_on_the_right_rows(train_cfg, tmp_path, monkeypatch, report_on):
    """One run with a validation split and a test set: the probabilities train() scores equal the
    checkpoint's (best.ckpt, or last.ckpt = the final weights) computed by hand, the reports are made
    of them, and scoring writes no file (no checkpoint, no history)."""
    out, seen = tmp_path / "run", {}

    def files():
        return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def spy(*args):
        before = files()
        seen["probs"] = scoring.score_sets(*args)
        seen["before"], seen["after"] = before, files()
        return seen["probs"]

    monkeypatch.setattr(train_module, "score_sets", spy)
    manifest = ["data.label_source=manifest", "data.manifest=manifest.csv", "data.test_filter={subject:[S04]}"]
    cfg = train_cfg(*manifest, f"report_on={report_on}", "trainer.max_epochs=3", "logger=many")
    metrics = train(cfg)

    dm = build_datamodule(cfg)
    dm.setup("fit")
    ckpt = out / "checkpoints" / f"{report_on}.ckpt"
    val = by_hand(ckpt, dm.x[torch.from_numpy(dm.val_index)])
    assert torch.allclose(seen["probs"]["val"], val, atol=1e-6)
    expected = recording_metrics(
        dm.y[torch.from_numpy(dm.val_index)].numpy(), val.numpy(), dm.class_names,
        [dm.recordings[i] for i in dm.val_index.tolist()],
    )  # fmt: skip
    for key in ("acc", "balanced_acc", "f1_macro", "recording_acc"):
        assert metrics[f"val/{key}"] == pytest.approx(expected[key]), key
    assert metrics["val/confusion_matrix"] == expected["confusion_matrix"]
    test = by_hand(ckpt, dm.test_x)
    rows = list(csv.DictReader((out / "test_predictions.csv").open()))
    assert [r["file"] for r in rows] == [str(r.path) for r in dm.test_recordings]
    written = np.array([[float(r[f"p_{c}"]) for c in dm.class_names] for r in rows])
    assert np.allclose(written, test.numpy(), atol=1e-6)
    assert metrics["test/acc"] == pytest.approx(float((test.argmax(1) == dm.test_y).float().mean()))

    assert seen["after"].keys() == seen["before"].keys()  # no file created ...
    changed = {p.relative_to(out) for p in seen["after"] if seen["after"][p] != seen["before"][p]}
    assert not {p for p in changed if p.parts[0] != "csv"}, changed  # ... or rewritten (the CSV logger's own save)
    history = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in history] == [0, 1, 2]  # not the best checkpoint's copy of the history
    assert metrics["scored_model"] == report_on and metrics["epochs"] == 3
    assert metrics["val/acc_best"] == pytest.approx(max(float(r["val/acc"]) for r in history))
    logged = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    test_row = next(r for r in logged if r.get("test/acc"))
    assert float(test_row["test/acc"]) == pytest.approx(metrics["test/acc"]) and float(test_row["test/loss"]) > 0
