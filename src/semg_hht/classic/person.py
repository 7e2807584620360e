"""A person's classic side: the windowed classic features of their support recordings (their raw signals,
read as make_hht converted them) and a classifier fitted on those alone, whose class probabilities of each
recording are mixed with the adapted CNN's, as evaluate.py's adaptation.mixture rows mix them.

adapt.py raw=... fits it and writes the support features into the person's checkpoint (numbers only: nothing
is pickled); predict.py raw=... refits the same classifier from them (sklearn's fits are deterministic: SVC
without its own probability CV, Platt scaling on unshuffled stratified folds) and serves the same mixture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semg_hht.classic.classifiers import classic_probabilities, weighted_mean
from semg_hht.classic.recordings import FeatureSet, load_features, matrix_recordings, raw_recordings
from semg_hht.data.labels import Recording
from semg_hht.errors import SemgError
from semg_hht.hht.record import RECORD, check_conversion, read_record, recorded_settings

REDO = "convert the recordings again with make_hht.py (it records its settings in conversion.yaml)"


@dataclass(frozen=True)
class RecordingFeatures:
    """The windowed classic features of the recordings an input's matrices were made from."""

    fs: FeatureSet  # one recording per make_hht recording id (fs.ids), one row per window; y unknown (-1)
    of_matrix: np.ndarray  # per input matrix: its recording's index in fs
    signature: str  # the make_hht settings the raw recordings were read with (Settings.signature)


def recording_features(
    raw: str | Path, recordings: Sequence[Recording], window: Mapping[str, float], features: Mapping[str, Any]
) -> RecordingFeatures:
    """The features of the raw recordings (make_hht.py's input=) the matrices ``recordings`` were converted
    from, read, filtered and cut exactly as make_hht did (the settings its conversion.yaml records), each
    matrix matched to its recording by make_hht's recording id."""
    folders = sorted({r.path.parent for r in recordings})
    if len(folders) != 1:
        raise SemgError(
            f"raw= reads the recordings of one make_hht output folder; the input's matrices lie in {len(folders)}",
            path=folders[0],
            fix="pass the matrices of one make_hht.py run (its manifest.csv or folder)",
        )
    hht_dir = folders[0]
    record = read_record(hht_dir)
    if record is None:
        raise SemgError(
            f"no {RECORD} beside the matrices: how make_hht read the raw recordings is unknown", path=hht_dir, fix=REDO
        )
    settings = recorded_settings(hht_dir, record, str(raw))
    check_conversion(hht_dir, settings, f"its {RECORD}", fix=REDO)
    ids = matrix_recordings(hht_dir / "manifest.csv")
    unknown = [r.path.name for r in recordings if r.path.name not in ids]
    if unknown:
        raise SemgError(
            f"{unknown[0]} is not in the folder's manifest.csv ({len(unknown)} matrices are not)",
            path=hht_dir,
            fix="rerun make_hht.py on the folder",
        )
    of_matrix = [ids[r.path.name][0] for r in recordings]
    wanted = list(dict.fromkeys(of_matrix))
    converted = {row["recording"]: row for row in raw_recordings(Path(raw), settings.inputs, hht_dir)}
    missing = [rid for rid in wanted if rid not in converted]
    if missing:
        raise SemgError(
            f"recording {missing[0]} of the matrices is not one raw= holds ({len(missing)} of {len(wanted)} are not)",
            path=raw,
            fix=f"pass raw=<the input make_hht.py converted {hht_dir} from>",
        )
    fs = load_features(
        Path(raw), None, [], {}, settings.filter, features, settings.reader, window=dict(window),
        rows=[converted[rid] for rid in wanted],
    )  # fmt: skip
    index = {rid: i for i, rid in enumerate(wanted)}
    return RecordingFeatures(fs, np.array([index[rid] for rid in of_matrix]), settings.signature())


