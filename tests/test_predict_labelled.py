"""predict.py on labelled input: manifest CSV input with a filter, ensembles of checkpoints, scores."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semg_hht.errors import SemgError
from semg_hht.io import save_npz, write_csv
from semg_hht.models import HHTClassifier
from tests.helpers import HP, matrix, run_predict, write_ckpt

CLASSES = HP["class_names"]


@pytest.fixture
def labelled(tmp_path) -> Path:
    """6 matrices of 2 people; 3 recordings of 2 windows each for person a, manifest with labels."""
    folder = tmp_path / "new"
    rows = []
    for i, (subject, movement, recording) in enumerate(
        [("a", "full", 0), ("a", "full", 0), ("a", "half", 1), ("a", "half", 1), ("b", "full", 2), ("b", "invalid", 3)]
    ):
        name = f"rec_{i}.npz"
        save_npz(folder / name, hht=matrix(seed=10 + i))
        rows.append({"file": name, "subject": subject, "movement": movement, "recording": recording, "window": i % 2})
    write_csv(folder / "manifest.csv", rows, list(rows[0]))
    return folder


def rigged(path: Path, data_dir: Path, favourite: int) -> Path:
    """A checkpoint whose head always answers ``favourite``: its accuracy is known by construction."""
    model = HHTClassifier(**HP)
    last = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.nn.functional.one_hot(torch.tensor(favourite), 3).float() * 10)
    return write_ckpt(path, data_dir, state_dict=model.state_dict())


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_input_is_scored_with_known_accuracy(tmp_path, labelled, capsys):
    ckpt = rigged(tmp_path / "full.ckpt", labelled, favourite=0)  # always "full"
    run_predict(tmp_path, f"ckpt={ckpt}", f"input={labelled / 'manifest.csv'}")
    out = tmp_path / "out"
    rows = read(out / "predictions.csv")
    assert list(rows[0])[:5] == ["file", "subject", "recording", "true_movement", "movement"]
    assert [r["true_movement"] for r in rows] == ["full", "full", "half", "half", "full", "invalid"]
    assert {r["movement"] for r in rows} == {"full"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["acc"] == pytest.approx(3 / 6) and metrics["chance"] == pytest.approx(3 / 6)
    assert metrics["balanced_acc"] == pytest.approx(1 / 3)  # recall 1, 0, 0
    assert metrics["recording_acc"] == pytest.approx(2 / 4)  # recordings 0 and 2 are "full"
    assert metrics["targets"]["movement"]["confusion_matrix"] == [[3, 0, 0], [2, 0, 0], [1, 0, 0]]
    assert (out / "confusion_matrix_movement.png").is_file()
    assert "acc 0.500" in capsys.readouterr().out


def test_filter_picks_manifest_rows(tmp_path, labelled):
    ckpt = rigged(tmp_path / "full.ckpt", labelled, favourite=0)
    rows = run_predict(tmp_path, f"ckpt={ckpt}", f"input={labelled / 'manifest.csv'}", "filter={subject:[b]}")
    assert [r["file"] for r in rows] == ["rec_4.npz", "rec_5.npz"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["acc"] == pytest.approx(0.5)


def test_ensemble_is_the_mean_of_its_members_probabilities(tmp_path, labelled):
    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        members.append(write_ckpt(tmp_path / f"m{seed}.ckpt", labelled, state_dict=HHTClassifier(**HP).state_dict()))
    manifest = labelled / "manifest.csv"
    single = []
    for i, m in enumerate(members):
        rows = run_predict(tmp_path / f"single{i}", f"ckpt={m}", f"input={manifest}")
        single.append(np.array([[r[f"p_movement_{c}"] for c in CLASSES] for r in rows]))
    both = run_predict(tmp_path / "both", f"ckpt=[{members[0]},{members[1]}]", f"input={manifest}")
    mean = np.array([[r[f"p_movement_{c}"] for c in CLASSES] for r in both])
    assert np.allclose(mean, (single[0] + single[1]) / 2, atol=1e-6)
    assert not np.allclose(single[0], single[1])  # two different models, so the check means something
    # and by hand, outside predict: softmax of each model on the min-max normalised matrix
    x = torch.from_numpy(matrix(seed=10))[None, None]
    x = (x - x.min()) / (x.max() - x.min())
    by_hand = []
    for m in members:
        model = HHTClassifier(**HP)
        model.load_state_dict(torch.load(m, weights_only=True)["state_dict"])
        by_hand.append(torch.softmax(model.eval()(x), 1)[0].detach().numpy())
    assert np.allclose(mean[0], np.mean(by_hand, axis=0), atol=1e-5)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"class_names": ["full", "half", "wrong"]}, "ensemble members differ in class_names"),
        ({"input_size": 64}, "ensemble members differ in input_size"),
    ],
)
def test_ensemble_of_different_models_is_refused_before_anything_is_written(tmp_path, labelled, change, match):
    a = write_ckpt(tmp_path / "a.ckpt", labelled)
    hp = HP | change
    b = write_ckpt(tmp_path / "b.ckpt", labelled, hp, state_dict=HHTClassifier(**hp).state_dict())
    with pytest.raises(SemgError, match=match):
        run_predict(tmp_path, f"ckpt=[{a},{b}]", f"input={labelled / 'manifest.csv'}")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_unknown_labels_and_bad_filters_are_one_line(tmp_path, labelled):
    ckpt = write_ckpt(tmp_path / "a.ckpt", labelled)
    rows = read(labelled / "manifest.csv")
    rows[0]["movement"] = "sideways"
    write_csv(labelled / "odd.csv", rows, list(rows[0]))
    with pytest.raises(SemgError, match=r"labels \['sideways'\] are not among the model's classes"):
        run_predict(tmp_path, f"ckpt={ckpt}", f"input={labelled / 'odd.csv'}")
    with pytest.raises(SemgError, match="no manifest row matches filter"):
        run_predict(tmp_path, f"ckpt={ckpt}", f"input={labelled / 'manifest.csv'}", "filter={subject:[zz]}")
    with pytest.raises(SemgError, match="filter selects manifest rows"):
        run_predict(tmp_path, f"ckpt={ckpt}", f"input={labelled}", "filter={subject:[a]}")
    assert not (tmp_path / "out" / "predictions.csv").exists()
