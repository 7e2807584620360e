"""Batched, gradient-free forward passes over an in-memory tensor (report, SVM features, predict)."""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.inference_mode()
def run_batched(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int, device: torch.device | str
) -> torch.Tensor:
    """fn over x in batches on ``device``; results gathered on the CPU as float32."""
    outputs = [
        fn(x[i : i + batch_size].to(device, non_blocking=True)).float().cpu() for i in range(0, len(x), batch_size)
    ]
    return torch.cat(outputs) if outputs else torch.empty(0)