@dataclass(frozen=True)
class ClassicSide:
    """A classic classifier of one person (mixture.* of conf/adapt.yaml) and the support windows it is fitted on."""

    person: str
    method: str  # lda | svm
    params: dict[str, Any]  # its classifier's settings
    cnn_weight: float  # the CNN's share of the mixture
    calibration_cv: int  # Platt scaling folds (SVC)
    seed: int
    window: dict[str, float]  # the features' window.* (length_s, hop_s)
    features: dict[str, Any]  # feature_vector's settings
    signature: str  # the make_hht settings the recordings were read with
    class_names: list[str]
    x: np.ndarray  # (support windows, features)
    y: np.ndarray  # their class index
    units: np.ndarray  # their recording (0..n-1)

    @classmethod
    def fitted_on(
        cls,
        person: str,
        settings: Mapping[str, Any],
        seed: int,
        found: RecordingFeatures,
        support: np.ndarray,
        y: np.ndarray,
        class_names: Sequence[str],
    ) -> ClassicSide:
        """The side of the input matrices ``support`` (indices) with class indices ``y`` (per matrix);
        ``settings``: conf/adapt.yaml's mixture (method, cnn_weight, calibration_cv, window, features, classifiers)."""
        labels = np.full(len(found.fs.ids), -1)
        labels[found.of_matrix[support]] = y[support]
        recordings = np.unique(found.of_matrix[support])
        fs = found.fs.take(recordings)
        windows = labels[recordings][fs.unit]
        method = settings["method"]
        side = cls(
            person, method, dict(settings["classifiers"][method]), float(settings["cnn_weight"]),
            int(settings["calibration_cv"]), seed, dict(settings["window"]), dict(settings["features"]),
            found.signature, list(class_names), fs.x.astype(np.float64), windows, fs.unit.copy(),
        )  # fmt: skip
        side.check_fits()
        return side

    def check_fits(self) -> None:
        """Platt scaling of an SVC cuts each class's support windows into calibration_cv folds: enough of them."""
        if self.method != "svm":
            return
        counts = np.bincount(self.y, minlength=len(self.class_names))
        fewest = int(counts.argmin())
        if counts[fewest] < self.calibration_cv:
            raise SemgError(
                f"{self.person}'s support recordings of {self.class_names[fewest]} give {counts[fewest]} feature "
                f"windows, fewer than mixture.calibration_cv={self.calibration_cv} (the SVM's Platt scaling folds)",
                fix="use shorter windows (mixture.window.*), a smaller mixture.calibration_cv, or mixture.method=lda",
            )

    def probabilities(self, scored: FeatureSet) -> np.ndarray:
        """(recordings of ``scored``, classes): the classifier fitted on the support windows, its probabilities of
        each recording's windows averaged (evaluation/ensemble.classic_probabilities, as evaluate.py's rows)."""
        own = FeatureSet(self.x, self.y, self.class_names, [None] * len(self.y), [], [], self.units)
        fit = {"seed": self.seed, "calibration_cv": self.calibration_cv, "n_jobs": 1}
        return classic_probabilities(own, np.unique(self.units), scored, self.method, self.params, fit)

    def mixed(self, cnn: np.ndarray, found: RecordingFeatures, matrices: np.ndarray) -> np.ndarray:
        """(len(matrices), classes): per input matrix (indices), the weighted mean of the CNN's class probabilities
        ``cnn`` (one row per matrix) and this side's of the matrix's recording."""
        recordings = np.unique(found.of_matrix[matrices])
        classic = self.probabilities(found.fs.take(recordings))
        return weighted_mean(cnn, classic[np.searchsorted(recordings, found.of_matrix[matrices])], self.cnn_weight)

    @property
    def name(self) -> str:
        return f"person-alone {self.method}"

    def record(self) -> dict[str, Any]:
        """The checkpoint's entry: plain values and tensors (torch.load weights_only reads them)."""
        plain = {k: v for k, v in vars(self).items() if k not in ("x", "y", "units")}
        return plain | {
            "x": torch.from_numpy(self.x),
            "y": torch.from_numpy(self.y.astype(np.int64)),
            "units": torch.from_numpy(self.units.astype(np.int64)),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], path: Path) -> ClassicSide:
        try:
            arrays = {k: record[k].numpy() for k in ("x", "y", "units")}
            side = cls(**{k: record[k] for k in cls.__dataclass_fields__ if k not in arrays} | arrays)
        except (KeyError, TypeError, AttributeError) as err:
            raise SemgError(
                f"the checkpoint's classic side is unreadable ({type(err).__name__}: {err})",
                path=path,
                fix="adapt the person again with this version's adapt.py raw=...",
            ) from None
        return side
