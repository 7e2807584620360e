"""Checkpoint writing that warns before the disk fills and says plainly when a write fails.

Lightning already writes atomically (the bytes go to a temp file that replaces the target only
when complete), so a failed write leaves the previous checkpoint intact; this adds the words.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from semg_hht.errors import SemgError

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
            super().save_checkpoint(checkpoint, path, storage_options)
        except OSError as err:
            raise SemgError(
                f"could not write checkpoint ({err.strerror or err}); the previous checkpoint file is intact",
                path=path,
                fix="free disk space, then resume with ckpt_path=<run>/checkpoints/last.ckpt",
            ) from None
        self.last_size = os.path.getsize(path)
