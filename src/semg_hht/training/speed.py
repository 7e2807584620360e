"""Speed options as callbacks (set by trainer=cpu_fast / trainer=gpu): channels_last memory format,
optional torch.compile of the encoder, and a warning where bf16 autocast is slow (CPUs without
native bf16). None of them changes the model's hyperparameters or checkpoint keys, so a checkpoint
loads the same with or without them."""

from __future__ import annotations

import logging

import lightning as L
import torch

log = logging.getLogger(__name__)


class ChannelsLast(L.Callback):
    """Puts the model's 4-D weights in channels_last (NHWC) memory format before training.

    A convolution whose weight is channels_last returns channels_last outputs (cuDNN and oneDNN
    follow either operand), so the whole encoder runs NHWC; the (B, 1, H, W) input is the same in
    both formats. state_dict keys and values are unchanged: checkpoints load into a plain model.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.enabled:
            pl_module.to(memory_format=torch.channels_last)


class CompileEncoder(L.Callback):
    """torch.compile the encoder in place (nn.Module.compile) for training. The module keeps its
    parameters and state_dict keys (no ``_orig_mod.`` prefix), so checkpoints are identical in form
    to uncompiled ones. Compilation costs seconds to a minute at the first step."""

    def __init__(self, enabled: bool, mode: str | None):
        self.enabled, self.mode = enabled, mode

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.enabled and stage == "fit":
            pl_module.encoder.compile(mode=self.mode)


def cpu_has_fast_bf16() -> bool:
    """oneDNN has native bf16 kernels (AVX512-BF16 or AMX); on plain AVX2 it emulates them slowly."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class BF16Check(L.Callback):
    """Warns once when bf16 autocast runs on a CPU without native bf16: there it is much slower
    (measured ~10-20x on an AVX2 EPYC, python -m bench.train) than float32, so trainer=cpu is the better choice."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        on_cpu = trainer.strategy.root_device.type == "cpu"
        if on_cpu and "bf16" in str(trainer.precision) and not cpu_has_fast_bf16():
            log.warning(
                "bf16 autocast on a CPU without native bf16 (%s): expect it to be far slower than "
                "float32; use trainer=cpu (or trainer.precision=32-true) on this machine",
                torch.backends.cpu.get_cpu_capability(),
            )
