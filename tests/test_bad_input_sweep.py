"""One table over every entry point (train, fit_svm, predict, make_hht, evaluate) and the bad input
colleagues send: each case exits 1 with exactly one line naming the file and what to do, no
traceback, and no half-written file."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import copy_data, error_lines, manifest_case


class Payload:
    """Unpickling this would create a marker file: proof that no loader ran it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def npz(path: Path, value) -> Path:
    with open(path, "wb") as f:
        np.savez(f, hht=value)
    return path


def malicious(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(Payload(marker)))
    return path


# Each case: (entry point, make(tmp, data, ckpt) -> (overrides, path the message must name), message)
# Each case: (entry point, make(tmp, data, ckpt) -> (overrides, path the message must name), message)
CASES = {
    "train/missing-dir": ("train", lambda t, d, c: ([f"paths.data_dir={t / 'nope'}"], t / "nope"), "not found"),
    "train/empty-dir": ("train", lambda t, d, c: ([f"paths.data_dir={(t / 'e').mkdir() or t / 'e'}"], t / "e"), "no .npz"),
    "train/corrupt": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", b"PK\x03\x04garbage"), "cannot read npz"),
    "train/truncated": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", _half(d)), "cannot read npz"),
    "train/text-as-npz": ("train", lambda t, d, c: _bad(t, d, "BICEPS_half_F_900.npz", b"1,2,3\n4,5,6\n"), "cannot read npz"),
    "train/wrong-dtype": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", np.full((32, 32), "x")), "dtype"),
    "train/wrong-shape": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", np.ones((64, 64))), "shape"),
    "train/nan": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", np.full((32, 32), np.nan)), "NaN or Inf"),
    "train/inf": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", _with(np.inf)), "NaN or Inf"),
    "train/huge": ("train", lambda t, d, c: _bad(t, d, "BICEPS_full_M_900.npz", _with(1e300)), "too large for float32"),
    "train/bad-name": ("train", lambda t, d, c: _bad(t, d, "BICEPS_curl_M_900.npz", _with(1.0)), "movement"),
    "train/one-class": ("train", lambda t, d, c: _one_class(t, d), "only one class"),
    "train/manifest-columns": ("train", lambda t, d, c: manifest_case(t, d, "name,movement\na.npz,full\n"), "'file' column"),
    "train/manifest-escape": ("train", lambda t, d, c: manifest_case(t, d, "file,movement\n../x.npz,full\n"), "outside"),
    "train/manifest-duplicate": ("train", lambda t, d, c: _duplicate(t, d), "already listed"),
    "train/other-model-size": ("train", lambda t, d, c: ([f"ckpt_path={c}", "model.num_layers=3"], c), "does not match"),
    "train/truncated-ckpt": ("train", lambda t, d, c: ([f"ckpt_path={_trunc(t, c)}"], t / "t.ckpt"), "not a readable"),
    "train/malicious-ckpt": ("train", lambda t, d, c: _evil(t, "ckpt_path"), "not a readable"),
    "fit_svm/missing-ckpt": ("fit_svm", lambda t, d, c: ([f"ckpt={t / 'no.ckpt'}"], t / "no.ckpt"), "not found"),
    "fit_svm/truncated-ckpt": ("fit_svm", lambda t, d, c: ([f"ckpt={_trunc(t, c)}"], t / "t.ckpt"), "not a readable"),
    "fit_svm/malicious-ckpt": ("fit_svm", lambda t, d, c: _evil(t, "ckpt"), "not a readable"),
    "predict/missing-input": ("predict", lambda t, d, c: ([f"ckpt={c}", f"input={t / 'nope'}"], t / "nope"), ""),
    "predict/empty-input": ("predict", lambda t, d, c: ([f"ckpt={c}", f"input={(t / 'e').mkdir() or t / 'e'}"], t / "e"), ""),
    "predict/wrong-size": ("predict", lambda t, d, c: ([f"ckpt={c}", f"input={npz(t / 'x.npz', np.ones((8, 8)))}"], t / "x.npz"), "shape"),
    "predict/malicious-svm": ("predict", lambda t, d, c: ([f"ckpt={c}", f"svm={malicious(t / 's.skops', t / 'PWNED')}"], t / "s.skops"), ""),
    "make_hht/missing-input": ("make_hht", lambda t, d, c: ([f"input={t / 'nope'}", f"output={t / 'o'}"], t / "nope"), "not found"),
    "evaluate/no-raw": ("evaluate", lambda t, d, c: (["experiments=[muscletracker_movement]"], None), "need the raw recordings' manifest"),
    "evaluate/missing-raw": ("evaluate", lambda t, d, c: ([f"raw={t / 'no.csv'}"], t / "no.csv"), "not found"),
    "evaluate/missing-sweep": ("evaluate", lambda t, d, c: (["experiments=[]", f'sweeps=[{{target:movement,label:"CNN (x)",dir:{t / "nope"}}}]'], t / "nope"), "multirun folder not found"),
    "evaluate/bad-sweep": ("evaluate", lambda t, d, c: (["experiments=[]", "sweeps=[{target:movement,label:x}]"], None), "target, label, dir"),
    "evaluate/bad-features": ("evaluate", lambda t, d, c: (["experiments=[]", "+features.window=8"], None), "unknown config key 'features.window'"),
    "evaluate/bad-classifier": ("evaluate", lambda t, d, c: (["experiments=[]", "classifiers.svm.C=-1"], None), "classifiers.svm"),
    "evaluate/unknown-experiment": ("evaluate", lambda t, d, c: ([f"raw={d / 'manifest.csv'}", "experiments=[nope]"], None), "does not compose"),
}  # fmt: skip


def _half(d: Path) -> bytes:
    blob = next(d.glob("*.npz")).read_bytes()
    return blob[: len(blob) // 2]


def _with(value: float) -> np.ndarray:
    m = np.random.default_rng(0).random((32, 32))
    m[3, 4] = value
    return m


def _bad(t: Path, d: Path, name: str, content) -> tuple[list[str], Path]:
    data = copy_data(d, t / "data")
    target = data / name
    target.write_bytes(content) if isinstance(content, bytes) else npz(target, content)
    return [f"paths.data_dir={data}"], target


def _one_class(t: Path, d: Path):
    data = copy_data(d, t / "data")
    for p in data.glob("*.npz"):
        if "_full_" not in p.name and not p.name.startswith("Test"):
            p.unlink()
    return [f"paths.data_dir={data}"], None


def _duplicate(t: Path, d: Path):
    lines = (d / "manifest.csv").read_text().splitlines()
    return manifest_case(t, d, "\n".join([*lines, lines[1]]) + "\n")


def _trunc(t: Path, c: Path) -> Path:
    (t / "t.ckpt").write_bytes(c.read_bytes()[:5000])
    return t / "t.ckpt"


def _evil(t: Path, key: str):
    path = malicious(t / "evil.ckpt", t / "PWNED")
    return [f"{key}={path}"], path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_1_and_nothing_half_written(case, synthetic_dir, checkpoint, tmp_path, capsys):
    entry, make, message = CASES[case]
    overrides, named = make(tmp_path, synthetic_dir, checkpoint)
    lines = [
        line for line in error_lines(entry, overrides, tmp_path, synthetic_dir, capsys) if line.startswith("error:")
    ]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert message in lines[0]
    if named is not None:
        assert str(named) in lines[0], lines[0]
    assert not (tmp_path / "PWNED").exists()  # no pickle payload ever ran
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
