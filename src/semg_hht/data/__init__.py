"""Data: npz reading, labels, splits, and the LightningDataModule.

HHTDataModule is imported on first use: make_hht and its worker processes read matrices through
semg_hht.data.matrices and must not pay for importing Lightning (seconds per process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semg_hht.data.datamodule import HHTDataModule

__all__ = ["HHTDataModule"]


def __getattr__(name: str) -> Any:
    if name == "HHTDataModule":
        from semg_hht.data.datamodule import HHTDataModule

        return HHTDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
