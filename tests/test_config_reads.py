"""Real reads, not names in the sources: each entry point's function (train, make_hht, fit_svm, predict,
evaluate) runs on a tiny set-up while every config node it touches is recorded, and a key that no code
path of the run reads fails here. Keys read only in some modes are listed with the reason. The
name-based check in test_config.py covers what no run below composes (trainer=gpu / ddp, the real-data
experiments); value-only settings (data.scaling, ...) are not varied, they change no key.

What a recorded read proves: instantiate and OmegaConf.to_container touch every key under the node
they get, so for data.*, model.*, trainer.*, callbacks.*, logger.*, optimizer.* and scheduler.* a
read means the node reached its consumer, and the name-based check (parameters of the _target_ /
schema) says each key is one it takes. make_hht turns its whole config into dataclasses first, so
there the reads recorded are those of the dataclass fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig
from scipy.io import savemat

from semg_hht.conversion import convert
from semg_hht.evaluation.run import evaluate
from semg_hht.hht.settings import settings_from_cfg
from semg_hht.prediction import predict
from semg_hht.svm import fit_svm
from semg_hht.synth.raw import SynthConfig, generate
from semg_hht.synth.sessions import SessionConfig, generate_sessions
from semg_hht.training.train import train
from tests.config_keys import leaf_keys, settings_leaves, settings_reads, unread_in_run
from tests.helpers import TINY, compose_cfg, emg_like, hht_cfg

MANIFEST = ["data.label_source=manifest", "data.manifest=manifest.csv"]  # synthetic_dir's subjects
# Each option that changes which keys exist, or which code path reads them. Keys read only in some
# runs are listed in UNREAD_IN with the reason; every other key must be read by every run.
TRAIN_RUNS = {
    "default": [],  # a key nothing reads cannot be added: the schema refuses it (tests/test_cli.py)
    "scheduler=plateau": ["scheduler=plateau"],
    "scheduler=warmup_cosine": ["scheduler=warmup_cosine"],  # plateau: null
    "split=group": [*MANIFEST, "data.split=group", "data.n_folds=2"],
    "experiment=person_norm": ["experiment=person_norm", *MANIFEST],
    "experiment=final_model": ["experiment=final_model"],  # split none, report_on=last, no best.ckpt
    "test set": [*MANIFEST, "data.test_filter={subject:[S04]}"],
    # slow: the same keys as a run above with other values, or a _target_ node the name check covers
    "optimizer=adam": ["optimizer=adam"],
    "model=cnn_small": ["model=cnn_small", "model.in_channels=1"],  # synthetic_dir has one channel
    "logger=many": ["logger=many"],  # tensorboard and csv
    "callbacks=early_stopping": ["callbacks=[default,early_stopping]"],
    "callbacks=swa": ["callbacks=[default,swa]", "report_on=last"],  # weight averaging (needs report_on=last)
    "trainer=cpu_fast": ["trainer=cpu_fast"],  # bf16 autocast and channels_last callbacks
}
SLOW = {
    "optimizer=adam",
    "model=cnn_small",
    "logger=many",
    "callbacks=early_stopping",
    "callbacks=swa",
    "trainer=cpu_fast",
}
UNREAD_IN = {
    # train.py returns it to a Hydra sweeper (main's return value); train(cfg) has no use for it. Also
    # what shows the check works: were a run to read the whole config at once, this would fail
    "optimized_metric": set(TRAIN_RUNS),
    # read by train.py's checks before train(cfg) (semg_hht.cli.train_files: an earlier run in the folder)
    "overwrite": set(TRAIN_RUNS),
}


@pytest.mark.parametrize("run", [pytest.param(r, marks=pytest.mark.slow) if r in SLOW else r for r in TRAIN_RUNS])
def test_a_training_run_reads_every_key_of_its_config(run, synthetic_dir, tmp_path):
    overrides = [*TINY, "trainer.max_epochs=1", f"paths.data_dir={synthetic_dir}", f"paths.output_dir={tmp_path}"]
    cfg = compose_cfg([*overrides, *TRAIN_RUNS[run]])
    assert set(unread_in_run(train, cfg)) == {key for key, runs in UNREAD_IN.items() if run in runs}


# ------------------------------------------------------------------ make_hht


SESSIONS = SessionConfig(subjects=1, movements=2, reps=2, channels=4, fs=200.0, move_s=1.0, rest_s=0.6)


def hht_runs(tmp_path: Path) -> dict[str, list[str]]:
    """make_hht runs that between them take every code path that reads settings: a manifest of CSV
    recordings (windows, stacking, notch, resampling, EEMD), a folder of .npz / .mat / .csv recordings
    labelled by name (CEEMDAN, a time column, channel subsets), whole sessions cut by labels and by a
    marker. Tiny and fast: 600-sample recordings, 16x16 spectra, two ensemble trials."""
    raw = tmp_path / "raw"
    raw.mkdir()
    signal = emg_like(600, 1000.0)
    np.savetxt(raw / "rec.csv", np.stack([signal, signal[::-1]], axis=1), delimiter=",")
    (raw / "manifest.csv").write_text("path,fs_hz,subject,movement,gender,device\nrec.csv,1000,S1,full,M,biopac\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    np.savez(folder / "S01_F_half.npz", signal=signal, fs=1000.0, channels=np.array(["BICEPS"]))
    savemat(folder / "S02_M_full.mat", {"signal": signal[:, None]})  # no fs: reader.fs
    with_time = np.stack([np.arange(600) / 1000.0, signal, signal], 1)
    np.savetxt(folder / "S03_M_wrong.csv", with_time, delimiter=";", header="t;A;B", comments="")
    labels, marker = tmp_path / "labels", tmp_path / "marker"
    generate_sessions(labels, SessionConfig(**{**SESSIONS.__dict__, "fmt": "npz"}))
    generate_sessions(marker, SessionConfig(**{**SESSIONS.__dict__, "fmt": "mat73", "layout": "marker"}))
    (marker / "manifest.csv").unlink()  # folder input: no manifest, fs from reader.fs
    fast = ["spectrum.size=16", "emd.max_imf=3", "emd.trials=2"]  # hht_cfg: one worker, no progress bar
    return {
        "manifest": [f"input={raw / 'manifest.csv'}", "window.length_s=0.25", "window.hop_s=0.2",
                     "layout.stack_channels=true", "filter.notch_hz=50", "filter.resample_hz=800",
                     "emd.method=eemd", "normalise.scope=window", *fast],
        "folder": [f"input={folder}", "reader.fs=1000", "reader.time_column=0", "reader.delimiter=semicolon",
                   "reader.channels=[0]", "emd.method=ceemdan", r"inputs.subject_regex='^(S\d+)_'",
                   "spectrum.freq_range=band", "spectrum.freq_scale=log", *fast],
        "segments": [f"input={labels / 'manifest.csv'}", "preset=ninapro", "segment.keep_rest=true",
                     "segment.max_duration_s=10", "segment.pad_s=0.1", "filter.bandpass=[20,90]", *fast],
        "marker": [f"input={marker}", "preset=ninapro", "reader.fs=200", "segment.mode=marker",
                   "segment.label_key=marker", "segment.labels=[fist,pinch]", "segment.reps_per_label=2",
                   "filter.bandpass=[20,90]", "reader.channel_names=[A,B,C,D]", *fast],
    }  # fmt: skip


# make_hht settings no run below reads, each with the reason (none).
HHT_UNREAD: dict[str, str] = {}


def test_make_hht_runs_read_every_setting(tmp_path):
    """Every field of make_hht's settings is read by one of the runs (a rerun of the first reads
    `overwrite`: it is only looked at once an output exists)."""
    runs = hht_runs(tmp_path)
    seen_by, leaves = {}, []
    for name, overrides in [*runs.items(), ("manifest again", runs["manifest"])]:
        cfg = hht_cfg(*overrides, f"output={tmp_path / 'out' / name.split()[0]}")
        settings = settings_from_cfg(cfg)
        leaves = leaves or settings_leaves(settings)
        with settings_reads(settings) as seen_by[name]:
            convert(cfg)  # make_hht.py's whole run: the conversion, then preview.png
    # what is recorded is what a run reads, not every setting there is: the check can fail
    assert "segment.pad_s" not in seen_by["manifest"] and "overwrite" not in seen_by["manifest"]
    assert {"window.hop_s", "filename_scheme.movement_synonyms", "overwrite"} <= seen_by["manifest again"]
    assert sorted(set(leaves).difference(*seen_by.values())) == sorted(HHT_UNREAD)


# ------------------------------------------------------------------ fit_svm and predict

# conf/fit_svm.yaml composes data.* and model.* for ckpt=null only: a checkpoint carries its own data
# settings and encoder architecture (paths.data_dir reaches the code only as data.data_dir). The
# ckpt=null run below must read them all.
READ_FOR_THE_RANDOM_ENCODER_ONLY = ("data.", "model.", "paths.data_dir")


@pytest.fixture(scope="module")
def svm_on_checkpoint(checkpoint, tmp_path_factory) -> tuple[Path, DictConfig, list[str]]:
    """fit_svm.py ckpt=<the tiny checkpoint>: its output folder, config and the keys it left unread."""
    out = tmp_path_factory.mktemp("svm")
    cfg = compose_cfg([f"paths.output_dir={out}", f"ckpt={checkpoint}"], "fit_svm")
    return out, cfg, unread_in_run(fit_svm, cfg)


def test_fit_svm_on_a_checkpoint_reads_every_key_but_the_random_encoders(svm_on_checkpoint):
    _, cfg, unread = svm_on_checkpoint
    assert unread == [k for k in leaf_keys(cfg) if k.startswith(READ_FOR_THE_RANDOM_ENCODER_ONLY)]


def test_fit_svm_on_a_random_encoder_reads_every_key(synthetic_dir, tmp_path):
    tiny = ["data.input_size=32", "model.num_layers=2", "model.base_channels=4", "data.load_workers=2"]
    cfg = compose_cfg(
        [f"paths.output_dir={tmp_path}", "ckpt=null", f"paths.data_dir={synthetic_dir}", *tiny], "fit_svm"
    )
    assert unread_in_run(fit_svm, cfg) == []


def test_predict_with_a_checkpoint_and_an_svm_reads_every_key(svm_on_checkpoint, checkpoint, tmp_path):
    """The default input (the Test* files of the checkpoint's data folder), CNN and SVM columns."""
    svm_dir, _, _ = svm_on_checkpoint
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", f"ckpt={checkpoint}", f"svm={svm_dir / 'svm.skops'}"], "predict")
    assert unread_in_run(predict, cfg) == []


# ------------------------------------------------------------------ evaluate


@pytest.mark.slow
def test_evaluate_with_every_kind_of_row_reads_every_key(tmp_path):
    """Classic rows (whole recordings and windows, LDA and SVM), the per-person calibrated rows, the
    linear control on make_hht's matrices and a held-out person, on synthetic raw recordings."""
    generate(tmp_path / "raw", SynthConfig(subjects=4, reps=2, duration_s=1.0, fs=500.0, channels=2, seed=3))
    raw = tmp_path / "raw" / "manifest.csv"
    conversion = ["layout.stack_channels=true", "spectrum.size=16", "emd.max_imf=3"]
    convert(hht_cfg(f"input={raw}", f"output={tmp_path / 'hht'}", *conversion))  # evaluate.py's make_hht=[...]
    # the experiment's folds and settings on the synthetic set: every device, its classes, 2 folds
    stand_in = ["~data.filter", "data.classes.movement=[full,half,invalid]", "data.n_folds=2",
                "data.test_filter=null", "data.input_size=16"]  # fmt: skip
    overrides = "overrides=[" + ",".join(f"'{o}'" for o in stand_in) + "]"
    cfg = compose_cfg(
        [f"raw={raw}", "experiments=[muscletracker_movement]", overrides, f"hht_dir={tmp_path / 'hht'}",
         "person_norm.enabled=true", "classifiers.pca_lda.n_components=4", "test_filter={subject:[S04]}",
         "make_hht=[" + ",".join(f"'{o}'" for o in conversion) + "]",
         f"paths.output_dir={tmp_path / 'eval'}"],
        "evaluate",
    )  # fmt: skip
    assert unread_in_run(evaluate, cfg) == []
