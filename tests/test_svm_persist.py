"""The saved SVM loads back exactly, and a file that is not ours never runs anything."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from semg_hht.errors import SemgError
from semg_hht.io import file_sha256
from semg_hht.svm.persist import FORMAT, VERSION, load_svm, save_svm, sidecar_path
from semg_hht.svm.pipeline import fit_pipeline

SVM_CFG = {
    "kernel": "rbf", "C": 10.0, "gamma": "scale", "class_weight": None,
    "calibration": {"method": "sigmoid", "cv": 3},
    "grid_search": {"enabled": False, "C": [1.0, 10.0], "gamma": ["scale", 0.1], "cv": 5,
                    "scoring": "balanced_accuracy", "n_jobs": 1},
}  # fmt: skip


class Payload:
    """Stands for any code an attacker ships: rebuilding this object creates a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).write_text("code ran")
        self.__dict__.update(state)


class PicklePayload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def features(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.normal(size=(n, 6)) + y[:, None] * 1.5, y


def expects(feature_dim=6):
    return {
        "target": "gender",
        "classes": ["M", "F"],
        "feature_dim": feature_dim,
        "encoder": {"kind": "random"},
    }


@pytest.fixture
def saved(tmp_path) -> Path:
    x, y = features()
    pipeline, _ = fit_pipeline(SVM_CFG, x, y, [None] * len(y), seed=0)
    return save_svm(tmp_path / "svm.skops", pipeline, expects())


def test_round_trip_gives_identical_probabilities(saved):
    x, y = features(seed=1)
    pipeline, meta = load_svm(saved)
    assert meta["classes"] == ["M", "F"] and meta["feature_dim"] == 6
    reloaded, _ = load_svm(saved)
    np.testing.assert_array_equal(pipeline.predict_proba(x), reloaded.predict_proba(x))
    assert (pipeline.predict(x) == y).mean() > 0.8
    assert zipfile.is_zipfile(saved)  # skops: JSON schema + arrays, no pickle


def test_malicious_skops_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = save_svm(tmp_path / "svm.skops", Payload(marker), expects())  # a valid sidecar, sha256 included
    # The payload is real: a loader that trusts its type runs it.
    probe = tmp_path / "probe.txt"
    sio.load(save_svm(tmp_path / "probe.skops", Payload(probe), expects()), trusted=[_name(Payload)])
    assert probe.read_text() == "code ran"
    with pytest.raises(SemgError, match="never trusted.*nothing was loaded"):
        load_svm(evil)
    assert not marker.exists()


def test_pickle_in_disguise_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "svm.skops"
    path.write_bytes(pickle.dumps(PicklePayload(marker)))
    meta = {"format": FORMAT, "version": VERSION, "sha256": file_sha256(path), **expects()}
    sidecar_path(path).write_text(json.dumps(meta))  # the attacker rewrote the sidecar too
    with pytest.raises(SemgError, match="not a readable skops file"):
        load_svm(path)
    assert not marker.exists()


def test_edited_file_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(SemgError, match="changed after fit_svm.py wrote it"):
        load_svm(saved)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: os.remove(sidecar_path(p)), "no svm.json"),
        (lambda p: sidecar_path(p).write_text("{not json"), "unreadable SVM sidecar"),
        (lambda p: sidecar_path(p).write_text('{"format": "other"}'), "not an SVM sidecar"),
        (lambda p: os.remove(p), "SVM file not found"),
    ],
)
def test_missing_or_foreign_sidecar_is_refused(saved, damage, message):
    damage(saved)
    with pytest.raises(SemgError, match=message):
        load_svm(saved)


def test_grid_search_uses_subject_disjoint_folds(tmp_path):
    x, y = features(n=48)
    subjects = [f"S{i % 8}" for i in range(48)]  # S0, S2, ... are class 0; S1, S3, ... class 1
    cfg = SVM_CFG | {"grid_search": SVM_CFG["grid_search"] | {"enabled": True}}
    pipeline, search = fit_pipeline(cfg, x, y, subjects, seed=0)
    assert search["folds"] == "4 subject"  # at most the subjects of the rarest class
    assert search["best_params"]["C"] in (1.0, 10.0)
    assert search["best_params"]["C"] == pipeline.named_steps["svm"].estimator.C


def _name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
