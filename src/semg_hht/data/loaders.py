"""Batches straight out of the in-memory tensor: one gather per batch, no per-sample collate."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """A subset (``rows``) of the one in-memory tensor, without copying it: indexed by a whole
    batch of positions (from EpochBatches), returns (x[rows[batch]], y[rows[batch]])."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor):
        self.x, self.y, self.rows = x, y, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.rows[torch.as_tensor(batch, device=self.rows.device)]
        return self.x[index], self.y[index]


class EpochBatches(Sampler[list[int]]):
    """Row batches, shuffled from (seed, epoch) alone: a run resumed at epoch k replays exactly the
    order an uninterrupted run would have used.

    The epoch comes from ``epoch_of`` (the trainer's current_epoch), not from Lightning's
    set_epoch, whose counter runs one ahead after resuming from an end-of-epoch checkpoint.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool, epoch_of: Callable[[], int]):
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.epoch_of = epoch_of

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch_of())
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (rest > 0 and not self.drop_last)


def batch_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    rows: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int,
    pin_memory: bool,
    epoch_of: Callable[[], int],
) -> DataLoader:
    """A DataLoader over rows of in-memory tensors. Training drops a last batch of one sample,
    which BatchNorm cannot normalise."""
    drop_last = shuffle and len(rows) % batch_size == 1
    sampler = EpochBatches(len(rows), batch_size, shuffle, seed, drop_last, epoch_of)
    return DataLoader(TensorBatches(x, y, rows), sampler=sampler, batch_size=None, pin_memory=pin_memory)
