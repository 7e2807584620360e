"""The seed's CNN encoder: num_layers blocks of Conv3x3/2 + norm + LeakyReLU, then average pooling
(global as the seed, or over time only, keeping where in frequency a feature sits). Channels double
from base_channels and stop growing at base*32 (64 -> ... -> 2048 -> 2048)."""

from __future__ import annotations

import inspect
import logging
import math

import torch
from torch import nn

from semg_hht.choices import POOLS
from semg_hht.errors import SemgError

log = logging.getLogger(__name__)

MAX_LAYERS = 8
CHANNEL_CAP_DOUBLINGS = 5  # base * 2**5 = 32 x base, the seed's 2048 for base 64
NORMS = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}


def encoder_channels(base_channels: int, num_layers: int) -> list[int]:
    return [base_channels * 2 ** min(i, CHANNEL_CAP_DOUBLINGS) for i in range(num_layers)]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind not in NORMS:
        raise SemgError(f"unknown model.norm '{kind}'", fix=f"use one of {sorted(NORMS)}")
    return NORMS[kind](channels)


class ConvBlock(nn.Module):
    """Conv3x3 stride 2 (no bias: the norm removes it) + norm + LeakyReLU.

    With ``residual`` a projection shortcut (Conv1x1 stride 2 + norm) is added to the output.
    The seed's identity shortcut needed stride 1 and equal channels, which never held for its
    stride-2 blocks, so it never fired; the projection makes the residual path real.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str, leaky_slope: float, residual: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.norm = _norm(norm, out_channels)
        self.act = nn.LeakyReLU(leaky_slope, inplace=True)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), _norm(norm, out_channels))
            if residual
            else None
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm(self.conv(x)))
        return out + self.shortcut(x) if self.shortcut is not None else out


class LogCompress(nn.Module):
    """x -> log1p(x / ref) / log1p(1 / ref): maps [0, 1] onto [0, 1], lifting the faint bins.

    Hilbert spectra are heavy-tailed (a few bins hold most of the amplitude), so after min-max
    scaling nearly every bin is close to 0; compressing them lets the convolutions see them.
    """

    def __init__(self, ref: float):
        super().__init__()
        if not ref > 0:
            raise SemgError(f"model.input_log_ref={ref} must be > 0", fix="use e.g. 0.01, or null for no compression")
        self.ref = float(ref)
        self.gain = 1.0 / math.log1p(1.0 / self.ref)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x.clamp_min(0) / self.ref) * self.gain

    def extra_repr(self) -> str:
        return f"ref={self.ref}"


def check_channel_order(order: list[int], channels: int, key: str) -> None:
    """Refuse an ``order`` that is not a permutation of the ``channels`` input channels (``key`` names it)."""
    if sorted(order) != list(range(channels)):
        raise SemgError(
            f"{key}={list(order)} is not an order of the {channels} input channels",
            fix=f"list each of 0..{channels - 1} once, or null (as recorded)",
        )


class CNNEncoder(nn.Module):
    """(B, C, S, S) -> (B, feature_dim). ``residual_from`` is the 1-based first block with a shortcut.
    ``input_log_ref`` (None: off, the seed) log-compresses the input first (LogCompress).
    ``level_free_copy`` stacks a second copy of the (compressed) input with each sample's mean taken
    away: the level (how hard a muscle works, which separates movements) stays in the first copy, and
    the shape of the spectrum is there too for a person quieter or louder than everyone in training."""

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        base_channels: int,
        num_layers: int,
        norm: str,
        leaky_slope: float,
        residual: bool,
        residual_from: int,
        input_log_ref: float | None = None,
        pool: str = "global",
        level_free_copy: bool = False,
        channel_order: list[int] | None = None,
    ):
        super().__init__()
        if pool not in POOLS:
            raise SemgError(f"unknown model.pool '{pool}'", fix=f"use one of {list(POOLS)}")
        self.compress = LogCompress(input_log_ref) if input_log_ref is not None else nn.Identity()
        if channel_order is not None:
            check_channel_order(channel_order, in_channels, "model.channel_order")
        # None (as recorded) costs nothing; a list is a fixed gather (electrodes swapped or an armband
        # turned against the people the model learned from: adapt.channel_order=search finds it)
        self.channel_order = None if channel_order is None else list(channel_order)
        if not 1 <= num_layers <= MAX_LAYERS or 2**num_layers > input_size:
            limit = min(MAX_LAYERS, input_size.bit_length() - 1)
            raise SemgError(
                f"model.num_layers={num_layers} is out of range for {input_size}x{input_size} input "
                "(each layer halves the size)",
                fix=f"choose 1 <= model.num_layers <= {limit}",
            )
        channels = encoder_channels(base_channels, num_layers)
        if residual and num_layers < residual_from:
            log.warning("model.residual=true has no effect: no block >= residual_from=%d", residual_from)
        self.level_free_copy = level_free_copy
        blocks, previous = [], in_channels * (2 if level_free_copy else 1)
        for i, out in enumerate(channels):
            blocks.append(ConvBlock(previous, out, norm, leaky_slope, residual and i + 1 >= residual_from))
            previous = out
        self.blocks = nn.Sequential(*blocks)
        # (B, C, F, T) -> (B, C, 1, 1) global, or (B, C, F', 1) over time: a spectrum's frequency axis
        # is not translation-invariant (a 40 Hz and a 200 Hz burst are different muscles' signatures)
        rows = 1 if pool == "global" else max(input_size >> num_layers, 1)
        self.pool = nn.AdaptiveAvgPool2d((rows, 1))
        self.feature_dim = channels[-1] * rows

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the blocks read it: channels in the model's order, then compressed."""
        return self.compress(x if self.channel_order is None else x[:, self.channel_order])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prepare(x)
        if self.level_free_copy:  # one mean over all channels: the ratio between muscles stays
            x = torch.cat([x, x - x.mean(dim=(1, 2, 3), keepdim=True)], dim=1)
        return self.pool(self.blocks(x)).flatten(1)  # (B, feature_dim)


ENCODER_KEYS = tuple(inspect.signature(CNNEncoder).parameters)  # its arguments: the one list of them
