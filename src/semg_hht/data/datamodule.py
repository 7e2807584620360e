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

from semg_hht.choices import SPLITS
from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.data.cache import load_matrices_cached
from semg_hht.data.labels import (
    Recording,
    read_manifest,
    row_filter,
    row_matches,
    target_classes,
    target_value,
)
from semg_hht.data.loaders import batch_loader, episode_loader
from semg_hht.data.matrices import dataset_reference, frequency_axis, npz_files, to_reference
from semg_hht.data.person_norm import person_standardize
from semg_hht.data.splits import group_split, no_split, split_rows, stratified_split, write_split
from semg_hht.errors import SemgError
from semg_hht.filename_scheme import FilenameScheme

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
        scaling: str,
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
        test_dir: str | None = None,
        test_manifest: str | None = None,
        test_filter: Mapping[str, Any] | None = None,
        person_norm: Mapping[str, Any] | None = None,
        extra_train: Mapping[str, Any] | None = None,
        scale_reference: float | None = None,
        episodes: Mapping[str, int] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.hparams.data_dir = str(Path(data_dir).resolve())  # checkpoints find the data from anywhere
        if test_dir is not None:
            self.hparams.test_dir = str(Path(test_dir).resolve())
        if label_source not in ("filename", "manifest"):
            raise SemgError(f"unknown data.label_source '{label_source}'", fix="use filename or manifest")
        if split not in SPLITS:
            raise SemgError(f"unknown data.split '{split}'", fix=f"use one of {list(SPLITS)}")
        if bad_files not in ("error", "skip"):
            raise SemgError(f"unknown data.bad_files '{bad_files}'", fix="use error or skip")
        if scale_reference is not None and (scaling != "dataset" or not scale_reference > 0):
            raise SemgError(
                f"data.scale_reference={scale_reference} is for data.scaling=dataset (> 0); scaling is {scaling}",
                fix="set data.scale_reference=null, or data.scaling=dataset with a positive reference",
            )
        self.scheme = FilenameScheme(**filename_scheme)
        self.row_filter = row_filter(filter or {})
        self.test_row_filter = row_filter(test_filter or {})
        self.extra_row_filter = row_filter(extra_train or {})
        filters = (("filter", self.row_filter), ("test_filter", self.test_row_filter))
        for key, rows in (*filters, ("extra_train", self.extra_row_filter)):
            if rows and label_source != "manifest":
                raise SemgError(
                    f"data.{key} selects manifest rows", fix=f"use data.label_source=manifest or {key}={{}}"
                )
        augment = dict(augment or {})
        self.augment = TimeFrequencyAugment(**augment) if augment.pop("enabled", False) else None
        self.data_dir = Path(self.hparams.data_dir)  # the resolved path the checkpoint records
        self.class_names: list[str] = []
        self.recordings: list[Recording] = []  # labelled and usable, aligned with x / y
        self.n_extra = 0  # the last n_extra of recordings are data.extra_train rows (training only)
        self._manifest_rows: list[Recording] = []  # every row of data.manifest, before data.filter
        self.unlabeled: list[Path] = []  # Test* files (or rows without the target label)
        self.skipped: list[SemgError] = []
        self.n_found = 0
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.train_index = self.val_index = np.empty(0, dtype=np.int64)
        self.train_people: torch.Tensor | None = None  # each training row's person, with data.episodes
        self.test_recordings: list[Recording] = []  # the labelled test set (data.test_dir / data.test_filter)
        self.test_x: torch.Tensor | None = None
        self.test_y: torch.Tensor | None = None
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # device -> (x, y) there
        self.frequency_axis: tuple[str, tuple[float, float] | None] | None = None  # the files' (setup)

    # ---------------------------------------------------------------- discovery
    def _find_recordings(self) -> list[Recording]:
        hp = self.hparams
        if not self.data_dir.is_dir():
            raise SemgError(
                "data folder not found",
                path=self.data_dir,
                fix="set paths.data_dir=<folder of .npz> (after make train, experiment=demo reads data/demo/hht)",
            )
        if hp.label_source == "manifest":
            if not hp.manifest:
                raise SemgError("data.label_source=manifest needs data.manifest", fix="name the CSV file")
            recordings = read_manifest(self.data_dir / hp.manifest, self.data_dir, allow_outside=hp.allow_outside_paths)
            self._manifest_rows = recordings
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
                recordings.append(Recording(path, self.scheme.labels(path)))
            except SemgError as err:
                self.skipped.append(err)
        return recordings

    def _filtered(self, recordings: list[Recording]) -> list[Recording]:
        """Manifest rows whose columns match data.filter (e.g. {device: biopac}); all rows when empty."""
        return select(recordings, self.row_filter, "filter", self.data_dir / str(self.hparams.manifest))

    @property
    def has_test_set(self) -> bool:
        return self.hparams.test_dir is not None or bool(self.test_row_filter)

    def _split_off_test(self, recordings: list[Recording]) -> tuple[list[Recording], list[Recording]]:
        """(training side, test set). The test set is data.test_dir (its manifest, data.test_filter
        on it), or without a test_dir the rows of the training manifest that match data.test_filter;
        it never shares a file or a subject with the training side."""
        hp = self.hparams
        if hp.test_dir is None:
            if not self.test_row_filter:
                return recordings, []
            test = select(recordings, self.test_row_filter, "test_filter", self.data_dir / str(hp.manifest))
            chosen = {r.path for r in test}
            return [r for r in recordings if r.path not in chosen], test
        test_dir = Path(hp.test_dir)
        if not test_dir.is_dir():
            raise SemgError(
                "test folder not found", path=test_dir, fix="set data.test_dir to a folder of .npz matrices"
            )
        if hp.label_source == "manifest":
            manifest = test_dir / (hp.test_manifest or hp.manifest)
            test = read_manifest(manifest, test_dir, allow_outside=hp.allow_outside_paths)
            test = select(test, self.test_row_filter, "test_filter", manifest)
        else:
            files = sorted(test_dir.glob("*.npz"))
            if not files:
                raise SemgError(
                    "no .npz files in the test folder", path=test_dir, fix="point data.test_dir at matrices"
                )
            test = [Recording(f, self.scheme.labels(f)) for f in files if not self.scheme.is_unlabeled(f.name)]
        return recordings, test

    def _check_test_set(self, train: list[Recording], test: list[Recording]) -> list[Recording]:
        """The labelled test recordings; one line for overlap with training, unknown classes or none left."""
        hp = self.hparams
        where = hp.test_dir or self.data_dir / str(hp.manifest)
        shared_files = {r.path for r in train} & {r.path for r in test}
        if shared_files:
            raise SemgError(
                f"{len(shared_files)} test recordings are also training recordings (first: {min(shared_files).name})",
                path=where,
                fix="the test set must hold recordings the model never trains or validates on",
            )
        shared_people = ({r.subject for r in train} & {r.subject for r in test}) - {None}
        if shared_people:
            raise SemgError(
                f"subjects {sorted(shared_people)[:5]} are in both the training side and the test set",
                path=where,
                fix="hold whole people out (e.g. data.test_filter={subject: [...]}) so the test measures new people",
            )
        labelled = [r for r in test if target_value(r, hp.target) is not None]
        unknown = sorted({target_value(r, hp.target) for r in labelled} - set(self.class_names))
        if unknown:
            raise SemgError(
                f"test labels {unknown} are not among the trained classes {self.class_names}",
                path=where,
                fix="test on the trained classes only (data.test_filter) or add the class to training",
            )
        missing = [r.path for r in labelled if not r.path.is_file()]
        if missing:
            raise SemgError("test file listed in the manifest is missing", path=missing[0], fix="restore it")
        if not labelled:
            raise SemgError(
                f"the test set has no recording labelled for target '{hp.target}'",
                path=where,
                fix="check data.test_dir / data.test_manifest / data.test_filter",
            )
        if len(labelled) < len(test):
            log.warning("test set: %d recordings without a %s label left out", len(test) - len(labelled), hp.target)
        return labelled

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
        found, test = self._split_off_test(self._find_recordings())
        labelled = self._labelled(found)
        test = self._check_test_set(labelled, test) if self.has_test_set else []
        extra, dropped = self._extra_rows(found, test)
        x, errors = load_matrices_cached(
            [r.path for r in labelled + extra + test],
            hp.in_channels,
            hp.input_size,
            hp.scaling,
            hp.load_workers,
            hp.cache_dir,
        )
        self.skipped.extend(errors.values())
        self._report_skipped(self.n_found + len(extra) + (len(test) if hp.test_dir else 0))
        if errors:
            keep = np.setdiff1d(np.arange(len(x)), list(errors))
            n, m = len(labelled), len(labelled) + len(extra)
            x = x[keep]
            labelled, extra, test = (
                [labelled[i] for i in keep if i < n],
                [extra[i - n] for i in keep if n <= i < m],
                [test[i - m] for i in keep if i >= m],
            )
        if not labelled:
            raise SemgError(
                f"no labelled recordings for target '{hp.target}'",
                path=self.data_dir,
                fix="check names/manifest",
            )
        self.recordings, self.test_recordings, self.n_extra = labelled + extra, test, len(extra)
        self.frequency_axis = frequency_axis([r.path for r in self.recordings + test])
        scale, span = self.frequency_axis
        if scale == "log" and self.augment is not None:
            self.augment.use_log_axis(hp.input_size, *span)
        y = self._targets(self.recordings)
        # the split is drawn over the data.filter rows alone: the validation people are the same with or
        # without data.extra_train, whose rows then join the training side only
        train, self.val_index = self._split(y[: len(labelled)], labelled)
        self._check_extra_not_validation(extra)
        self.train_index = np.concatenate([train, np.arange(len(labelled), len(self.recordings))])
        if self.extra_row_filter:
            people = {r.subject for r in extra} - {None}
            log.info(
                "data.extra_train %s: %d recordings of %d people added to training (%d rows of test people "
                "and %d already selected by data.filter left out)",
                self.hparams.extra_train,
                len(extra),
                len(people),
                *dropped,
            )
        # each training row's person, for data.episodes; recordings without a subject are refused now
        self.train_people = self._people_of(self.train_index) if (hp.episodes or {}).get("people") else None
        n = len(self.recordings)
        self.x, self.y = torch.from_numpy(x[:n]), torch.from_numpy(y)
        if test:
            self.test_x, self.test_y = torch.from_numpy(x[n:]), torch.from_numpy(self._targets(test))
        if hp.scaling == "dataset":
            self._to_dataset_scale()
        if (hp.person_norm or {}).get("enabled"):
            self.x = self._person_normalised(self.x, self.recordings, y)
            if test:
                self.test_x = self._person_normalised(self.test_x, test, self.test_y.numpy())
        counts = Counter(self.class_names[i] for i in y.tolist())
        log.info(
            "loaded %d recordings %s (%d unlabeled left for prediction); split=%s: %d train / %d val / %d test",
            len(y),
            dict(counts),
            len(self.unlabeled),
            hp.split,
            len(self.train_index),
            len(self.val_index),
            len(test),
        )

    def _extra_rows(self, found: list[Recording], test: list[Recording]) -> tuple[list[Recording], tuple[int, int]]:
        """data.extra_train: the manifest rows it matches, whatever data.filter says, less the test set's
        rows and people and the rows data.filter already selected; (rows, (test rows left out, rows
        already selected)). Rows without the target label are left out; a label outside the classes is an error."""
        if not self.extra_row_filter:
            return [], (0, 0)
        manifest = self.data_dir / str(self.hparams.manifest)
        matched = select(self._manifest_rows, self.extra_row_filter, "extra_train", manifest)
        test_people = {r.subject for r in test} - {None}
        test_files = {r.path for r in test}
        selected = {r.path for r in found}

        def of_test(rec: Recording) -> bool:
            in_filter = bool(self.test_row_filter) and row_matches(rec.row, self.test_row_filter)
            return in_filter or rec.path in test_files or rec.subject in test_people

        kept = [r for r in matched if not of_test(r)]
        n_test = len(matched) - len(kept)
        n_selected = sum(r.path in selected for r in kept)
        kept = [r for r in kept if r.path not in selected]
        target = self.hparams.target
        labelled = [r for r in kept if target_value(r, target) is not None]
        if not labelled:
            raise SemgError(
                f"data.extra_train={self.hparams.extra_train} adds no recording with a {target} label "
                f"({len(matched)} rows match: {n_test} of test people, {n_selected} already selected by data.filter)",
                path=manifest,
                fix="match rows outside data.filter and data.test_filter, or set data.extra_train={}",
            )
        unknown = sorted({target_value(r, target) for r in labelled} - set(self.class_names))
        if unknown:
            raise SemgError(
                f"data.extra_train rows have {target} labels {unknown} outside the classes {self.class_names}",
                path=manifest,
                fix="narrow data.extra_train to rows of the trained classes, or add the class to data.classes",
            )
        missing = [r for r in labelled if not r.path.is_file()]
        for rec in missing:
            self.skipped.append(SemgError("file listed in the manifest is missing", path=rec.path, fix="restore it"))
        return [r for r in labelled if r not in missing], (n_test, n_selected)

    def _check_extra_not_validation(self, extra: list[Recording]) -> None:
        """One line when a data.extra_train row belongs to a validation person (the rows data.filter
        selected are never extra rows, so a validation file cannot be one)."""
        val_people = {self.recordings[i].subject for i in self.val_index.tolist()} - {None}
        shared = sorted({r.subject for r in extra} & val_people)
        if shared:
            raise SemgError(
                f"data.extra_train={self.hparams.extra_train} adds recordings of validation people {shared[:5]}",
                path=self.data_dir / str(self.hparams.manifest),
                fix="add people outside data.filter (e.g. another device's), or set data.extra_train={}",
            )

    def _to_dataset_scale(self) -> None:
        """data.scaling=dataset: every matrix (in its recording's units) divided by one number, the
        training rows' median peak, unless the checkpoint or config already fixed it; the number is
        saved with the data settings in every checkpoint, so new people are read on the same scale."""
        hp = self.hparams
        if self.n_extra:
            log.warning(
                "data.scaling=dataset with data.extra_train: one reference for all %d training recordings, so the "
                "added rows must be in the same units (another device's are not: use data.scaling=recording)",
                len(self.train_index),
            )
        if hp.scale_reference is None:
            hp.scale_reference = dataset_reference(self.x[torch.from_numpy(self.train_index)])
            log.info(
                "data.scaling=dataset: reference %.4g (median peak of %d training recordings)",
                hp.scale_reference,
                len(self.train_index),
            )
        self.x = to_reference(self.x, hp.scaling, hp.scale_reference)
        if self.test_x is not None:
            self.test_x = to_reference(self.test_x, hp.scaling, hp.scale_reference)

    def _person_normalised(self, x: torch.Tensor, recordings: list[Recording], y: np.ndarray) -> torch.Tensor:
        """data.person_norm: every person standardised by their own statistics (data/person_norm.py)."""
        settings = self.hparams.person_norm
        calibrate_on = settings.get("calibrate_on")
        calibration = None
        if calibrate_on:
            unknown = sorted(set(calibrate_on) - set(self.class_names))
            if unknown:
                raise SemgError(f"person_norm.calibrate_on {unknown} are not classes", fix=f"use {self.class_names}")
            calibration = np.isin(y, [self.class_names.index(c) for c in calibrate_on])
        return person_standardize(x, [r.subject for r in recordings], settings.get("log_ref"), calibration)

    def _targets(self, recordings: list[Recording]) -> np.ndarray:
        names = self.class_names
        return np.array([names.index(target_value(r, self.hparams.target)) for r in recordings], dtype=np.int64)

    def _split(self, y: np.ndarray, recordings: list[Recording]) -> tuple[np.ndarray, np.ndarray]:
        """Train / validation rows; every window of a recording (and of a subject) on one side."""
        hp = self.hparams
        if hp.split == "none":
            return no_split(y, self.class_names)
        if hp.split == "group":
            subjects = [r.subject for r in recordings]
            return group_split(y, subjects, self.class_names, hp.n_folds, hp.fold, hp.split_seed)
        units = [r.recording for r in recordings]
        return stratified_split(y, self.class_names, hp.val_fraction, hp.split_seed, units)

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

    def _loader(self, index: np.ndarray, batch_size: int, shuffle: bool, tensors=None, people=None):
        x, y = tensors or self._tensors()
        rows = torch.from_numpy(index).to(x.device)
        hp = self.hparams
        pin = hp.pin_memory and x.device.type == "cpu"
        if people is not None:  # few-shot episodes (training)
            shape = (hp.episodes["people"], hp.episodes["classes"], hp.episodes["rows"])
            return episode_loader(x, y, rows, people.to(x.device), shape, hp.shuffle_seed, pin, self._epoch)
        return batch_loader(x, y, rows, batch_size, shuffle, hp.shuffle_seed, pin, self._epoch)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self):
        return self._loader(self.train_index, self.hparams.batch_size, shuffle=True, people=self.train_people)

    def _people_of(self, index: np.ndarray) -> torch.Tensor:
        """Each row's person, an index 0..P-1 (data.episodes draws batches by person)."""
        subjects = [self.recordings[i].subject for i in index.tolist()]
        if None in subjects:
            raise SemgError(
                "data.episodes draws batches by person, but some training recordings have no subject",
                path=self.data_dir,
                fix="give every recording a subject (manifest column 'subject'), or set data.episodes.people=0",
            )
        names = sorted(set(subjects))
        return torch.tensor([names.index(s) for s in subjects], dtype=torch.int64)

    def val_dataloader(self):
        return self._loader(self.val_index, self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        if self.test_x is None:
            raise SemgError("no test set is configured", fix="set data.test_dir or data.test_filter")
        index = np.arange(len(self.test_y))
        return self._loader(index, self.hparams.eval_batch_size, shuffle=False, tensors=(self.test_x, self.test_y))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Augment on the device, during training only (never at validation or prediction)."""
        trainer = self.trainer
        if self.augment is not None and trainer is not None and trainer.training:
            x, *labels = batch  # (y) or (y, person): data.episodes
            return self.augment(x), *labels
        return batch

    # ---------------------------------------------------------------- bookkeeping
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_rows(self) -> list[dict[str, Any]]:
        sides = [("train", self.recordings, self.y, self.train_index), ("val", self.recordings, self.y, self.val_index)]
        if self.test_y is not None:
            sides.append(("test", self.test_recordings, self.test_y, np.arange(len(self.test_y))))
        return split_rows(sides, self.class_names)

    def write_split(self, path: str | Path) -> Path:
        return write_split(path, self.split_rows())

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: the augmentation's random state, and the frequency axis of the
        training matrices, which predict.py checks new matrices against."""
        state = {"augment": self.augment.state_dict()} if self.augment else {}
        if self.frequency_axis is not None:
            scale, span = self.frequency_axis
            state["frequency_axis"] = {"scale": scale, "range": list(span) if span else None}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.augment and "augment" in state_dict:
            self.augment.load_state_dict(state_dict["augment"])


RENAMED_KEYS = {"normalize": "scaling"}  # data.* keys older versions wrote (checkpoints, SVM files) -> today's


def renamed_data_keys(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Data settings with the keys older versions wrote under another name renamed (data.normalize is
    data.scaling now), so their checkpoints still load."""
    out = dict(settings)
    for old, new in RENAMED_KEYS.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def select(recordings: list[Recording], wanted: Mapping[str, set[str]], key: str, manifest: Path) -> list[Recording]:
    """The recordings whose manifest row (labels and subject) matches a row filter; all when it is empty."""
    if not wanted:
        return recordings
    kept = [r for r in recordings if row_matches(r.row, wanted)]
    if not kept:
        raise SemgError(
            f"no manifest row matches data.{key}={wanted}",
            path=manifest,
            fix="check the column names and values (make_hht passes the input manifest's columns through)",
        )
    log.info("data.%s %s: %d of %d manifest rows", key, wanted, len(kept), len(recordings))
    return kept
