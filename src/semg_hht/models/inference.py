"""The model's gradient-free use: the device it runs on, bf16 autocast, and batched forward passes over
an in-memory tensor (encoder features for the SVM, class probabilities for reports and predict)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from torch import nn

from semg_hht.choices import DEVICES
from semg_hht.errors import SemgError

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """auto = the first CUDA GPU when present, else the CPU."""
    if name not in DEVICES:
        raise SemgError(f"unknown device '{name}'", fix=f"use one of {list(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise SemgError("device=cuda but no CUDA GPU is visible", fix="use device=auto or device=cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device: torch.device, bf16: bool):
    """bfloat16 autocast on CUDA when asked; plain float32 otherwise (CPU ignores bf16)."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if bf16:
        log.info("bf16=true only applies on CUDA; extracting in float32 on %s", device)
    return contextlib.nullcontext()


@torch.inference_mode()
def run_batched(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int, device: torch.device | str
) -> torch.Tensor:
    """fn over x in batches on ``device``; results gathered on the CPU as float32."""
    outputs = [
        fn(x[i : i + batch_size].to(device, non_blocking=True)).float().cpu() for i in range(0, len(x), batch_size)
    ]
    return torch.cat(outputs) if outputs else torch.empty(0)


def extract_features(fn: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device, bf16: bool) -> torch.Tensor:
    """fn (a frozen module in eval mode) over x in batches; float32 (N, D) on the CPU."""
    if batch_size < 1:
        raise SemgError(f"batch_size={batch_size} must be >= 1", fix="e.g. batch_size=64")
    fn.to(device)
    with autocast(device, bf16):
        return run_batched(fn, x, batch_size, device)
