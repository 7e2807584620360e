"""Resuming into a new run folder without forgetting which checkpoint was best.

Every run, a resumed one too, writes to its own folder. Lightning restores a ModelCheckpoint's
"best so far" only when the checkpoint folder is unchanged, so a resumed run would otherwise
call its first new epoch the best. Adopting rewrites the callback state to the new folder and
copies the best checkpoint along, then resumes from that adopted copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from semg_hht.errors import SemgError
from semg_hht.io import atomic_open
from semg_hht.models.checkpoint import check_compatible


def _moved(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old) :]
    if isinstance(value, Mapping):
        return {_moved(k, old, new): _moved(v, old, new) for k, v in value.items()}
    return value


def adopt_checkpoint(
    ckpt_path: str | Path, model_hparams: Mapping[str, Any], checkpoint_dir: Path, max_epochs: int | None = None
) -> Path:
    """Check the checkpoint fits the model (and max_epochs), move its callback state into
    checkpoint_dir (copying the best checkpoint there) and return the checkpoint to resume from."""
    checkpoint = check_compatible(ckpt_path, model_hparams)
    done = int(checkpoint.get("epoch", -1)) + 1  # epochs the checkpoint has trained
    if max_epochs is not None and max_epochs < done:
        raise SemgError(
            f"trainer.max_epochs={max_epochs} is below the {done} epochs this checkpoint has already trained",
            path=ckpt_path,
            fix=f"resume with trainer.max_epochs > {done}",
        )
    old_dir = Path(ckpt_path).resolve().parent
    checkpoint_dir = checkpoint_dir.resolve()
    if old_dir == checkpoint_dir:
        return Path(ckpt_path)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for state in checkpoint.get("callbacks", {}).values():
        best = Path(str(state.get("best_model_path") or ""))
        if best.is_file() and best.parent == old_dir and not (checkpoint_dir / best.name).exists():
            shutil.copy2(best, checkpoint_dir / best.name)
    checkpoint["callbacks"] = _moved(checkpoint.get("callbacks", {}), str(old_dir), str(checkpoint_dir))
    adopted = checkpoint_dir / ".resume.ckpt"
    with atomic_open(adopted, "wb") as f:
        torch.save(checkpoint, f)
    return adopted
