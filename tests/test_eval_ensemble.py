"""The CNN + classic rows: a CNN sweep's saved probabilities, traced to make_hht's recording ids through
its manifest, mixed with a classic method fitted on the same fold's training people."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semg_hht.classic.classifiers import classic_probabilities
from semg_hht.classic.recordings import FeatureSet
from semg_hht.data.splits import group_split
from semg_hht.errors import SemgError
from semg_hht.evaluation.ensemble import (
    Units,
    cnn_probabilities,
    cnn_runs,
    ensemble_scores,
    sweep_calibrated,
)
from semg_hht.io import write_csv, write_text

CLASSES = ["a", "b", "c"]
DATA = {"n_folds": 3, "split_seed": 42}
SETTINGS = {"seed": 0, "calibration_cv": 3, "n_jobs": 1}


def units(fs: FeatureSet) -> Units:
    """What the classic side scores, as evaluate.py knows it before any feature: ids, sources, labels, people."""
    y, subjects = fs.recordings()
    return Units(fs.ids, [f"{p.parent.name}/{p.name}" for p in fs.paths], y, subjects)


def score(tmp_path, fs, sweep, weight, method="lda", params=None, test=None, final=None, data=DATA):
    """cnn_runs (the sweep matched with the recordings by id) then ensemble_scores."""
    entry = {"dir": str(sweep)} | ({"final": str(final)} if final else {})
    runs = cnn_runs(entry, units(fs), test and units(test), CLASSES, data)
    return ensemble_scores(fs, test, runs, method, params or {}, SETTINGS | {"cnn_weight": weight})


def feature_set(tmp_path, people=6, reps=4, windows=2, noise=3.0):
    """Raw recordings (paths only) of ``people`` x 3 classes x ``reps``; ``windows`` feature rows each,
    whose class signal is weak against ``noise`` (so the classic side alone is far from perfect)."""
    rng = np.random.default_rng(0)
    paths, y, subjects, units, x = [], [], [], [], []
    for p in range(people):
        for c in range(3):
            for r in range(reps):
                unit = len(paths)
                paths.append(tmp_path / "raw" / f"s{p}" / f"{c}_{r}.txt")
                for _ in range(windows):
                    x.append(np.eye(3)[c] + noise * rng.standard_normal(3))
                    y.append(c)
                    subjects.append(f"S{p}")
                    units.append(unit)
    ids = [str(i + 1) for i in range(len(paths))]  # make_hht's recording numbers
    return FeatureSet(np.array(x), np.array(y), CLASSES, subjects, paths, ["f0", "f1", "f2"], np.array(units), ids)


def fake_sweep(tmp_path, fs, cnn_probs, windows=2, person_norm=False):
    """A train.py -m sweep as evaluate.py reads it: per fold job, .hydra files, metrics.json and
    val_predictions.csv whose matrices (``windows`` per recording) sit in an HHT folder whose
    manifest.csv names each matrix's recording and raw source."""
    hht = tmp_path / "hht"
    hht.mkdir()
    y, subjects = fs.recordings()
    manifest = []
    for i, path in enumerate(fs.paths):
        for w in range(windows):
            source = str(path.relative_to(tmp_path / "raw"))
            manifest.append({"file": f"EMG_{i:03d}_w{w}.npz", "source": source, "recording": fs.ids[i]})
    write_csv(hht / "manifest.csv", manifest, ["file", "source", "recording"])
    sweep = tmp_path / "sweep"
    for fold in range(DATA["n_folds"]):
        job = sweep / str(fold)
        write_text(job / ".hydra" / "overrides.yaml", f"- data.fold={fold}\n")
        write_text(job / ".hydra" / "config.yaml", f"data:\n  person_norm:\n    enabled: {str(person_norm).lower()}\n")
        write_text(job / "metrics.json", json.dumps({"fold": fold}))
        _, val = group_split(y, subjects, CLASSES, DATA["n_folds"], fold, DATA["split_seed"])
        rows = [
            {"file": str(hht / f"EMG_{i:03d}_w{w}.npz")} | {f"p_{c}": cnn_probs[i, k] for k, c in enumerate(CLASSES)}
            for i in val
            for w in range(windows)
        ]
        write_csv(job / "val_predictions.csv", rows, ["file", *(f"p_{c}" for c in CLASSES)])
    return sweep


