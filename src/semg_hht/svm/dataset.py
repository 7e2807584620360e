"""The recordings the SVM learns from, split exactly as the checkpoint's training run split them.

The checkpoint stores its HHTDataModule settings; rebuilding the data module with them (the same
target, seed and fold) reproduces the split, and the run's split.csv says which files were on
which side. The SVM target (gender by default) is then read from the same recordings, so no
recording the encoder was trained on lands in the SVM's validation set.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semg_hht.data import HHTDataModule
from semg_hht.data.labels import Recording, target_classes, target_value
from semg_hht.data.matrices import check_trained_axis
from semg_hht.data.splits import split_rows
from semg_hht.errors import SemgError

log = logging.getLogger(__name__)


@dataclass
class SvmData:
    x: torch.Tensor  # (N, C, H, W), every recording with a known label for the SVM target
    y: np.ndarray  # class index per row
    class_names: list[str]
    recordings: list[Recording]
    train_index: np.ndarray
    val_index: np.ndarray
    split_source: str  # where the split came from (for metrics.json)
    data_dir: Path
    test_x: torch.Tensor | None = None  # the DataModule's test set (data.test_dir / data.test_filter), relabelled
    test_y: np.ndarray | None = None
    test_recordings: list[Recording] | None = None
    scale_reference: float | None = None  # data.scaling=dataset's number, as the data module fixed it

    def subjects(self, index: np.ndarray) -> list[str | None]:
        return [self.recordings[i].subject for i in index.tolist()]

    def split_rows(self) -> list[dict[str, Any]]:
        sides = [
            (subset, self.recordings, self.y, index)
            for subset, index in (("train", self.train_index), ("val", self.val_index))
        ]
        return split_rows(sides, self.class_names)


def datamodule_from_settings(settings: Mapping[str, Any], origin: str | Path) -> HHTDataModule:
    try:
        return HHTDataModule(**settings)
    except TypeError as err:
        raise SemgError(
            f"data settings do not fit this semg-hht version ({err})",
            path=origin,
            fix="use a .ckpt written by this version's train.py",
        ) from None


def _key(path: str | Path, root: str | Path) -> str:
    """A recording's name relative to its data folder, so a moved folder still matches."""
    path, root = Path(path), Path(root)
    for candidate, base in ((path, root), (path.resolve(), root.resolve())):
        if candidate.is_relative_to(base):
            return candidate.relative_to(base).as_posix()
    return path.name


