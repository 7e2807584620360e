"""evaluate.py on whole sessions (generated NinaPro-style .mat files): the raw recordings read with make_hht's
own settings and defaults, the classic and linear-control rows on exactly the segments make_hht converted
(its recording ids), a CNN sweep mixed in by recording id and any mismatch refused before feature extraction."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from semg_hht.data.splits import group_split
from semg_hht.errors import SemgError
from semg_hht.evaluation import run as evaluation
from semg_hht.evaluation.hht_features import hht_feature_sets
from semg_hht.evaluation.run import evaluate, experiment_data, input_settings, split_rows
from semg_hht.hht.pipeline import make_hht
from semg_hht.hht.settings import settings_from_cfg
from semg_hht.io import write_csv, write_text
from semg_hht.synth.sessions import SessionConfig, generate_sessions
from tests.helpers import CONF, compose_cfg, hht_cfg

SESSIONS = SessionConfig(subjects=4, movements=3, reps=3, channels=4, fs=200.0, move_s=1.0, rest_s=0.6)
HHT = ["preset=ninapro_db5", "spectrum.size=16", "emd.max_imf=3"]  # make_hht.py's (evaluate.py reads its record)
STAND_IN = ["data.n_folds=2", "data.input_size=16", "model.in_channels=4"]  # 4 people, 4 channels, 16x16
CLASSES = ["1", "2", "3"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """4 people's sessions as one .mat file each (3 movements x 3 repetitions), converted by make_hht."""
    root = tmp_path_factory.mktemp("sessions")
    generate_sessions(root / "raw", SESSIONS)
    summary = make_hht(hht_cfg(f"input={root / 'raw' / 'manifest.csv'}", f"output={root / 'hht'}", *HHT))
    assert summary["segments"] == 36 and not summary["failed"]
    return root


def eval_cfg(root, out, *extra: str):
    listed = lambda key, values: f"{key}=[" + ",".join(f"'{v}'" for v in values) + "]"  # noqa: E731
    return compose_cfg(
        [f"raw={root / 'raw' / 'manifest.csv'}", f"hht_dir={root / 'hht'}", "experiments=[real_movement]",
         listed("overrides", STAND_IN), "methods=[lda]", "window.methods=[lda]",
         "classifiers.pca_lda.n_components=4", f"paths.output_dir={out}", *extra],
        "evaluate",
    )  # fmt: skip


def converted(root) -> dict[str, str]:
    """make_hht's manifest: {recording id: source}."""
    with open(root / "hht" / "manifest.csv", newline="") as f:
        return {r["recording"]: r["source"] for r in csv.DictReader(f)}


def test_classic_and_linear_control_rows_share_make_hhts_recordings(sessions, tmp_path):
    cfg = eval_cfg(sessions, tmp_path / "eval")
    data = experiment_data("real_movement", STAND_IN, conf_dir=str(CONF))
    (rows, classes), test = split_rows(cfg, data, input_settings(cfg))
    ids = converted(sessions)
    assert test is None and classes == CLASSES and len(ids) == 36  # 3 movements x 3 repetitions x 4 sessions
    assert sorted(r["recording"] for r in rows) == sorted(ids)  # every segment, under make_hht's id
    assert all(ids[r["recording"]] == r["source"] for r in rows)
    linear, _ = hht_feature_sets(sessions / "hht", data)
    assert sorted(linear.ids) == sorted(ids)

    result = evaluate(cfg)
    methods = {(r["method"], r["split"]) for r in result["rows"]}
    assert ("classic features + LDA", "group") in methods
    assert ("classic features + LDA on 250 ms windows, vote", "group") in methods
    assert ("linear control: HHT matrices, PCA 4 + LDA", "group") in methods
    folds = {}  # every row's validation people, fold by fold: the same
    for f in result["folds"]:
        if f["fold"] in (0, 1):
            folds.setdefault(f["fold"], set()).add(f["val_subjects"])
    assert all(len(people) == 1 for people in folds.values()) and len(folds) == 2
    text = (tmp_path / "eval" / "results.md").read_text()
    assert "movement = 1, 2, 3 (3 classes) of" in text and "(experiment=real_movement)" in text
    assert "MuscleTracker" not in text  # that note only for the MuscleTracker data


