"""A trained classifier (or a random encoder) ready for frozen, gradient-free feature extraction.

Checkpoints are read weights-only (read_checkpoint): the model is rebuilt from the hyperparameters
stored inside, so no training config is needed, and every way a file can fail to fit (missing,
truncated, foreign, another version's keys, tensors of another shape) is one SemgError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semg_hht.data.datamodule import renamed_data_keys
from semg_hht.errors import SemgError
from semg_hht.io import file_sha256
from semg_hht.models.calibration import temperature_of
from semg_hht.models.checkpoint import read_checkpoint
from semg_hht.models.classifier import HHTClassifier
from semg_hht.models.encoder import ENCODER_KEYS, CNNEncoder

NETWORK = ("encoder.", "head.", "linear_path.")  # the weights that compute features and logits


@dataclass(frozen=True)
class LoadedCheckpoint:
    path: Path
    sha256: str
    model: HHTClassifier  # eval mode, frozen, on the CPU
    hparams: dict[str, Any]  # the model's
    data_hparams: dict[str, Any]  # HHTDataModule kwargs the model was trained with
    # the training matrices' frequency axis, as semg_hht.data.matrices.frequency_axis gives it;
    # None for checkpoints written before it was recorded
    frequency_axis: tuple[str, tuple[float, float] | None] | None = None
    # the probabilities' temperature, softmax(logits / T) (models/calibration.py); 1.0 for checkpoints
    # without one (older, or trained with calibration.enabled=false)
    temperature: float = 1.0
    # a person's adapted checkpoint from adapt.py raw=...: the person-alone classic side it carries
    # (semg_hht.classic.person); None for every other checkpoint
    classic: dict[str, Any] | None = None


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm running statistics, no dropout) and no gradients, ever."""
    module.eval()
    module.requires_grad_(False)
    return module


def load_classifier(path: str | Path) -> LoadedCheckpoint:
    """The checkpoint's HHTClassifier, frozen, plus what it was trained on."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    data_hparams = checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(data_hparams, Mapping):
        raise SemgError(
            "checkpoint has no data settings (datamodule_hyper_parameters)",
            path=path,
            fix="use a .ckpt written by this version's train.py",
        )
    try:
        model = HHTClassifier(**hparams)
    except (TypeError, SemgError) as err:
        raise SemgError(
            f"checkpoint from an incompatible semg-hht version ({err})",
            path=path,
            fix="use a .ckpt written by this version's train.py, or retrain",
        ) from None
    fix = "the file was edited or comes from another version: use the .ckpt train.py wrote"
    try:  # strict about the network; metric states (val_acc_best, ...) may come and go between versions
        missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    except RuntimeError as err:  # tensors of another shape
        detail = " ".join(str(err).split())[:200]
        raise SemgError(f"checkpoint weights do not fit its own architecture ({detail})", path=path, fix=fix) from None
    absent = [k for k in missing if k.startswith(NETWORK)]
    foreign = [k for k in unexpected if k.startswith(NETWORK)]
    if absent or foreign:
        detail = f"missing {absent[:3]}" if absent else f"unexpected {foreign[:3]}"
        raise SemgError(f"checkpoint weights do not fit its own architecture ({detail})", path=path, fix=fix)
    axis = (checkpoint.get("HHTDataModule") or {}).get("frequency_axis")
    if axis is not None:
        axis = (axis["scale"], tuple(axis["range"]) if axis["range"] else None)
    data_hparams = renamed_data_keys(data_hparams)
    temperature = temperature_of(checkpoint, path)
    return LoadedCheckpoint(
        path, file_sha256(path), freeze(model), hparams, data_hparams, axis, temperature, checkpoint.get("classic")
    )


def random_encoder(model_cfg: Mapping[str, Any], seed: int) -> tuple[CNNEncoder, dict[str, Any]]:
    """An untrained encoder from the model config (seed 001's "CNN+SVM Method 1"), frozen.
    Its weights depend only on (architecture, seed); the global RNG is left as it was."""
    architecture = {key: model_cfg[key] for key in ENCODER_KEYS if key in model_cfg}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = CNNEncoder(**architecture)
    return freeze(encoder), architecture
