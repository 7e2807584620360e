"""Checkpoint writing that is atomic in the target folder, warns before the disk fills and says
plainly when a write fails.

Lightning's own "atomic" save is not: fsspec writes the temp file under $TMPDIR and shutil.move
then copies it over the target in place when $TMPDIR is another file system (usual on clusters),
so a full disk leaves a truncated checkpoint. Here the temp file sits beside the target and
replaces it with os.replace after fsync (semg_hht.io.atomic_open), whatever $TMPDIR is.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from semg_hht.errors import SemgError
from semg_hht.io import atomic_open

log = logging.getLogger(__name__)


class SafeCheckpointIO(TorchCheckpointIO):
    """Warns when free space drops below ``headroom`` x the last checkpoint's size (or
    ``min_free_mb``), and turns a failed write (disk full, permissions) into a one-line error."""

    def __init__(self, min_free_mb: float, headroom: float):
        super().__init__()
        self.min_free_mb, self.headroom = min_free_mb, headroom
        self.last_size = 0

    def _warn_if_short(self, path: Path) -> None:
        folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("."))
        free = shutil.disk_usage(folder).free
        needed = max(self.min_free_mb * 2**20, self.headroom * self.last_size)
        if free < needed:
            log.warning(
                "only %.0f MB free for checkpoints in %s (checkpoints are %.0f MB): free some space soon",
                free / 2**20, folder, self.last_size / 2**20,
            )  # fmt: skip

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        path = Path(path)
        self._warn_if_short(path)
        try:
            if "://" in str(path):  # remote storage (s3://...): fsspec's own transaction
                super().save_checkpoint(checkpoint, path, storage_options)
            else:
                buffer = io.BytesIO()  # serialise first: torch's writer turns a failed write into
                torch.save(checkpoint, buffer)  # a RuntimeError; a plain write raises the OSError
                with atomic_open(path, "wb") as f:
                    f.write(buffer.getbuffer())
        except OSError as err:
            raise SemgError(
                f"could not write checkpoint ({err.strerror or err}); the previous checkpoint file is intact",
                path=path,
                fix="free disk space, then resume with ckpt_path=<run>/checkpoints/last.ckpt",
            ) from None
        self.last_size = os.path.getsize(path)
