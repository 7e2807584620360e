"""adapt.py raw=...: each person's classic side (a classifier fitted on their support recordings alone) mixed
with the adapted CNN, kept in their checkpoint, and served by predict.py raw=... exactly as adapt.py scored it;
the refusals."""

from __future__ import annotations

import csv
import logging
import re
import shutil

import numpy as np
import pytest

from semg_hht.adaptation.run import adapt
from semg_hht.conversion import convert
from semg_hht.errors import SemgError, run_guarded
from semg_hht.io import write_csv
from semg_hht.models.checkpoint import read_checkpoint
from semg_hht.prediction import predict
from semg_hht.synth.raw import SynthConfig, generate
from semg_hht.training import train
from tests.helpers import TINY, compose_cfg, hht_cfg

CONVERSION = ["layout.stack_channels=true", "spectrum.size=16", "emd.max_imf=3"]
SUPPORT = "support={repetition:[1]}"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Four synthetic people (2 s recordings, invalid ones about 1 s, 3 classes x 3 repetitions) converted by
    make_hht; a tiny model trained on S01-S02, so S03 and S04 are new people."""
    root = tmp_path_factory.mktemp("mixture")
    generate(root / "raw", SynthConfig(subjects=4, reps=3, duration_s=2.0, fs=500.0, channels=2, seed=3))
    convert(hht_cfg(f"input={root / 'raw' / 'manifest.csv'}", f"output={root / 'hht'}", *CONVERSION))
    with open(root / "hht" / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subject"] in ("S01", "S02")]
    write_csv(root / "hht" / "train.csv", rows, list(rows[0]))
    cfg = compose_cfg(
        [*TINY, f"paths.data_dir={root / 'hht'}", f"paths.output_dir={root / 'run'}", "data.input_size=16",
         "model.in_channels=2", "data.label_source=manifest", "data.manifest=train.csv", "data.split=none",
         "report_on=last", "scheduler=warmup_cosine", "callbacks.model_checkpoint=null"]
    )  # fmt: skip
    train(cfg)
    return root, root / "run" / "checkpoints" / "last.ckpt"


def adapted(study, out, *overrides):
    root, ckpt = study
    args = [f"paths.output_dir={out}", f"ckpt={ckpt}", f"input={root / 'hht' / 'manifest.csv'}", SUPPORT]
    args += ["filter={subject:[S03,S04]}", "adapt.steps=4", f"raw={root / 'raw' / 'manifest.csv'}", *overrides]
    return adapt(compose_cfg(args, "adapt"))


def columns(path, prefix: str) -> tuple[list[str], np.ndarray]:
    """predictions.csv's files and the class probabilities of one output (p_<prefix>_<class>)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [c for c in rows[0] if c.startswith(f"p_{prefix}_") and c.count("_") == prefix.count("_") + 2]
    return [r["file"] for r in rows], np.array([[float(r[c]) for c in names] for r in rows])


