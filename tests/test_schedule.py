"""Warmup + cosine + plateau: the seed's curve, and plateau cuts that actually persist."""

import io
import math

import numpy as np
import pytest
import torch

from reference.seed_loop import get_lr_schedule
from semg_hht.models.schedule import WarmupCosinePlateau

PLATEAU = {"factor": 0.5, "patience": 2, "min_lr": 1e-6, "threshold": 0.0}


def optimizer(lr=1e-3):
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def seed_lambda(epoch, warmup, total):
    """Seed 000's get_lr_schedule lambda (the faithful copy in reference/seed_loop.py)."""
    return get_lr_schedule(optimizer(), warmup, total).lr_lambdas[0](epoch)


def run(scheduler, metrics):
    lrs = []
    for metric in metrics:
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.step(metric)
    return lrs


def test_warmup_cosine_matches_the_seed_curve():
    sched = WarmupCosinePlateau(optimizer(), total_epochs=20, warmup_epochs=5, cosine=True, plateau=None, mode="max")
    lrs = run(sched, [None] * 20)
    np.testing.assert_allclose(lrs, [1e-3 * seed_lambda(e, 5, 20) for e in range(20)], rtol=1e-12)


def test_plateau_cuts_persist_on_the_cosine_curve():
    sched = WarmupCosinePlateau(optimizer(), total_epochs=30, warmup_epochs=2, cosine=True, plateau=PLATEAU, mode="max")
    # improves for 4 epochs, then flat: every 3 flat epochs (patience 2) cut once more, for good
    lrs = run(sched, [0.1, 0.2, 0.3, 0.4] + [0.4] * 10)
    for epoch, lr in enumerate(lrs):
        cuts = max(0, (epoch - 4) // 3)  # in force from epochs 7, 10, 13
        assert lr == pytest.approx(1e-3 * seed_lambda(epoch, 2, 30) * 0.5**cuts), epoch


def test_the_seeds_two_scheduler_combination_loses_every_cut():
    """What we fix: LambdaLR rewrites the lr from its own curve, undoing ReduceLROnPlateau."""
    opt = optimizer()
    lam = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: seed_lambda(e, 2, 30))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    lrs = []
    for metric in [0.1, 0.2, 0.3, 0.4] + [0.4] * 10:
        lrs.append(opt.param_groups[0]["lr"])
        lam.step()
        plateau.step(metric)
    # the cut applied at the end of epoch 6 is gone by epoch 8: back on the uncut curve
    assert lrs[8] == pytest.approx(1e-3 * seed_lambda(8, 2, 30))


def test_plateau_alone_matches_torch_reduce_on_plateau():
    metrics = [0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    ours = WarmupCosinePlateau(optimizer(), total_epochs=12, warmup_epochs=0, cosine=False, plateau=PLATEAU, mode="max")
    opt = optimizer()
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2, threshold=0.0)
    reference = []
    for m in metrics:
        reference.append(opt.param_groups[0]["lr"])
        torch_sched.step(m)
    np.testing.assert_allclose(run(ours, metrics), reference)


def test_min_lr_stops_the_cuts():
    plateau = PLATEAU | {"patience": 0, "min_lr": 2.5e-4}
    sched = WarmupCosinePlateau(
        optimizer(), total_epochs=10, warmup_epochs=0, cosine=False, plateau=plateau, mode="max"
    )
    assert run(sched, [0.5] * 6)[-1] == pytest.approx(2.5e-4)


def test_state_round_trips_through_weights_only_checkpoints():
    sched = WarmupCosinePlateau(optimizer(), total_epochs=30, warmup_epochs=2, cosine=True, plateau=PLATEAU, mode="max")
    run(sched, [0.3] * 7)
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = WarmupCosinePlateau(optimizer(), total_epochs=30, warmup_epochs=2, cosine=True, plateau=PLATEAU, mode="max")
    fresh.load_state_dict(state)
    assert fresh.plateau_scale == sched.plateau_scale < 1 and fresh.last_epoch == sched.last_epoch
    assert math.isclose(fresh.get_last_lr()[0], sched.get_last_lr()[0])
