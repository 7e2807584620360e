"""Classification heads on the pooled features."""

from __future__ import annotations

import torch
from torch import nn

from semg_hht.choices import HEADS
from semg_hht.errors import SemgError


def build_head(kind: str, feature_dim: int, num_classes: int, dropout: float, hidden: int) -> nn.Sequential:
    """adaptive: seed 000's head, sized by the features (h1 = min(max(256, d/2), 1024),
    h2 = min(max(128, d/4), 512); Linear-BatchNorm1d-ReLU-Dropout twice, Kaiming init).
    mlp: seed 001's head (Dropout-Linear(d, hidden)-ReLU-Dropout-Linear); ``hidden`` is its width.
    linear: Dropout-Linear, for small datasets: the adaptive head's Kaiming-initialised last layer
    starts with logits of std ~4 (initial loss ~7 for 5 classes) and its two BatchNorm1d layers are
    noisy with a few hundred recordings."""
    if kind == "adaptive":
        h1 = min(max(256, feature_dim // 2), 1024)
        h2 = min(max(128, feature_dim // 4), 512)
        head = nn.Sequential(
            nn.Linear(feature_dim, h1), nn.BatchNorm1d(h1), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(h2, num_classes),
        )  # fmt: skip
        for module in head.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        return head
    if kind == "mlp":
        return nn.Sequential(
            nn.Dropout(dropout), nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )  # fmt: skip
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
    raise SemgError(f"unknown model.head '{kind}'", fix=f"use one of {list(HEADS)}")


class LinearPath(nn.Module):
    """A linear classifier on the model's input, average-pooled to ``size`` x ``size``, whose logits
    are added to the CNN's ("wide and deep"). Once each person is standardised (data.person_norm) a
    linear map of the whole matrix is already a strong model (the linear control of evaluate.py);
    beside it the CNN only has to learn what a linear map misses."""

    def __init__(self, in_channels: int, input_size: int, size: int, num_classes: int, dropout: float):
        super().__init__()
        if not 1 <= size <= input_size:
            raise SemgError(
                f"model.linear_path={size} must pool a {input_size}x{input_size} input to 1..{input_size}",
                fix="e.g. 16, or 0 for no linear path",
            )
        self.pool = nn.AdaptiveAvgPool2d(size)
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels * size * size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))
