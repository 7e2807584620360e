"""The LightningDataModule: find recordings, read labels, load everything once, split, batch."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.data.cache import load_matrices_cached
from semg_hht.data.labels import (
    FilenameScheme,
    Recording,
    read_manifest,
    row_filter,
    row_matches,
    target_classes,
    target_value,
)
from semg_hht.data.loaders import batch_loader
from semg_hht.data.matrices import npz_files
from semg_hht.data.splits import SPLITS, group_split, stratified_split
from semg_hht.errors import SemgError
from semg_hht.io import write_csv

log = logging.getLogger(__name__)


class HHTDataModule(L.LightningDataModule):
    """HHT matrices (.npz) of a folder, labelled by file name or by a CSV manifest.

    Every argument comes from conf/data/*.yaml (see the comments there); the whole labelled set
    is read once into one float32 tensor (N, C, H, W) and batches are gathered from it.
    """

    def __init__(
        self,
        *,
        data_dir: str,
        label_source: str,
        manifest: str | None,
        allow_outside_paths: bool,
        target: str,
        classes: Mapping[str, Sequence[str] | None],
        filename_scheme: Mapping[str, Any],
        input_size: int,
        in_channels: int,
        normalize: str,
        split: str,
        val_fraction: float,
        split_seed: int,
        fold: int,
        n_folds: int,
        batch_size: int,
        eval_batch_size: int,
        shuffle_seed: int,
        load_workers: int,
        bad_files: str,
        pin_memory: bool,
        augment: Mapping[str, Any] | None,
        # Defaults only so checkpoints written before these keys existed still rebuild; YAML sets them.
        filter: Mapping[str, Any] | None = None,  # the YAML key data.filter
        cache_dir: str | None = None,
        on_device: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.hparams.data_dir = str(Path(data_dir).resolve())  # checkpoints find the data from anywhere
        if label_source not in ("filename", "manifest"):
            raise SemgError(f"unknown data.label_source '{label_source}'", fix="use filename or manifest")
        if split not in SPLITS:
            raise SemgError(f"unknown data.split '{split}'", fix=f"use one of {list(SPLITS)}")
        if bad_files not in ("error", "skip"):
            raise SemgError(f"unknown data.bad_files '{bad_files}'", fix="use error or skip")
        self.scheme = FilenameScheme(**filename_scheme)
        self.row_filter = row_filter(filter or {})
        if self.row_filter and label_source != "manifest":
            raise SemgError("data.filter selects manifest rows", fix="use data.label_source=manifest or filter={}")
        augment = dict(augment or {})
        self.augment = TimeFrequencyAugment(**augment) if augment.pop("enabled", False) else None
        self.data_dir = Path(self.hparams.data_dir)  # the resolved path the checkpoint records
        self.class_names: list[str] = []
        self.recordings: list[Recording] = []  # labelled and usable, aligned with x / y
        self.unlabeled: list[Path] = []  # Test* files (or rows without the target label)
        self.skipped: list[SemgError] = []
        self.n_found = 0
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.train_index = self.val_index = np.empty(0, dtype=np.int64)
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # device -> (x, y) there

    # ---------------------------------------------------------------- discovery
    def _find_recordings(self) -> list[Recording]:
        hp = self.hparams
        if not self.data_dir.is_dir():
            raise SemgError(
                "data folder not found",
                path=self.data_dir,
                fix="set data.data_dir (or paths.data_dir) to a folder",
            )
        if hp.label_source == "manifest":
            if not hp.manifest:
                raise SemgError("data.label_source=manifest needs data.manifest", fix="name the CSV file")
            recordings = read_manifest(self.data_dir / hp.manifest, self.data_dir, allow_outside=hp.allow_outside_paths)
            recordings = self._filtered(recordings)
            self.n_found = len(recordings)
            return recordings
        files = npz_files(self.data_dir)
        if not files:
            raise SemgError(
                "no .npz files in the data folder",
                path=self.data_dir,
                fix="convert raw recordings with make_hht.py, or point data.data_dir at the matrices",
            )
        self.n_found = len(files)
        recordings = []
        for path in files:
            try:
                recordings.append(self.scheme.parse(path))
            except SemgError as err:
                self.skipped.append(err)
        return recordings

    def _filtered(self, recordings: list[Recording]) -> list[Recording]:
        """Manifest rows whose columns match data.filter (e.g. {device: biopac}); all rows when empty."""
        if not self.row_filter:
            return recordings
        kept = [r for r in recordings if row_matches(r.labels, self.row_filter)]
        if not kept:
            raise SemgError(
                f"no manifest row matches data.filter={self.row_filter}",
                path=self.data_dir / self.hparams.manifest,
                fix="check the column names and values (make_hht passes the input manifest's columns through)",
            )
        log.info("data.filter %s: %d of %d manifest rows", self.row_filter, len(kept), len(recordings))
        return kept

    def _labelled(self, recordings: list[Recording]) -> list[Recording]:
        """Recordings with a known target in the class list; the rest are unlabeled or bad."""
        hp = self.hparams
        self.class_names = target_classes(hp.target, hp.classes, recordings)
        labelled = []
        for rec in recordings:
            value = target_value(rec, hp.target)
            if value is None:
                self.unlabeled.append(rec.path)
            elif value not in self.class_names:
                self.skipped.append(
                    SemgError(
                        f"label '{value}' is not among data.classes for target {hp.target}: {self.class_names}",
                        path=rec.path,
                        fix="add it to data.classes (or a synonym to data.filename_scheme), or remove the file",
                    )
                )
            elif not rec.path.is_file():
                self.skipped.append(
                    SemgError("file listed in the manifest is missing", path=rec.path, fix="restore it")
                )
            else:
                labelled.append(rec)
        return labelled

    def _report_skipped(self, total: int) -> None:
        if not self.skipped:
            return
        listing = "\n".join(f"  - {err}" for err in self.skipped)
        if self.hparams.bad_files == "error":
            log.error("unusable files:\n%s", listing)
            raise SemgError(
                f"{len(self.skipped)} of {total} files are unusable; first: {self.skipped[0]}",
                fix="fix or remove them (all listed in the log), or set data.bad_files=skip to train without them",
            )
        log.warning("skipping %d of %d unusable files:\n%s", len(self.skipped), total, listing)

    # ---------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        if self.x is not None:
            return  # loaded once for every stage
        hp = self.hparams
        found = self._find_recordings()
        labelled = self._labelled(found)
        x, errors = load_matrices_cached(
            [r.path for r in labelled], hp.in_channels, hp.input_size, hp.normalize, hp.load_workers, hp.cache_dir
        )
        self.skipped.extend(errors.values())
        self._report_skipped(self.n_found)
        if errors:
            keep = np.setdiff1d(np.arange(len(labelled)), list(errors))
            x, labelled = x[keep], [labelled[i] for i in keep]
        if not labelled:
            raise SemgError(
                f"no labelled recordings for target '{hp.target}'",
                path=self.data_dir,
                fix="check names/manifest",
            )
        self.recordings = labelled
        y = np.array([self.class_names.index(target_value(r, hp.target)) for r in labelled], dtype=np.int64)
        if hp.split == "group":
            subjects = [r.subject for r in labelled]
            self.train_index, self.val_index = group_split(
                y, subjects, self.class_names, hp.n_folds, hp.fold, hp.split_seed
            )
        else:
            self.train_index, self.val_index = stratified_split(y, self.class_names, hp.val_fraction, hp.split_seed)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        counts = Counter(self.class_names[i] for i in y.tolist())
        log.info(
            "loaded %d recordings %s (%d unlabeled left for prediction); split=%s: %d train / %d val",
            len(y),
            dict(counts),
            len(self.unlabeled),
            hp.split,
            len(self.train_index),
            len(self.val_index),
        )

    # ---------------------------------------------------------------- loaders
    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x and y where batches are gathered: with on_device, copied once to the trainer's
        accelerator (batches then never cross the host link); else the CPU tensors."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if not self.hparams.on_device or device.type == "cpu":
            return self.x, self.y
        if str(device) not in self._on_device:
            self._on_device = {str(device): (self.x.to(device), self.y.to(device))}
        return self._on_device[str(device)]

    def _loader(self, index: np.ndarray, batch_size: int, shuffle: bool):
        x, y = self._tensors()
        rows = torch.from_numpy(index).to(x.device)
        hp = self.hparams
        pin = hp.pin_memory and x.device.type == "cpu"
        return batch_loader(x, y, rows, batch_size, shuffle, hp.shuffle_seed, pin, self._epoch)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self):
        return self._loader(self.train_index, self.hparams.batch_size, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_index, self.hparams.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Augment on the device, during training only (never at validation or prediction)."""
        trainer = self.trainer
        if self.augment is not None and trainer is not None and trainer.training:
            x, y = batch
            return self.augment(x), y
        return batch

    # ---------------------------------------------------------------- bookkeeping
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_rows(self) -> list[dict[str, Any]]:
        rows = []
        for subset, index in (("train", self.train_index), ("val", self.val_index)):
            for i in index.tolist():
                rec = self.recordings[i]
                label = self.class_names[int(self.y[i])]
                rows.append({"file": str(rec.path), "subset": subset, "label": label, "subject": rec.subject or ""})
        return rows

    def write_split(self, path: str | Path) -> Path:
        """The exact file lists used, so any number can be traced back to its recordings."""
        return write_csv(path, self.split_rows(), ["file", "subset", "label", "subject"])

    def state_dict(self) -> dict[str, Any]:
        return {"augment": self.augment.state_dict()} if self.augment else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.augment and "augment" in state_dict:
            self.augment.load_state_dict(state_dict["augment"])
