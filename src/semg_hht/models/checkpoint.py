"""Reading checkpoints safely (weights-only unpickling: no code in a checkpoint ever runs) and
telling the user plainly when one does not fit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from semg_hht.errors import SemgError
from semg_hht.models.encoder import ENCODER_KEYS

# Hyperparameters that change tensor shapes or meaning: a checkpoint must agree on all of them (every
# encoder argument, read off its signature so a new one cannot be forgotten, and the head's).
ARCHITECTURE_KEYS = (*ENCODER_KEYS, "head", "head_hidden", "num_classes", "class_names")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True; a missing, truncated or foreign file is a SemgError."""
    path = Path(path)
    if not path.is_file():
        raise SemgError(
            "checkpoint not found", path=path, fix="pass an existing .ckpt (e.g. <run>/checkpoints/last.ckpt)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle with code, not a torch file at all
        first_line = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise SemgError(
            f"not a readable semg-hht checkpoint ({first_line})",
            path=path,
            fix="use a .ckpt written by train.py; truncated or foreign files are refused",
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise SemgError("file is not a semg-hht Lightning checkpoint", path=path, fix="use a .ckpt written by train.py")
    return checkpoint


def architecture_mismatch(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """'key: checkpoint X, config Y' for every architecture key that differs."""
    return [
        f"{key}: checkpoint {saved.get(key)!r}, config {wanted.get(key)!r}"
        for key in ARCHITECTURE_KEYS
        if key in wanted and saved.get(key) != wanted.get(key)
    ]


def check_compatible(path: str | Path, wanted: Mapping[str, Any]) -> dict[str, Any]:
    checkpoint = read_checkpoint(path)
    differences = architecture_mismatch(checkpoint["hyper_parameters"], wanted)
    if differences:
        raise SemgError(
            "checkpoint does not match the model config (" + "; ".join(differences) + ")",
            path=path,
            fix="resume with the checkpoint's settings (the same model.* overrides) or start a new run",
        )
    return checkpoint
