"""Which parts of the input a classifier's decision rests on: per class, the mean saliency of the
true class's logit over that class's samples, and the class's mean input to read it against.

Saliency is |gradient x input|, plain autograd: one forward and one backward pass per batch, about
the cost of one training epoch over the samples, and deterministic. Integrated gradients (from an
all-zero, silent spectrum) would add completeness (the attributions sum to the logit's change) and
less noise where units saturate, at `steps` times the cost; for a class's map averaged over many
samples, which averages the gradient noise away too, the first-order map is enough at the end of
every run. Either way it shows where the evidence lies, not why.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def class_saliency(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    batch_size: int,
    max_per_class: int,
    device: torch.device | str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over the first ``max_per_class`` samples of each class of x (N, C, F, T) with labels y (N,):
    (mean saliency (K, C, F, T), mean input (K, C, F, T), samples per class (K,)); zero for a class
    with no sample. The model runs in eval mode (no dropout, running norm statistics) on ``device``;
    its device, mode and autograd's on/off state are as before afterwards, its parameters' .grad untouched."""
    rows = torch.cat([torch.nonzero(y == k).flatten()[:max_per_class] for k in range(num_classes)])
    saliency = torch.zeros((num_classes, *x.shape[1:]), dtype=torch.float64)
    inputs = torch.zeros_like(saliency)
    first = next(model.parameters(), torch.empty(0))
    home, dtype = first.device, first.dtype  # bf16-true models take bf16 input
    was_training = model.training
    model.eval().to(device)
    try:
        with torch.enable_grad():  # restores the caller's state on exit (e.g. a no_grad context)
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                xb = x[batch].to(device, dtype).requires_grad_(True)
                yb = y[batch].to(device)
                chosen = model(xb).gather(1, yb[:, None]).sum()  # each sample's own true-class logit
                (grad,) = torch.autograd.grad(chosen, xb)  # only d/dx: parameters' .grad stay as they are
                labels = yb.cpu()
                saliency.index_add_(0, labels, (grad * xb).abs().detach().double().cpu())
                inputs.index_add_(0, labels, xb.detach().double().cpu())
    finally:
        model.train(was_training).to(home)
    counts = torch.bincount(y[rows].cpu(), minlength=num_classes).numpy()
    scale = np.maximum(counts, 1)[:, None, None, None]
    return saliency.numpy() / scale, inputs.numpy() / scale, counts
