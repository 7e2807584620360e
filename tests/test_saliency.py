"""Saliency per class (semg_hht.models.saliency) on a model whose answer depends on one frequency band
only: the map is that band and nothing else, exactly; the model's mode and autograd's state survive."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from semg_hht.models.saliency import class_saliency
from semg_hht.reporting.plots import saliency_figure

BAND = slice(4, 8)  # frequency rows the model reads


class BandModel(nn.Module):
    """Class 1's logit is the mean of frequency rows 4-7 over channels and time, class 0's its negative.
    Dropout on the input: in train mode the map would be random, so a deterministic map means eval mode."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.9)
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        band = self.drop(x)[:, :, BAND, :].mean(dim=(1, 2, 3)) * self.gain
        return torch.stack([-band, band], dim=1)


def test_saliency_is_the_band_the_model_reads_and_nothing_else():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (10, 2, 12, 16)).astype(np.float32))  # (N, C, F, T)
    y = torch.tensor([0, 1] * 5)
    model = BandModel().train()
    with torch.no_grad():  # the caller's state: still off afterwards
        saliency, mean_input, counts = class_saliency(model, x, y, 3, batch_size=3, max_per_class=4, device="cpu")
        assert not torch.is_grad_enabled()
    assert model.training and model.gain.grad is None

    assert counts.tolist() == [4, 4, 0] and saliency.shape == mean_input.shape == (3, 2, 12, 16)
    for k in (0, 1):
        chosen = x[y == k][:4].double().numpy()  # the first 4 of the class, in order
        assert np.allclose(mean_input[k], chosen.mean(0))
        # d(logit)/dx is 1/(2 channels x 4 rows x 16 steps) inside the band, 0 elsewhere
        assert np.allclose(saliency[k][:, BAND], np.abs(chosen).mean(0)[:, BAND] / 128, atol=1e-7)
        outside = np.delete(saliency[k], np.r_[BAND], axis=1)
        assert not outside.any() and saliency[k][:, BAND].min() > 0
    assert not saliency[2].any() and not mean_input[2].any()  # a class with no sample

    again = class_saliency(model, x, y, 3, batch_size=10, max_per_class=4, device="cpu")
    assert np.allclose(again[0], saliency)  # eval mode: no dropout, so batching changes nothing
    plt.close(saliency_figure(mean_input, saliency, counts, ["full", "half", "invalid"], "t"))  # empty class drawn
