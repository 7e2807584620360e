"""The linear control's inputs: the CNN's own HHT matrices, flattened, read by the same DataModule
the CNN trains with (the experiment's data.* settings), so rows, folds and test set are the CNN's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from semg_hht.classic.recordings import FeatureSet
from semg_hht.data import HHTDataModule
from semg_hht.data.splits import unit_codes
from semg_hht.errors import SemgError


def hht_feature_sets(
    hht_dir: Path, data: Mapping[str, Any], limit_subjects: int | None = None
) -> tuple[FeatureSet, FeatureSet | None]:
    """(development set, test set or None) of flattened matrices; windows of one recording share a unit."""
    if data.get("extra_train"):  # split=none below would put its people into the folds drawn from dev
        raise SemgError(
            f"the linear control does not take data.extra_train={data['extra_train']}",
            fix="leave data.extra_train out of evaluate.py's overrides",
        )
    settings = {k: v for k, v in data.items() if k != "_target_"} | {"data_dir": str(hht_dir), "split": "none"}
    dm = HHTDataModule(**settings)
    dm.setup("fit")
    dev = _feature_set(dm.x.numpy(), dm.y.numpy(), dm.recordings, dm.class_names)
    if limit_subjects is not None:  # smoke runs: the first N subjects, as the classic rows
        keep = sorted({s for s in dev.subjects if s})[:limit_subjects]
        dev = dev.take(np.unique(dev.unit[np.isin(dev.subjects, keep)]))
    if dm.test_x is None:
        return dev, None
    return dev, _feature_set(dm.test_x.numpy(), dm.test_y.numpy(), dm.test_recordings, dm.class_names)


def _feature_set(x: np.ndarray, y: np.ndarray, recordings, class_names) -> FeatureSet:
    return FeatureSet(
        x=x.reshape(len(x), -1),
        y=y,
        class_names=list(class_names),
        subjects=[r.subject for r in recordings],
        paths=[r.path for r in recordings],
        names=[f"bin{i}" for i in range(int(np.prod(x.shape[1:])))],
        units=unit_codes([r.recording for r in recordings]),  # numbered in order of first appearance
        ids=[rid for _, rid in dict.fromkeys(r.recording for r in recordings)],  # make_hht's, per unit
    )