def fake_sweep(root, tmp_path, split_seed: int = 42):
    """A train.py -m sweep of experiment=real_movement on the sessions' matrices, as evaluate.py reads it: per
    fold job, metrics.json and val_predictions.csv naming the make_hht matrices of the fold's people (a CNN that
    is right with probability 0.6). split_seed: other folds than the experiment's."""
    with open(root / "hht" / "manifest.csv", newline="") as f:
        matrices = list(csv.DictReader(f))
    recordings = list(dict.fromkeys(r["recording"] for r in matrices))
    first = {r["recording"]: r for r in reversed(matrices)}
    y = np.array([CLASSES.index(first[r]["movement"]) for r in recordings])
    subjects = [first[r]["subject"] for r in recordings]
    sweep = tmp_path / "sweep"
    for fold in range(2):
        job = sweep / str(fold)
        write_text(job / ".hydra" / "overrides.yaml", f"- data.fold={fold}\n")
        write_text(job / ".hydra" / "config.yaml", "data:\n  split: group\n  person_norm:\n    enabled: false\n")
        _, val = group_split(y, subjects, CLASSES, 2, fold, split_seed)
        metrics = {"fold": fold, "val/acc": 0.6, "val/balanced_acc": 0.6, "val/f1_macro": 0.6, "val/chance": 1 / 3}
        write_text(job / "metrics.json", json.dumps(metrics | {"val/per_subject_acc": {subjects[i]: 0.6 for i in val}}))
        rows = [
            {"file": str(root / "hht" / m["file"])} | {f"p_{c}": 0.6 if c == m["movement"] else 0.2 for c in CLASSES}
            for m in matrices
            if m["recording"] in {recordings[i] for i in val}
        ]
        write_csv(job / "val_predictions.csv", rows, ["file", *(f"p_{c}" for c in CLASSES)])
    return f"{{target:movement,label:CNN,dir:{sweep},ensemble:true}}"


def test_cnn_classic_and_linear_control_rows_on_the_same_folds(sessions, tmp_path):
    """The target: after make_hht and the CNN's sweep, one evaluate.py gives all three kinds of rows."""
    result = evaluate(eval_cfg(sessions, tmp_path / "eval", f"sweeps=[{fake_sweep(sessions, tmp_path)}]"))
    methods = [r["method"] for r in result["rows"] if r["split"] == "group"]
    assert "CNN" in methods and "classic features + LDA" in methods
    assert "CNN + classic SVM on 250 ms windows, mean probability" in methods
    assert any(m.startswith("linear control") for m in methods)
    mixed = [f for f in result["folds"] if f["method"].startswith("CNN + classic")]
    cnn = [f for f in result["folds"] if f["method"] == "CNN"]
    assert sorted(f["val_subjects"] for f in mixed) == sorted(f["val_subjects"] for f in cnn)


def test_a_sweep_of_other_recordings_is_refused_before_any_feature(sessions, tmp_path, monkeypatch):
    """Matched by recording id: 36 segments share 4 session files, so matching by source could not tell them
    apart. The refusal comes before the features (it came after 9 minutes of them)."""

    def no_features(*args, **kwargs):
        raise AssertionError("features computed before the sweep was checked")

    monkeypatch.setattr(evaluation, "load_features", no_features)
    sweep = fake_sweep(sessions, tmp_path, split_seed=7)
    with pytest.raises(SemgError, match=r"the CNN scored other recordings than this fold \(\d+ of \d+ not scored"):
        evaluate(eval_cfg(sessions, tmp_path / "eval", f"sweeps=[{sweep}]"))


def test_filter_and_input_defaults_are_make_hhts(tmp_path):
    """evaluate.py reads raw recordings with make_hht's config: the same defaults (it had a 60 Hz notch of its
    own) and the same presets (at 200 Hz, the 20-95 Hz band of ninapro_db5)."""
    make_hht_default = settings_from_cfg(hht_cfg("input=a", "output=b"))
    settings = input_settings(compose_cfg([f"paths.output_dir={tmp_path}"], "evaluate"))
    assert settings.filter == make_hht_default.filter and settings.filter.notch_hz is None
    assert (settings.reader, settings.segment, settings.inputs) == (
        make_hht_default.reader, make_hht_default.segment, make_hht_default.inputs,
    )  # fmt: skip
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", "make_hht=['preset=ninapro_db5']"], "evaluate")
    preset = input_settings(cfg)
    assert preset.filter.bandpass == (20.0, 95.0) and preset.segment.enabled and preset.reader.mat_key == "emg"