def recorded_split(split_csv: Path, trained_dir: str | Path, dm: HHTDataModule) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of dm's recordings on each side of the split the training run wrote down.

    Every recorded file must still be there with the same label; files added since are left out.
    """
    with split_csv.open(newline="", encoding="utf-8") as f:
        recorded = list(csv.DictReader(f))
    if not recorded or not {"file", "subset", "label"} <= set(recorded[0]):
        raise SemgError("not a split.csv written by train.py", path=split_csv, fix="delete it to recompute the split")
    current = {_key(rec.path, dm.data_dir): i for i, rec in enumerate(dm.recordings)}
    missing = [r["file"] for r in recorded if r["subset"] != "test" and _key(r["file"], trained_dir) not in current]
    if missing:
        raise SemgError(
            f"the data folder no longer matches the checkpoint's training data: {len(missing)} of "
            f"{len(recorded)} recordings in {split_csv} are missing (first: {Path(missing[0]).name})",
            path=dm.data_dir,
            fix="pass data_dir=<the folder the checkpoint was trained on>",
        )
    sides: dict[str, list[int]] = {"train": [], "val": []}
    recorded = [r for r in recorded if r["subset"] != "test"]  # the test set is the DataModule's own, never trained on
    for row in recorded:
        i = current[_key(row["file"], trained_dir)]
        label = dm.class_names[int(dm.y[i])]
        if label != row["label"]:
            raise SemgError(
                f"the data folder no longer matches the checkpoint's training data: {Path(row['file']).name} "
                f"was '{row['label']}', is now '{label}'",
                path=dm.data_dir,
                fix="pass data_dir=<the folder the checkpoint was trained on>",
            )
        sides.setdefault(row["subset"], []).append(i)
    extra = len(current) - len(recorded)
    if extra > 0:
        log.warning("%d recordings were added since training; the SVM leaves them out", extra)
    return np.array(sorted(sides["train"]), dtype=np.int64), np.array(sorted(sides["val"]), dtype=np.int64)


def _for_target(dm: HHTDataModule, target: str, train: np.ndarray, val: np.ndarray, source: str) -> SvmData:
    """dm's recordings relabelled for the SVM target; those without that label are left out."""
    classes = target_classes(target, dm.hparams.classes, dm.recordings)
    values = [target_value(rec, target) for rec in dm.recordings]
    keep = np.array([v is not None and v in classes for v in values], dtype=bool)
    if not keep.all():
        log.warning("%d recordings have no usable '%s' label; the SVM leaves them out", (~keep).sum(), target)
    rows = np.flatnonzero(keep)
    new_row = {int(old): new for new, old in enumerate(rows.tolist())}
    y = np.array([classes.index(values[i]) for i in rows], dtype=np.int64)
    train = np.array([new_row[i] for i in train.tolist() if i in new_row], dtype=np.int64)
    val = np.array([new_row[i] for i in val.tolist() if i in new_row], dtype=np.int64)
    if len(set(y[train].tolist())) < 2:
        raise SemgError(
            f"the training side of the split has one '{target}' class; the SVM needs two",
            path=dm.data_dir,
            fix="use recordings of both kinds, or another target",
        )
    if len(val) and len(set(y[val].tolist())) < 2:  # e.g. a subject fold of men only: still scored, but say so
        log.warning("the validation side holds one '%s' class only: balanced accuracy means little here", target)
    test = {}
    if dm.test_x is not None:
        test_values = [target_value(rec, target) for rec in dm.test_recordings]
        kept = [i for i, v in enumerate(test_values) if v in classes]
        test = {
            "test_x": dm.test_x[torch.tensor(kept, dtype=torch.long)],
            "test_y": np.array([classes.index(test_values[i]) for i in kept], dtype=np.int64),
            "test_recordings": [dm.test_recordings[i] for i in kept],
        }
    return SvmData(
        x=dm.x[torch.from_numpy(rows)],
        y=y,
        class_names=list(classes),
        recordings=[dm.recordings[i] for i in rows.tolist()],
        train_index=train,
        val_index=val,
        split_source=source,
        data_dir=dm.data_dir,
        scale_reference=dm.hparams.get("scale_reference"),
        **test,
    )


def data_from_checkpoint(
    ckpt: Path, data_hparams: Mapping[str, Any], target: str, data_dir: str | None, axis: tuple | None = None
) -> SvmData:
    """The checkpoint's recordings and split (split.csv of its run when present); ``axis``: the frequency
    axis the checkpoint was trained on, which the folder's matrices must have."""
    trained_dir = data_hparams["data_dir"]
    folder = Path(data_dir or trained_dir)
    if not folder.is_dir():
        raise SemgError(
            "the checkpoint's data folder is not there",
            path=folder,
            fix="pass data_dir=<folder holding the recordings the checkpoint was trained on>",
        )
    dm = datamodule_from_settings({**data_hparams, "data_dir": str(folder)}, ckpt)
    dm.setup("fit")
    check_trained_axis(dm.frequency_axis, axis, folder)
    split_csv = ckpt.resolve().parent.parent / "split.csv"
    if split_csv.is_file():
        train, val = recorded_split(split_csv, trained_dir, dm)
        source = str(split_csv)
    else:
        log.warning("no split.csv beside %s: recomputing its split from the stored settings", ckpt)
        train, val, source = dm.train_index, dm.val_index, "recomputed from the checkpoint's data settings"
    return _for_target(dm, target, train, val, source)


def data_from_config(data_cfg: Mapping[str, Any], target: str, data_dir: str | None) -> SvmData:
    """No checkpoint (random encoder): the data config, split on the SVM target itself."""
    settings = {k: v for k, v in data_cfg.items() if k != "_target_"} | {"target": target}
    if data_dir:
        settings["data_dir"] = data_dir
    dm = datamodule_from_settings(settings, "conf/data")
    dm.setup("fit")
    return _for_target(dm, target, dm.train_index, dm.val_index, f"data.split={settings['split']}")
