"""Augmentations: label-preserving, seeded, train-only, and each one really does its job."""

import math
from types import SimpleNamespace

import pytest
import torch

from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.errors import SemgError
from tests.helpers import copy_data

OFF = dict(p=1.0, time_shift=0.0, time_mask=0.0, n_time_masks=1, freq_mask=0.0, n_freq_masks=1, scale=0.0, noise=0.0)


def aug(seed=0, **kw):
    return TimeFrequencyAugment(**(OFF | kw), seed=seed)


def batch():
    return torch.rand(6, 1, 16, 20) + 0.1  # strictly positive: zeros can only come from masks/shift


def test_all_off_is_identity():
    x = batch()
    torch.testing.assert_close(aug()(x), x)


def test_time_shift_moves_content_along_time_only_and_zero_fills():
    x = batch()
    y = aug(time_shift=0.3)(x)
    for i in range(len(x)):
        zero_cols = (y[i, 0] == 0).all(dim=0)
        s = int(zero_cols.sum())
        if s == 0:
            torch.testing.assert_close(y[i], x[i])
        elif zero_cols[0]:  # shifted later in time
            torch.testing.assert_close(y[i, 0, :, s:], x[i, 0, :, :-s])
        else:
            torch.testing.assert_close(y[i, 0, :, :-s], x[i, 0, :, s:])


def test_time_crop_cuts_each_sample_to_one_random_window_of_its_own_columns():
    x = torch.arange(20.0).repeat(6, 2, 16, 1) + 100 * torch.arange(6.0)[:, None, None, None]
    crop = aug(time_crop=0.25)
    lengths = set()
    for _ in range(20):
        y = crop(x)
        length = y.shape[-1]
        lengths.add(length)
        assert 5 <= length <= 20 and y.shape[:-1] == x.shape[:-1]
        first = y[:, 0, 0, 0] - 100 * torch.arange(6.0)  # each sample's own first column
        assert ((first >= 0) & (first <= 20 - length)).all()
        expected = first[:, None] + torch.arange(length)[None] + 100 * torch.arange(6.0)[:, None]
        torch.testing.assert_close(y[:, 1, 7], expected)  # contiguous, same window on every row and channel
    assert len(lengths) > 3  # the length varies from batch to batch


def test_channel_gain_scales_each_channel_of_each_sample_by_its_own_factor_within_the_bound():
    x = torch.rand(64, 2, 16, 20) + 0.1
    y = aug(channel_gain=0.3)(x)
    factor = (y / x).flatten(2)
    torch.testing.assert_close(factor, factor[..., :1].expand_as(factor))  # one number per sample and channel
    log_factor = factor[..., 0].log10()
    assert log_factor.abs().max() <= 0.3 + 1e-6
    assert log_factor.abs().max() > 0.2  # really draws up to the bound
    assert (log_factor[:, 0] - log_factor[:, 1]).abs().max() > 0.05  # the channels move independently


def test_channel_turn_reads_each_sample_round_the_ring_between_two_neighbours():
    """Channel c of a sample turned by s electrodes is the ring's channel c + s, linearly between its two
    nearest for a fraction: a ring 0..7 read at c + s (mod 8); the turn stays within the bound."""
    ring = torch.arange(8.0)[None, :, None, None].expand(256, 8, 4, 5)
    y = aug(channel_turn=1.0)(ring)
    assert torch.equal(y, y[..., :1, :1].expand_as(y))  # one value per sample and channel
    read = y[:, :, 0, 0]
    turn = read[:, 1] - 1  # where channel 1 now reads from (between 0 and 2: no wrap there)
    assert turn.abs().max() <= 1.0 + 1e-6 and turn.abs().max() > 0.9 and turn.std() > 0.3
    for c in range(8):  # every channel of a sample turned alike, round the ring (0 and 7 are neighbours)
        source = (c + turn) % 8
        low, w = source.floor(), source - source.floor()
        torch.testing.assert_close(read[:, c], (1 - w) * low + w * ((low + 1) % 8))
    torch.testing.assert_close(aug(channel_turn=1.0, p=0.0)(ring), ring)


