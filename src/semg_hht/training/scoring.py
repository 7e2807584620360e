"""The scored model's class probabilities on the rows a report covers (validation, test set), by one
trainer.predict: Lightning loads the checkpoint, runs the precision of training (bf16 autocast too)
and, under DDP, gives each process a share of the rows; the shares are gathered back here."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

RowSet = tuple[torch.Tensor, torch.Tensor]  # (x (N, C, H, W), the rows of x to score)
Share = tuple[torch.Tensor, torch.Tensor]  # one process's (probabilities (n, classes), positions (n,))


class RowsOf(Dataset):
    """(x[rows[p]], p) for the positions p of ``rows``, without copying x: the position travels with
    its matrix, so the probabilities go back into row order whichever process scored them.

    With fewer rows than processes some rows repeat (positions modulo n): Lightning's predict sampler
    refuses to leave a process without a row, and a repeated row lands in the same place again.
    """

    def __init__(self, x: torch.Tensor, rows: torch.Tensor, processes: int):
        self.x, self.rows = x, rows
        self.positions = torch.arange(max(len(rows), processes)) % len(rows)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        p = int(self.positions[i])
        return self.x[int(self.rows[p])], p


def score_sets(
    trainer: L.Trainer, model: L.LightningModule, sets: Mapping[str, RowSet], ckpt_path: str | None, batch_size: int
) -> dict[str, torch.Tensor]:
    """Class probabilities (float32, CPU, (n_rows, n_classes) in the order of ``rows``) of every named
    set with at least one row, from the weights in ``ckpt_path`` (None: the model as it is).

    trainer.predict loads the checkpoint into ``model`` in place and restores the callbacks' states
    from it, and resets trainer.callback_metrics: read what you need of them first. Under DDP it is
    collective: every process calls this, and every process gets all the rows back.
    """
    sets = {name: (x, rows) for name, (x, rows) in sets.items() if len(rows)}
    if not sets:
        return {}
    loaders = [DataLoader(RowsOf(x, rows, trainer.world_size), batch_size=batch_size) for x, rows in sets.values()]
    trainer.limit_predict_batches = 1.0  # fast_dev_run limits predict to one batch; a report covers every row
    outputs = trainer.predict(
        model, dataloaders=loaders, ckpt_path=ckpt_path, weights_only=True, return_predictions=True
    )
    if len(loaders) == 1:
        outputs = [outputs]  # Lightning unnests the batches of a single dataloader
    return {
        name: in_row_order(gathered(trainer, batches), len(rows))
        for (name, (_, rows)), batches in zip(sets.items(), outputs, strict=True)
    }


def gathered(trainer: L.Trainer, batches: list[Share]) -> list[Share]:
    """This process's (probabilities, positions) and, under DDP, every other process's (shares of
    different lengths: all_gather_object, not the equal-shape all_gather)."""
    share = (torch.cat([p for p, _ in batches]), torch.cat([i for _, i in batches]))
    if trainer.world_size == 1 or not dist.is_initialized():
        return [share]
    shares: list[Share | None] = [None] * trainer.world_size
    dist.all_gather_object(shares, share)
    return shares


def in_row_order(shares: list[Share], n: int) -> torch.Tensor:
    """The probabilities of positions 0..n-1 from the shares (a repeated position: the same row again)."""
    probs = torch.zeros(n, shares[0][0].shape[1])
    seen = torch.zeros(n, dtype=torch.bool)
    for p, positions in shares:
        probs[positions], seen[positions] = p, True
    if not seen.all():  # an unscored row would silently read as a prediction of class 0
        raise RuntimeError(f"trainer.predict left {int((~seen).sum())} of {n} rows unscored")
    return probs