@pytest.fixture(scope="module")
def mixed(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapted")
    return out, adapted(study, out)


def windows(row) -> int:
    """Full 0.25 s windows every 0.125 s in the stretch make_hht converted."""
    return int((float(row["t_end_s"]) - float(row["t_start_s"]) - 0.25) / 0.125 + 1e-9) + 1


def test_each_person_gets_the_mixture_and_their_checkpoint_carries_its_side(study, mixed):
    root, _ = study
    out, metrics = mixed
    with open(root / "hht" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(metrics["people"]) == {"S03", "S04"} and metrics["classic_side"]["method"] == "svm"
    assert set(metrics) >= {"k0", "adapted", "mixture"} and 0 <= metrics["mixture"]["acc"] <= 1
    for person in ("S03", "S04"):
        support = [r for r in rows if r["subject"] == person and r["repetition"] == "1"]
        scored = metrics["people"][person]
        assert set(scored) >= {"k0", "adapted", "mixture"} and scored["n_support"] == 3
        side = read_checkpoint(out / f"{person}.ckpt")["classic"]
        # the support features: one row per 0.25 s window (0.125 s hop) of the person's three support recordings
        assert side["x"].shape[0] == sum(windows(r) for r in support) and sorted(set(side["y"].tolist())) == [0, 1, 2]
        assert side["method"] == "svm" and side["cnn_weight"] == 0.5
    files, mix = columns(out / "predictions.csv", "movement")
    _, cnn = columns(out / "predictions.csv", "movement_cnn")
    assert len(files) == 2 * 6 and np.allclose(mix.sum(1), 1) and not np.allclose(mix, cnn)


def test_predict_serves_the_mixture_adapt_scored(study, mixed, tmp_path):
    root, _ = study
    out, _ = mixed
    args = [f"ckpt={out / 'S03.ckpt'}", f"input={root / 'hht' / 'manifest.csv'}", "filter={subject:[S03]}"]
    rows = predict(
        compose_cfg([f"paths.output_dir={tmp_path}", *args, f"raw={root / 'raw' / 'manifest.csv'}"], "predict")
    )
    assert len(rows) == 9  # the person's support and query recordings
    served, theirs = {}, {}
    for name, path in (("served", tmp_path / "predictions.csv"), ("theirs", out / "predictions.csv")):
        for prefix in ("movement", "movement_cnn"):
            files, probs = columns(path, prefix)
            (served if name == "served" else theirs)[prefix] = dict(zip(files, probs, strict=True))
    query = list(theirs["movement"])
    query = [f for f in query if f in served["movement"]]
    assert len(query) == 6
    for prefix in ("movement", "movement_cnn"):
        assert np.allclose([served[prefix][f] for f in query], [theirs[prefix][f] for f in query], atol=1e-4)


def test_the_mixture_is_the_weighted_mean_of_its_two_sides(study, tmp_path):
    probs = {}
    for weight in (0.0, 1.0, 0.25):
        adapted(study, tmp_path / str(weight), f"mixture.cnn_weight={weight}")
        _, probs[weight] = columns(tmp_path / str(weight) / "predictions.csv", "movement")
    _, cnn = columns(tmp_path / "1.0" / "predictions.csv", "movement_cnn")
    assert np.allclose(probs[1.0], cnn)  # the CNN's share 1: the adapted CNN alone
    assert np.allclose(probs[0.25], 0.25 * probs[1.0] + 0.75 * probs[0.0])
    assert not np.allclose(probs[0.0], cnn)


def test_without_raw_the_adapted_cnn_alone_and_no_side(study, tmp_path):
    root, ckpt = study
    args = [f"paths.output_dir={tmp_path}", f"ckpt={ckpt}", f"input={root / 'hht' / 'manifest.csv'}", SUPPORT]
    metrics = adapt(compose_cfg([*args, "filter={subject:[S03]}", "adapt.steps=2"], "adapt"))
    assert metrics["classic_side"] is None and "mixture" not in metrics and "mixture" not in metrics["people"]["S03"]
    assert "classic" not in read_checkpoint(tmp_path / "S03.ckpt")


def test_predict_without_raw_says_the_checkpoint_carries_a_side(study, mixed, tmp_path, caplog):
    root, _ = study
    out, _ = mixed
    with caplog.at_level(logging.WARNING):
        args = [f"ckpt={out / 'S04.ckpt'}", f"input={root / 'hht' / 'manifest.csv'}", "filter={subject:[S04]}"]
        predict(compose_cfg([f"paths.output_dir={tmp_path}", *args], "predict"))
    assert any("carries S04's classic side (person-alone svm)" in r.getMessage() for r in caplog.records)
    files, _ = columns(tmp_path / "predictions.csv", "movement")
    assert len(files) == 9 and "p_movement_cnn_full" not in (tmp_path / "predictions.csv").read_text()


def refusal(run, cfg, capsys) -> str:
    with pytest.raises(SystemExit):
        run_guarded(run, cfg)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    return lines[0]


def test_predict_raw_with_a_checkpoint_without_a_side_is_refused(study, tmp_path, capsys):
    root, ckpt = study
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", f"ckpt={ckpt}", f"input={root / 'hht' / 'manifest.csv'}",
                       f"raw={root / 'raw' / 'manifest.csv'}"], "predict")  # fmt: skip
    assert "this one carries none" in refusal(predict, cfg, capsys)


def test_matrices_without_a_conversion_record_are_refused(study, tmp_path, capsys):
    root, ckpt = study
    shutil.copytree(root / "hht", tmp_path / "hht")
    (tmp_path / "hht" / "conversion.yaml").unlink()
    cfg = compose_cfg(
        [f"paths.output_dir={tmp_path / 'out'}", f"ckpt={ckpt}", f"input={tmp_path / 'hht' / 'manifest.csv'}",
         SUPPORT, "filter={subject:[S03]}", f"raw={root / 'raw' / 'manifest.csv'}"],
        "adapt",
    )  # fmt: skip
    line = refusal(adapt, cfg, capsys)
    assert "no conversion.yaml beside the matrices" in line and "make_hht.py" in line


def test_raw_recordings_of_other_people_are_refused(study, tmp_path):
    generate(tmp_path / "other", SynthConfig(subjects=2, reps=1, duration_s=1.0, fs=500.0, channels=2, seed=9))
    with pytest.raises(SemgError, match="lists no recording|not one raw= holds"):
        adapted(study, tmp_path / "out", f"raw={tmp_path / 'other' / 'manifest.csv'}")


def test_too_few_support_windows_for_the_platt_folds_are_refused(study, tmp_path, capsys):
    root, ckpt = study
    cfg = compose_cfg(
        [f"paths.output_dir={tmp_path}", f"ckpt={ckpt}", f"input={root / 'hht' / 'manifest.csv'}", SUPPORT,
         "filter={subject:[S03]}", f"raw={root / 'raw' / 'manifest.csv'}", "mixture.calibration_cv=50"],
        "adapt",
    )  # fmt: skip
    line = refusal(adapt, cfg, capsys)
    assert re.search(
        r"S03's support recordings of \w+ give \d+ feature windows, fewer than mixture.calibration_cv=50", line
    )
    assert not (tmp_path / "S03.ckpt").exists()  # refused before any adaptation


def test_new_recordings_converted_otherwise_are_refused_before_any_model_runs(study, mixed, tmp_path, capsys):
    root, _ = study
    out, _ = mixed
    other = [*CONVERSION[:-1], "emd.max_imf=2"]  # the same matrix size: the CNN alone would read them
    convert(hht_cfg(f"input={root / 'raw' / 'manifest.csv'}", f"output={tmp_path / 'hht'}", *other))
    cfg = compose_cfg(
        [f"paths.output_dir={tmp_path / 'out'}", f"ckpt={out / 'S03.ckpt'}", "filter={subject:[S03]}",
         f"input={tmp_path / 'hht' / 'manifest.csv'}", f"raw={root / 'raw' / 'manifest.csv'}"],
        "predict",
    )  # fmt: skip
    line = refusal(predict, cfg, capsys)
    assert "converted with other make_hht settings" in line and "not comparable" in line
    assert not (tmp_path / "out" / "predictions.csv").exists()
