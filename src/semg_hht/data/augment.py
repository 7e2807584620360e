"""Train-only, label-preserving augmentations of time-frequency matrices (B, C, freq, time).

Applied to whole batches after they reach the device (DataModule.on_after_batch_transfer), so
they cost no host work on a GPU. Random draws come from one seeded generator whose state is
saved in checkpoints, so a resumed run continues the same sequence.
"""

from __future__ import annotations

import math

import torch

from semg_hht.errors import SemgError


class TimeFrequencyAugment:
    """Each augmentation hits a sample with probability ``p``; a zero magnitude turns it off.

    time_crop: shortest random time crop, as a fraction of the time axis (0 = off): every training
        batch is cut to one random length between that and the whole axis, each sample at its own
        random start (more, shorter samples from the same recordings; the encoder pools over time,
        so validation and prediction still see the whole recording). Not subject to ``p``: a batch
        has one shape.
    time_shift: max shift as a fraction of the time axis (content moves, the gap is zero-filled:
        a repetition starting a little earlier or later is the same repetition).
    time_mask / freq_mask: max width (fraction of the axis) of each of n_time_masks /
        n_freq_masks zeroed bands (SpecAugment-style).
    scale: amplitude factor drawn uniformly from [1 - scale, 1 + scale].
    noise: std of additive Gaussian noise (matrices are min-max normalised to [0, 1]).

    Two that imitate how one person differs from another, so a model of a few people is pushed
    to ignore it:
    channel_gain: each channel multiplied by its own 10**U(-g, g) (electrode contact, skin and fat
        change each channel's level for one person; g=0.3 is a factor of 0.5 to 2).
    channel_turn: an armband worn turned by U(-t, t) electrodes: the channels read round the ring,
        each between its two nearest for a fractional turn (on electrodes spaced evenly round the arm,
        a person's placement moves every pattern round the channels; t=1 is up to one electrode either
        way). Only for channels that are such a ring, in ring order (an 8-electrode Myo band), never
        for electrodes on named muscles.
    level_gain: the whole sample multiplied by 10**U(-g, g) (a person who is quieter or louder in
        every movement; unlike ``scale``, whole decades: g=1 is a factor of 0.1 to 10).
    freq_warp: the frequency axis stretched by a factor U(1 - w, 1 + w) about its first row (0 Hz
        on make_hht's default 0..fs/2 axis; conduction velocity and fibre make-up move a person's
        whole spectrum up or down); bins that come from beyond the axis are zero. On a log-frequency
        axis (``use_log_axis``) the same factor is a shift by the same number of rows everywhere.
    """

    def __init__(
        self,
        p: float,
        time_shift: float,
        time_mask: float,
        n_time_masks: int,
        freq_mask: float,
        n_freq_masks: int,
        scale: float,
        noise: float,
        seed: int,
        time_crop: float = 0.0,
        channel_gain: float = 0.0,
        freq_warp: float = 0.0,
        level_gain: float = 0.0,
        channel_turn: float = 0.0,
    ):
        for name, value in {
            "time_crop": time_crop,
            "time_shift": time_shift,
            "time_mask": time_mask,
            "freq_mask": freq_mask,
            "freq_warp": freq_warp,
        }.items():
            if not 0.0 <= value < 1.0:
                raise SemgError(f"data.augment.{name}={value} must be a fraction in [0, 1)", fix="e.g. 0.1")
        if (
            not 0.0 <= p <= 1.0
            or not 0.0 <= scale < 1.0
            or noise < 0
            or min(channel_gain, level_gain, channel_turn) < 0
        ):
            raise SemgError(
                "data.augment: p in [0, 1], scale in [0, 1), noise, channel_gain, level_gain and channel_turn >= 0",
                fix="fix the values",
            )
        self.p, self.time_crop, self.time_shift, self.scale, self.noise = p, time_crop, time_shift, scale, noise
        self.time_mask, self.n_time_masks = time_mask, n_time_masks
        self.freq_mask, self.n_freq_masks = freq_mask, n_freq_masks
        self.channel_gain, self.freq_warp, self.level_gain = channel_gain, freq_warp, level_gain
        self.channel_turn = channel_turn
        self.generator = torch.Generator().manual_seed(seed)
        self.rows_per_e: float | None = None  # set by use_log_axis: rows per factor e on a log axis

    def use_log_axis(self, bins: int, low_hz: float, high_hz: float) -> None:
        """The matrices' rows are evenly spaced in log frequency from low_hz to high_hz (make_hht's
        spectrum.freq_scale=log): freq_warp then shifts rows instead of stretching them about row 0."""
        self.rows_per_e = (bins - 1) / math.log(high_hz / low_hz)

    def _hit(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) < self.p

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=self.generator)

    def _masks(self, x: torch.Tensor, axis: int, max_frac: float, count: int) -> torch.Tensor:
        length = x.shape[axis]
        keep = torch.ones(x.shape[0], length, dtype=torch.bool)
        for _ in range(count if max_frac > 0 else 0):
            width = (self._uniform(x.shape[0], 0, max_frac * length).long() * self._hit(x.shape[0])).clamp(max=length)
            start = (torch.rand(x.shape[0], generator=self.generator) * (length - width + 1)).long()
            pos = torch.arange(length)[None]
            keep &= ~((pos >= start[:, None]) & (pos < (start + width)[:, None]))
        shape = [x.shape[0], 1, 1, 1]
        shape[axis] = length
        return keep.view(shape).to(x.device, non_blocking=True)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        batch, width = x.shape[0], x.shape[-1]
        shortest = max(1, round(self.time_crop * width))
        length = int(torch.randint(shortest, width + 1, (1,), generator=self.generator))
        start = (torch.rand(batch, generator=self.generator) * (width - length + 1)).long()
        index = (start[:, None] + torch.arange(length)[None]).to(x.device, non_blocking=True)
        return x.gather(-1, index[:, None, None, :].expand(*x.shape[:-1], length))

    def _warp(self, x: torch.Tensor) -> torch.Tensor:
        """Row f of the result is the row of x at frequency f / factor, linearly interpolated (factor > 1:
        higher): row f / factor on a linear axis from 0 Hz, row f - ln(factor) * rows_per_e on a log axis."""
        batch, bins = x.shape[0], x.shape[2]
        factor = torch.where(self._hit(batch), self._uniform(batch, 1 - self.freq_warp, 1 + self.freq_warp), 1.0)
        rows = torch.arange(bins, dtype=torch.float32)[None]
        if self.rows_per_e is None:
            source = rows / factor[:, None]  # (B, F)
        else:
            source = rows - torch.log(factor)[:, None] * self.rows_per_e
        low = source.floor().long().clamp(0, bins - 1)
        high = (low + 1).clamp(max=bins - 1)
        weight = (source - low).to(x.device, x.dtype)[:, None, :, None]
        inside = ((source >= 0) & (source <= bins - 1)).to(x.device, x.dtype)[:, None, :, None]

        def rows(index: torch.Tensor) -> torch.Tensor:
            return x.gather(2, index.to(x.device)[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[3]))

        return ((1 - weight) * rows(low) + weight * rows(high)) * inside

    def _turn(self, x: torch.Tensor) -> torch.Tensor:
        """Channel c of the result is the ring's channel c + shift, between its two nearest."""
        batch, channels = x.shape[:2]
        shift = self._uniform(batch, -self.channel_turn, self.channel_turn) * self._hit(batch)
        source = torch.arange(channels)[None] + shift[:, None]
        low = source.floor()
        weight = (source - low).to(x.device, x.dtype)[:, :, None, None]
        low = low.long() % channels

        def ring(index: torch.Tensor) -> torch.Tensor:
            return x.gather(1, index.to(x.device)[:, :, None, None].expand_as(x))

        return (1 - weight) * ring(low) + weight * ring((low + 1) % channels)

    def _gain(self, x: torch.Tensor, bound: float, factors: int) -> torch.Tensor:
        """x times 10**U(-bound, bound), one draw per sample and each of ``factors`` channel groups."""
        batch = x.shape[0]
        draw = self._uniform(batch * factors, -bound, bound).view(batch, factors)
        gain = torch.where(self._hit(batch)[:, None], 10.0**draw, 1.0)
        return x * gain.to(x.device, x.dtype)[:, :, None, None]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_crop > 0:
            x = self._crop(x)
        batch, width = x.shape[0], x.shape[-1]
        if self.time_shift > 0:
            max_shift = int(self.time_shift * width)
            shifts = torch.randint(-max_shift, max_shift + 1, (batch,), generator=self.generator) * self._hit(batch)
            src = torch.arange(width)[None] - shifts[:, None]
            valid = ((src >= 0) & (src < width)).to(x.device)
            index = src.clamp(0, width - 1).to(x.device)[:, None, None, :].expand_as(x)
            x = x.gather(-1, index) * valid[:, None, None, :]
        x = (
            x
            * self._masks(x, 3, self.time_mask, self.n_time_masks)
            * self._masks(x, 2, self.freq_mask, self.n_freq_masks)
        )
        if self.freq_warp > 0:
            x = self._warp(x)
        if self.channel_turn > 0:
            x = self._turn(x)
        if self.channel_gain > 0:
            x = self._gain(x, self.channel_gain, x.shape[1])
        if self.level_gain > 0:
            x = self._gain(x, self.level_gain, 1)
        if self.scale > 0:
            factor = torch.where(self._hit(batch), self._uniform(batch, 1 - self.scale, 1 + self.scale), 1.0)
            x = x * factor.to(x.device, x.dtype)[:, None, None, None]
        if self.noise > 0:
            hit = self._hit(batch).to(x.device, x.dtype)[:, None, None, None]
            x = x + self.noise * hit * torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype)
        return x

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