def test_level_gain_scales_whole_samples_by_whole_decades():
    x = torch.rand(64, 2, 16, 20) + 0.1
    log_factor = (aug(level_gain=1.0)(x) / x).log10().flatten(1)
    torch.testing.assert_close(log_factor, log_factor[:, :1].expand_as(log_factor))  # one number per sample
    assert log_factor.abs().max() <= 1 + 1e-5 and log_factor.abs().max() > 0.8
    assert log_factor.std() > 0.3  # spread over the decades, not the +-20 % of `scale`


def test_freq_warp_moves_a_spectral_peak_by_the_drawn_factor_along_frequency_only():
    x = torch.zeros(32, 2, 64, 8)
    x[:, :, 30] = 1.0  # a line at bin 30 in every column
    y = aug(freq_warp=0.2)(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, y[..., :1].expand_as(y))  # time untouched
    torch.testing.assert_close(y[:, 0], y[:, 1])  # both channels warped alike
    centre = (y[:, 0, :, 0] * torch.arange(64.0)).sum(1) / y[:, 0, :, 0].sum(1)
    assert ((centre >= 30 * 0.8 - 1) & (centre <= 30 * 1.2 + 1)).all()
    assert centre.max() - centre.min() > 5  # each sample has its own factor
    stretched = aug(freq_warp=0.2)(torch.ones(32, 1, 64, 4))
    assert (stretched[:, :, :1] == 1).all()  # 0 Hz stays where it is; bins from beyond the axis are zero
    top = stretched[:, 0, -1, 0]
    assert ((top == 0) | ((top - 1).abs() < 1e-6)).all()
    assert (top == 0).any() and (top > 0.99).any()  # squeezed samples' top bin came from beyond the axis: zero


def test_masks_zero_whole_bands_of_the_right_axis():
    x = batch()
    t = aug(time_mask=0.5, seed=1)(x)
    f = aug(freq_mask=0.5, seed=1)(x)
    assert ((t == 0).all(dim=2) | (t != 0).all(dim=2)).all()  # time masks are full-height columns
    assert ((f == 0).all(dim=3) | (f != 0).all(dim=3)).all()  # frequency masks are full-width rows
    assert (t == 0).any() and (f == 0).any()


def test_scale_and_noise_magnitudes():
    x = batch()
    ratio = aug(scale=0.2)(x) / x
    per_sample = ratio.flatten(1)
    assert torch.allclose(per_sample.min(1).values, per_sample.max(1).values)  # one factor per sample
    assert ((per_sample >= 0.8 - 1e-6) & (per_sample <= 1.2 + 1e-6)).all()
    noise = aug(noise=0.05)(x) - x
    assert 0.03 < noise.std() < 0.07


def test_seeded_and_resumable():
    x = batch()
    a, b = (
        aug(seed=3, time_shift=0.2, time_mask=0.2, noise=0.01),
        aug(seed=3, time_shift=0.2, time_mask=0.2, noise=0.01),
    )
    torch.testing.assert_close(a(x), b(x))
    state = a.state_dict()
    expected = a(x)
    b.load_state_dict(state)
    torch.testing.assert_close(b(x), expected)
    assert not torch.equal(aug(seed=4, time_shift=0.2, time_mask=0.2)(x), aug(seed=3, time_shift=0.2, time_mask=0.2)(x))


def test_invalid_settings_are_refused():
    with pytest.raises(SemgError, match="time_mask"):
        aug(time_mask=1.5)
    with pytest.raises(SemgError, match="time_crop"):
        aug(time_crop=1.0)  # a crop as long as the axis is no crop: 0 turns it off
    with pytest.raises(SemgError, match="freq_warp"):
        aug(freq_warp=1.0)  # a factor of 0 would empty the axis
    with pytest.raises(SemgError, match="channel_gain"):
        aug(channel_gain=-0.1)
    with pytest.raises(SemgError, match="channel_turn"):
        aug(channel_turn=-1.0)
    with pytest.raises(SemgError, match="level_gain"):
        aug(level_gain=-1.0)


