"""The design card's usages, as the README writes them, on a fresh demo folder (what `make train` makes,
smaller): the first one answers with the command to paste, and that command, a sweep, the gender SVM on
its checkpoint, predict.py and TensorBoard's folder all work. Slow: a dozen subprocesses (~2 min)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow
QUICK = ["trainer.max_epochs=2"]  # the usages as written, shortened


def python(cwd: Path, script: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *(["-m", script] if script.startswith("semg_hht") else [str(ROOT / script)]), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=900)
    assert (result.returncode == 0) == ok, f"{' '.join(cmd)}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A project folder right after make train's first two steps: data/demo/raw and data/demo/hht."""
    home = tmp_path_factory.mktemp("home")
    python(home, "semg_hht.synth", "--out", "data/demo/raw", "--subjects", "4", "--reps", "2")
    python(home, "make_hht.py", "input=data/demo/raw/manifest.csv", "output=data/demo/hht", "progress=false")
    return home


def test_the_readme_usages_work_right_after_make_train(demo):
    first = python(demo, "train.py", "model.num_layers=5", ok=False)
    line = first.stderr.strip().splitlines()[-1]
    assert line.startswith("error: data/hht: data folder not found") and "Traceback" not in first.stderr
    command = line.split(": python ", 1)[1].split()
    assert command == ["train.py", "experiment=demo", "model.num_layers=5"]
    python(demo, command[0], *command[1:], *QUICK, "hydra.run.dir=logs/train/runs/five")
    run = demo / "logs/train/runs/five"
    assert '"num_layers": 5' in (run / "metrics.json").read_text() or (run / "checkpoints/best.ckpt").is_file()

    python(demo, "train.py", "-m", "experiment=demo", "model.num_layers=3,5", *QUICK)
    (summary,) = demo.glob("logs/train/multiruns/*/summary.csv")
    assert [r["status"] for r in csv.DictReader(summary.open())] == ["ok", "ok"]

    python(demo, "fit_svm.py", f"ckpt={run}/checkpoints/best.ckpt", "hydra.run.dir=logs/fit_svm/runs/svm")
    svm = demo / "logs/fit_svm/runs/svm/svm.skops"
    assert svm.is_file()

    out = demo / "logs/predict/runs/p"
    python(demo, "predict.py", f"ckpt={run}/checkpoints/best.ckpt", f"svm={svm}", "input=data/demo/hht",
           f"hydra.run.dir={out}")  # fmt: skip
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == len(list((demo / "data/demo/hht").glob("*.npz")))
    log = (out / "predict.log").read_text()
    assert "error" not in log.lower() and "predictions.csv" in log  # the results, not only the terminal's

    # README: `tensorboard --logdir logs` sees every run above
    runs_with_events = {p.parents[1] for p in demo.glob("logs/train/**/tensorboard/**/events.out.tfevents.*")}
    assert len(runs_with_events) >= 3, sorted(map(str, runs_with_events))
