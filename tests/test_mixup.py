"""model.mixup_alpha: off is the plain loss, on mixes the training loss only, a bad value is one line."""

from __future__ import annotations

import copy
import csv

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from semg_hht.errors import SemgError
from semg_hht.models import HHTClassifier
from semg_hht.training import train
from tests.helpers import HP, error_lines


def model(alpha: float, **changes) -> HHTClassifier:
    torch.manual_seed(0)  # the same initial weights for every alpha
    return HHTClassifier(**(HP | {"dropout": 0.3, "head": "linear", "mixup_alpha": alpha} | changes))


def batch(n: int = 12):
    generator = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 32, 32, generator=generator), torch.arange(n) % 3


def test_mixup_off_is_exactly_the_plain_loss():
    x, y = batch()
    net = model(0.0).train()
    torch.manual_seed(5)  # dropout draws as the step seed leaves them
    logits, loss = net.training_loss(x, y)
    torch.manual_seed(5)
    plain_logits = net(x)
    assert torch.equal(logits, plain_logits)
    assert torch.equal(loss, net.criterion(plain_logits, y))


def test_mixup_loss_is_the_lambda_weighted_pair_of_label_smoothed_losses():
    x, y = batch()
    net = model(0.4).eval()  # no dropout: the forward pass is the same however often it runs
    torch.manual_seed(7)
    logits, loss = net.training_loss(x, y)
    torch.manual_seed(7)
    lam, perm = HHTClassifier.mixup(len(y), 0.4)
    assert 0.5 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(len(y)))
    want_logits = net(lam * x + (1 - lam) * x[perm])
    want = lam * net.criterion(want_logits, y) + (1 - lam) * net.criterion(want_logits, y[perm])
    torch.testing.assert_close(logits, want_logits)
    torch.testing.assert_close(loss, want)
    assert net.criterion.label_smoothing > 0  # both terms keep the configured smoothing


def test_mixup_changes_the_training_loss_but_not_validation():
    x, y = batch()
    plain, mixed = model(0.0), model(0.4)
    weights = copy.deepcopy(plain.state_dict())
    losses = []
    for net in (plain, mixed):
        torch.manual_seed(3)
        losses.append(net.train().training_loss(x, y)[1])
        net.load_state_dict(weights)  # the training pass moved the batch-norm statistics
    assert not torch.allclose(losses[0], losses[1])

    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    scores = [trainer.validate(net, dataloaders=loader, verbose=False)[0] for net in (plain, mixed)]
    assert scores[0] == scores[1] and set(scores[0]) >= {"val/loss", "val/acc"}
    assert torch.equal(plain.eval()(x), mixed.eval()(x))


@pytest.mark.parametrize("alpha", [-0.2, float("nan")])
def test_a_negative_alpha_is_refused_by_the_model(alpha):
    with pytest.raises(SemgError, match="model.mixup_alpha"):
        model(alpha)


def test_a_negative_alpha_is_one_line_naming_the_key(synthetic_dir, tmp_path, capsys):
    lines = error_lines("train", ["model.mixup_alpha=-0.2"], tmp_path, synthetic_dir, capsys)
    assert len(lines) == 1 and lines[0].startswith("error:") and "model.mixup_alpha" in lines[0], lines


def test_a_mixup_run_trains_logs_train_acc_and_keeps_alpha_in_the_checkpoint(train_cfg, tmp_path):
    metrics = train(train_cfg("model.mixup_alpha=0.4"))
    assert 0.0 <= metrics["val/acc"] <= 1.0
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert len(rows) == 2 and all(0.0 <= float(r["train/acc"]) <= 1.0 for r in rows)
    hparams = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["mixup_alpha"] == 0.4


@pytest.mark.slow
def test_a_resumed_mixup_run_draws_what_the_uninterrupted_one_did(train_cfg, tmp_path):
    settings = ["model.mixup_alpha=0.4", "trainer.max_epochs=4", "data.batch_size=4", "trainer.deterministic=true"]
    settings.append("callbacks.periodic_checkpoint.every_n_epochs=2")  # epoch_001.ckpt: resume from there
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(train_cfg(*settings, f"paths.output_dir={full}"))
    train(train_cfg(*settings, f"paths.output_dir={resumed}", f"ckpt_path={full / 'checkpoints' / 'epoch_001.ckpt'}"))
    assert (full / "history.csv").read_text() == (resumed / "history.csv").read_text()