def test_datamodule_augments_training_batches_only(synthetic_dir, train_cfg):
    from semg_hht.training.train import build_datamodule

    dm = build_datamodule(train_cfg("data.augment.p=1.0", "data.augment.noise=0.1"))
    dm.setup("fit")
    x, y = dm.x[:4], dm.y[:4]
    dm.trainer = SimpleNamespace(training=False)
    out_x, out_y = dm.on_after_batch_transfer((x, y), 0)
    assert out_x is x and out_y is y  # validation / prediction: untouched
    dm.trainer = SimpleNamespace(training=True)
    out_x, out_y = dm.on_after_batch_transfer((x, y), 0)
    assert not torch.equal(out_x, x) and torch.equal(out_y, y)  # labels preserved


def test_freq_warp_on_a_log_axis_shifts_every_row_by_the_same_amount():
    warp = aug(freq_warp=0.2)
    warp.use_log_axis(64, 20.0, 20.0 * 2**4)  # four octaves over 64 rows: 63 / ln 16 rows per factor e
    x = torch.zeros(32, 1, 64, 4)
    x[:, :, 10] = 1.0
    x[:, :, 40] = 1.0  # two lines three octaves apart
    y = warp(x)[:, 0, :, 0]
    rows = torch.arange(64.0)
    low = (y[:, :25] * rows[:25]).sum(1) / y[:, :25].sum(1)
    high = (y[:, 25:] * rows[25:]).sum(1) / y[:, 25:].sum(1)
    torch.testing.assert_close(high - low, torch.full_like(low, 30.0), atol=1e-4, rtol=0)  # a shift, not a stretch
    shift = low - 10  # rows: ln(factor) * rows per factor e, the factor in U(0.8, 1.2)
    rows_per_e = 63 / math.log(16)
    assert (shift >= rows_per_e * math.log(0.8) - 1e-4).all() and (shift <= rows_per_e * math.log(1.2) + 1e-4).all()
    assert shift.max() > 2 and shift.min() < -2  # up and down, each sample its own
    ones = warp(torch.ones(64, 1, 64, 2))[:, 0, :, 0]
    assert ((ones[:, 0] == 0) | (ones[:, -1] == 0)).all()  # rows shifted in from beyond either end are zero


def test_datamodule_shifts_on_a_log_axis_and_refuses_mixed_axes(synthetic_dir, train_cfg, tmp_path):
    import numpy as np

    from semg_hht.training.train import build_datamodule

    data = copy_data(synthetic_dir, tmp_path / "log")
    files = sorted(data.glob("*.npz"))
    for path in files:
        with np.load(path) as archive:
            arrays = dict(archive)
        np.savez(path, **arrays, freq_scale=np.str_("log"), freq_range=np.array([20.0, 320.0]))
    dm = build_datamodule(train_cfg("data.augment.enabled=true", "data.augment.freq_warp=0.1", data_dir=data))
    dm.setup("fit")
    assert dm.augment.rows_per_e == pytest.approx((dm.hparams.input_size - 1) / math.log(16))
    # saved in every checkpoint (Lightning stores the data module's state_dict): predict.py checks it
    assert dm.state_dict()["frequency_axis"] == {"scale": "log", "range": [20.0, 320.0]}
    labelled = next(p for p in files if not p.name.startswith("Test"))
    with np.load(labelled) as archive:
        arrays = dict(archive)
    arrays.pop("freq_scale")  # a linear file among log ones: its rows mean other frequencies
    np.savez(labelled, **arrays)
    with pytest.raises(SemgError, match="frequency axes differ"):
        build_datamodule(train_cfg(data_dir=data)).setup("fit")
