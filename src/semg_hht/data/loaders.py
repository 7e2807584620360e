"""Batches straight out of the in-memory tensor: one gather per batch, no per-sample collate."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """A subset (``rows``) of the one in-memory tensor, without copying it: indexed by a whole
    batch of positions (from EpochBatches or EpisodeBatches), returns (x[rows[batch]], y[rows[batch]]),
    and each row's person (an index into ``people``) as a third element when ``people`` is given."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, people: torch.Tensor | None = None):
        self.x, self.y, self.rows, self.people = x, y, rows, people

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, batch: list[int]) -> tuple[torch.Tensor, ...]:
        positions = torch.as_tensor(batch, device=self.rows.device)
        index = self.rows[positions]
        if self.people is None:
            return self.x[index], self.y[index]
        return self.x[index], self.y[index], self.people[positions]


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


class EpisodeBatches(Sampler[list[int]]):
    """Batches of few-shot episodes: each holds ``people`` random people, ``classes`` random classes of
    each and ``rows`` random rows of each class (fewer where a person has fewer), drawn from (seed,
    epoch) alone (as EpochBatches, so a resumed run replays them). A within-person loss then finds, for
    every row, another recording of the same movement and of other movements of the same person, while
    a batch still mixes many people (batches of two whole people, ``(2, 5, 4)``, cost the unadapted
    model 2 points on Biopac and 11 on MioTracker: docs/experiments.md). An epoch has as many batches as
    it takes to draw as many rows as there are. ``people`` and ``y`` are each row's person (0..P-1) and class."""

    def __init__(
        self, people: torch.Tensor, y: torch.Tensor, shape: tuple[int, int, int], seed: int, epoch_of: Callable[[], int]
    ):
        self.shape, self.seed, self.epoch_of = shape, seed, epoch_of
        people, y = people.cpu(), y.cpu()
        self.n_rows = len(y)
        pairs: dict[int, dict[int, list[int]]] = {}  # person -> class -> positions
        for position, (person, label) in enumerate(zip(people.tolist(), y.tolist(), strict=True)):
            pairs.setdefault(person, {}).setdefault(label, []).append(position)
        self.rows_of = [[torch.tensor(rows) for rows in by_class.values()] for by_class in pairs.values()]

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch_of())
        n_people, n_classes, n_rows = self.shape

        def draw(n: int, k: int) -> list[int]:
            return torch.randperm(n, generator=generator)[:k].tolist()

        for _ in range(len(self)):
            batch: list[int] = []
            for person in draw(len(self.rows_of), n_people):
                classes = self.rows_of[person]
                for c in draw(len(classes), n_classes):
                    batch += classes[c][draw(len(classes[c]), n_rows)].tolist()
            yield batch

    def __len__(self) -> int:
        return -(-self.n_rows // math.prod(self.shape))


def episode_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    rows: torch.Tensor,
    people: torch.Tensor,
    shape: tuple[int, int, int],
    seed: int,
    pin_memory: bool,
    epoch_of: Callable[[], int],
) -> DataLoader:
    """A training DataLoader of few-shot episodes (EpisodeBatches): batches (x, y, person).
    ``shape`` is (people, classes, rows) per batch."""
    sampler = EpisodeBatches(people, y[rows], shape, seed, epoch_of)
    return DataLoader(TensorBatches(x, y, rows, people), sampler=sampler, batch_size=None, pin_memory=pin_memory)


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
