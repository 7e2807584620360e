"""Saving and loading the fitted SVM without ever running code from the file.

The pipeline is written with skops (a zip of JSON and arrays, not a pickle) and read back with an
explicit list of trusted types: anything else named in the file (a function, a class from outside
scikit-learn, ...) is refused before a single object is built. A JSON sidecar records the file's
sha256 and what the SVM expects (encoder checkpoint and its hash, feature size, classes, target),
so prediction refuses an edited file or a mismatched checkpoint/SVM pair.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import sklearn
import skops
import skops.io as sio
from sklearn.pipeline import Pipeline

from semg_hht.errors import SemgError
from semg_hht.io import atomic_open, file_sha256, write_json

log = logging.getLogger(__name__)

FORMAT = "semg-hht-svm"
VERSION = 1
# Beyond skops' defaults (public scikit-learn estimators, numpy): the private helpers that
# CalibratedClassifierCV keeps after fitting. Nothing else is ever trusted.
TRUSTED_TYPES = ("sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration")
NOT_OURS_FIX = "use the svm.skops that fit_svm.py wrote (with its svm.json beside it), or re-run fit_svm.py"


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_svm(path: str | Path, pipeline: Pipeline, expects: dict[str, Any]) -> Path:
    """Write path (skops) and its sidecar path.json, each atomically; the sidecar last."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        f.write(sio.dumps(pipeline))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "sha256": file_sha256(path),
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        **expects,
    }
    write_json(sidecar_path(path), meta)
    return path


def read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if not side.is_file():
        raise SemgError(f"no {side.name} beside the SVM file", path=path, fix=NOT_OURS_FIX)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SemgError(f"unreadable SVM sidecar ({err})", path=side, fix=NOT_OURS_FIX) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SemgError("not an SVM sidecar written by fit_svm.py", path=side, fix=NOT_OURS_FIX)
    if meta.get("version") != VERSION:
        raise SemgError(
            f"SVM written by another semg-hht version (format {meta.get('version')}, this reads {VERSION})",
            path=path,
            fix="re-run fit_svm.py with this version",
        )
    return meta


def load_svm(path: str | Path) -> tuple[Pipeline, dict[str, Any]]:
    """The fitted pipeline and its sidecar, or a one-line SemgError; never executes file content."""
    path = Path(path)
    if not path.is_file():
        raise SemgError("SVM file not found", path=path, fix="pass svm=<fit_svm run>/svm.skops")
    meta = read_sidecar(path)
    if file_sha256(path) != meta.get("sha256"):
        raise SemgError(
            "SVM file was changed after fit_svm.py wrote it (sha256 differs from svm.json)",
            path=path,
            fix=NOT_OURS_FIX,
        )
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    except Exception as err:  # not a zip, no schema, malformed JSON: skops' parser is the judge
        raise SemgError(f"not a readable skops file ({type(err).__name__})", path=path, fix=NOT_OURS_FIX) from None
    if untrusted:
        names = ", ".join(sorted(untrusted))[:200]
        raise SemgError(
            f"SVM file names types that are never trusted ({names}); nothing was loaded",
            path=path,
            fix=NOT_OURS_FIX,
        )
    try:
        pipeline = sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as err:
        raise SemgError(
            f"cannot load the SVM ({type(err).__name__}: {str(err)[:120]})", path=path, fix=NOT_OURS_FIX
        ) from None
    if not isinstance(pipeline, Pipeline) or not hasattr(pipeline, "predict_proba"):
        raise SemgError(
            f"SVM file holds a {type(pipeline).__name__}, not a fitted pipeline", path=path, fix=NOT_OURS_FIX
        )
    try:  # an unfitted or foreign pipeline of trusted types has no such attributes
        shape = (pipeline.n_features_in_, len(pipeline.classes_))
    except AttributeError:
        raise SemgError("SVM file holds an unfitted or foreign pipeline", path=path, fix=NOT_OURS_FIX) from None
    if shape != (meta.get("feature_dim"), len(meta.get("classes", []))):
        raise SemgError("SVM file and its svm.json disagree", path=path, fix=NOT_OURS_FIX)
    if meta.get("sklearn_version") != sklearn.__version__:
        log.warning(
            "SVM was fitted with scikit-learn %s, this is %s",
            meta.get("sklearn_version"),
            sklearn.__version__,
        )
    return pipeline, meta