def test_the_cnn_side_is_traced_to_recording_ids_and_its_windows_averaged(tmp_path):
    fs = feature_set(tmp_path)
    probs = np.random.default_rng(1).dirichlet(np.ones(3), len(fs.paths))
    sweep = fake_sweep(tmp_path, fs, probs)
    read = cnn_probabilities(sweep / "0" / "val_predictions.csv", CLASSES)
    assert read and all(np.allclose(read[r][0], probs[i]) for i, r in enumerate(fs.ids) if r in read)
    assert all(read[r][1] == units(fs).sources[fs.ids.index(r)] for r in read)
    assert sweep_calibrated(sweep) is False


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_the_mixture_is_the_weighted_mean_of_both_sides(tmp_path, weight):
    """A perfect CNN: weight 1 scores 1.0 on every fold, weight 0 is the classic side alone (far from
    perfect on these noisy features), and the equal mean lies at or above the classic side."""
    fs = feature_set(tmp_path)
    y, _ = fs.recordings()
    perfect = np.eye(3)[y] * 0.9 + 0.1 / 3
    sweep = fake_sweep(tmp_path, fs, perfect)
    folds, held_out = score(tmp_path, fs, sweep, weight)
    assert [f["fold"] for f in folds] == [0, 1, 2] and held_out == []
    assert sorted(s for f in folds for s in f["val_subjects"]) == sorted(set(fs.subjects))
    accs = [f["acc"] for f in folds]
    if weight == 1.0:
        assert accs == [1.0, 1.0, 1.0]
    alone, _ = score(tmp_path, fs, sweep, 0.0)
    assert np.mean([f["acc"] for f in alone]) < 0.9
    assert np.mean(accs) >= np.mean([f["acc"] for f in alone])


def final_run(run_dir, test, hht, right: bool, seed: int | None = None):
    """A final model's run as train.py leaves it: metrics.json, test_predictions.csv (certain of every
    test recording's class, or of the next class), and with ``seed`` the .hydra record of it."""
    ty, _ = test.recordings()
    rows = [
        {"file": str(hht / f"T_{i}.npz")}
        | {f"p_{c}": float(c == CLASSES[(t + (0 if right else 1)) % 3]) for c in CLASSES}
        for i, t in enumerate(ty)
    ]
    write_csv(run_dir / "test_predictions.csv", rows, ["file", *(f"p_{c}" for c in CLASSES)])
    write_text(run_dir / "metrics.json", json.dumps({"test/acc": float(right)}))
    if seed is not None:
        write_text(run_dir / ".hydra" / "overrides.yaml", f"- seed={seed}\n")
        write_text(run_dir / ".hydra" / "config.yaml", f"seed: {seed}\n")


def held_out_people(tmp_path):
    """Two test people and the manifest of their matrices (tmp_path/t/hht)."""
    test, hht = feature_set(tmp_path / "t", people=2), tmp_path / "t" / "hht"
    rows = [{"file": f"T_{i}.npz", "source": s, "recording": r} for i, (s, r) in enumerate(zip(units(test).sources,
            test.ids, strict=True))]  # fmt: skip
    write_csv(hht / "manifest.csv", rows, ["file", "source", "recording"])
    return test, hht


def test_an_svm_gets_probabilities_and_a_test_set_is_scored(tmp_path):
    fs = feature_set(tmp_path)
    test, hht = held_out_people(tmp_path)
    sweep = fake_sweep(tmp_path, fs, np.full((len(fs.paths), 3), 1 / 3))  # an undecided CNN: the SVM decides
    final_run(tmp_path / "final", test, hht, right=True)
    folds, held_out = score(tmp_path, fs, sweep, 0.5, "svm", {"C": 1.0}, test, tmp_path / "final")
    assert len(folds) == 3 and all(0 <= f["acc"] <= 1 for f in folds)
    [only] = held_out
    assert only["fold"] == "test" and only["acc"] == 1.0  # the final CNN is certain and right there
    assert only["val_subjects"] == ["S0", "S1"]