def test_a_whole_mapping_override_replaces_the_experiments():
    """overrides=["data.filter={}"] drops the experiment's device filter (Hydra merged it in: {device: biopac})."""
    assert experiment_data("muscletracker_movement", ["data.filter={}"], conf_dir=str(CONF))["filter"] == {}
    data = experiment_data("muscletracker_movement", ["data.test_filter={subject:[biopac-01]}"], conf_dir=str(CONF))
    assert data["test_filter"] == {"subject": ["biopac-01"]} and data["filter"] == {"device": "biopac"}


def test_sessions_need_make_hhts_output_and_its_settings(sessions, tmp_path):
    listed = "make_hht=[" + ",".join(f"'{o}'" for o in HHT) + "]"  # no hht_dir, so no record: the overrides
    cfg = eval_cfg(sessions, tmp_path / "eval", "hht_dir=null", listed)
    with pytest.raises(SemgError, match=r"segment.enabled: the classic features .* -> pass hht_dir="):
        evaluate(cfg)
    cfg = eval_cfg(sessions, tmp_path / "eval", "make_hht=['preset=ninapro_db5']")  # converted at 16x16, not 256
    with pytest.raises(SemgError, match=r"make_hht=\['preset=ninapro_db5'\] disagrees .* spectrum.size=16 there, 256"):
        evaluate(cfg)


def test_a_quirky_marker_folder_is_scored_on_the_segments_make_hht_kept(tmp_path):
    """Shipped data's quirks (a copied file, an open end, odd marker lengths), converted by the README's marker
    command from a folder: evaluate.py, given that folder (and make_hht's record in it), scores exactly what make_hht
    kept (the copy and the open-ended movement are in no row) under make_hht's ids and genders."""
    quirky = SessionConfig(**{**SESSIONS.__dict__, "movements": 2, "reps": 2, "layout": "marker", "quirks": True})
    generate_sessions(tmp_path / "raw", quirky)
    marker = ["preset=ninapro_db5", "segment.mode=marker", "segment.label_key=marker", "segment.labels=[fist,pinch]",
              "segment.reps_per_label=2", "segment.meta_keys={gender:gender,age:age}", *HHT[1:]]  # fmt: skip
    summary = make_hht(hht_cfg(f"input={tmp_path / 'raw'}", f"output={tmp_path / 'hht'}", *marker))
    assert summary["duplicates"] and summary["segments_skipped"]
    listed = lambda key, values: f"{key}=[" + ",".join(f"'{v}'" for v in values) + "]"  # noqa: E731
    cfg = compose_cfg(
        [f"raw={tmp_path / 'raw'}", f"hht_dir={tmp_path / 'hht'}", "experiments=[real_movement]",
         listed("overrides", STAND_IN), "methods=[lda]", "window.enabled=false",
         "classifiers.pca_lda.n_components=2", f"paths.output_dir={tmp_path / 'eval'}"],
        "evaluate",
    )  # fmt: skip
    data = experiment_data("real_movement", STAND_IN, conf_dir=str(CONF))
    (rows, classes), _ = split_rows(cfg, data, input_settings(cfg))
    with open(tmp_path / "hht" / "manifest.csv", newline="") as f:
        made = {r["recording"]: r for r in csv.DictReader(f)}
    assert classes == ["fist", "pinch"] and sorted(r["recording"] for r in rows) == sorted(made)
    assert all((r["source"], r["gender"]) == (made[r["recording"]]["source"], made[r["recording"]]["gender"])
               for r in rows)  # fmt: skip
    result = evaluate(cfg)
    methods = {r["method"] for r in result["rows"]}
    assert {"classic features + LDA", "linear control: HHT matrices, PCA 2 + LDA"} <= methods
