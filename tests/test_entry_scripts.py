"""The entry scripts as a user runs them: one clear line on bad input, no traceback; multirun."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, TINY


def run(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env={**os.environ, **(env or {})}, timeout=600,
    )  # fmt: skip


def test_missing_data_dir_is_one_line_without_traceback(tmp_path):
    result = run(f"paths.data_dir={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'nope'}: data folder not found")
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    result = run(f"paths.data_dir={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'run'}", env={"SEMG_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "SemgError" in result.stderr


@pytest.mark.slow
def test_multirun_sweeps_and_summarises(synthetic_dir, tmp_path):
    result = run(
        "-m", *[o for o in TINY if not o.startswith("~")], "~callbacks.rich_progress_bar",
        f"paths.data_dir={synthetic_dir}", f"paths.log_dir={tmp_path}", "trainer.max_epochs=1",
        "model.num_layers=1,2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (summary,) = tmp_path.glob("train/multiruns/*/summary.csv")
    rows = list(csv.DictReader(summary.open()))
    assert [f"model.num_layers={n}" in r["overrides"].split() for n, r in zip((1, 2), rows, strict=True)] == [True] * 2
    assert all(r["status"] == "ok" and 0 <= float(r["val/acc_best"]) <= 1 for r in rows)
    assert "val/acc_best" in result.stdout and "model.num_layers=2" in result.stdout