def test_each_final_model_of_a_seed_multirun_is_mixed_and_named_by_its_seed(tmp_path):
    """final: a train.py -m run of final models (one per seed): one mixture figure per model, in job order."""
    fs = feature_set(tmp_path)
    test, hht = held_out_people(tmp_path)
    sweep = fake_sweep(tmp_path, fs, np.full((len(fs.paths), 3), 1 / 3))
    finals = tmp_path / "finals"
    final_run(finals / "0", test, hht, right=True, seed=3)
    final_run(finals / "1", test, hht, right=False, seed=7)
    _, held_out = score(tmp_path, fs, sweep, 1.0, "lda", {}, test, finals)  # weight 1: the CNN side alone
    assert [(h["fold"], h["acc"]) for h in held_out] == [("test (seed 3)", 1.0), ("test (seed 7)", 0.0)]


def test_a_sweep_of_other_folds_is_refused(tmp_path):
    fs = feature_set(tmp_path)
    sweep = fake_sweep(tmp_path, fs, np.full((len(fs.paths), 3), 1 / 3))
    with pytest.raises(SemgError, match="the CNN scored other recordings than this fold"):
        score(tmp_path, fs, sweep, 0.5, data=DATA | {"split_seed": 7})


def test_missing_predictions_name_the_fix(tmp_path):
    with pytest.raises(SemgError, match="rerun the sweep with this version of train.py"):
        cnn_probabilities(tmp_path / "val_predictions.csv", CLASSES)


def test_recordings_numbered_otherwise_are_refused(tmp_path):
    """The same ids naming other recordings (another conversion's numbering) are not mixed."""
    fs = feature_set(tmp_path)
    sweep = fake_sweep(tmp_path, fs, np.full((len(fs.paths), 3), 1 / 3))
    fs.ids[:] = [i for p in range(6) for i in reversed(fs.ids[12 * p : 12 * p + 12])]  # each person's renumbered
    with pytest.raises(
        SemgError, match=r"recording \d+ is s\d/\d_\d.txt in the CNN's matrices but .* -> pass hht_dir="
    ):
        score(tmp_path, fs, sweep, 0.5)


def test_evaluate_checks_the_ensemble_flag_and_needs_a_matching_experiment(tmp_path):
    from semg_hht.evaluation.run import check_inputs, evaluate
    from tests.helpers import compose_cfg

    fs = feature_set(tmp_path)
    sweep = fake_sweep(tmp_path, fs, np.full((len(fs.paths), 3), 1 / 3), person_norm=True)
    entry = f"{{target:movement,label:CNN,dir:{sweep},ensemble:maybe}}"
    with pytest.raises(SemgError, match="ensemble='maybe' must be true or false"):
        check_inputs(compose_cfg([f"sweeps=[{entry}]", "experiments=[]"], "evaluate"))
    cfg = compose_cfg([f"sweeps=[{entry.replace('maybe', 'true')}]", "experiments=[]", f"out={tmp_path / 'o'}"],
                      "evaluate")  # fmt: skip
    assert check_inputs(cfg)[0]["calibrated"] is True  # read from the jobs' data.person_norm.enabled
    with pytest.raises(SemgError, match=r"no CNN \+ classic row for sweeps \['CNN'\]"):
        evaluate(cfg)


def test_parallel_calibration_fits_give_the_same_probabilities(tmp_path):
    fs = feature_set(tmp_path)
    train = np.arange(len(fs.paths))[::2]
    one, two = (classic_probabilities(fs, train, fs, "svm", {"C": 1.0}, SETTINGS | {"n_jobs": n}) for n in (1, 2))
    assert np.allclose(one.sum(1), 1) and np.array_equal(one, two)
