"""Scale-out on a real engine, tested locally: make_hht sharded through Hydra's submitit launcher (the
plugin SLURM runs use, here its local executor) gives exactly the single-process output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semg_hht.synth.raw import SynthConfig, generate
from tests.helpers import ROOT

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")  # in the dev extra; make venv installs it


def make_hht(tmp_path, *args: str) -> None:
    common = ["input=raw/manifest.csv", "spectrum.size=32", "emd.max_imf=3", "progress=false"]
    cmd = [sys.executable, str(ROOT / "make_hht.py"), *args, *common]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_make_hht_sharded_through_submitit_equals_one_process(tmp_path):
    generate(tmp_path / "raw", SynthConfig(subjects=2, reps=1, duration_s=1.0, fs=500.0, channels=2, seed=3))
    make_hht(tmp_path, "-m", "hydra/launcher=submitit_local", "shard=range(3)", "num_shards=3", "output=sharded")
    make_hht(tmp_path, "output=single")
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    shard_manifests = {f"manifest.shard-00{i}-of-003.csv" for i in range(3)}
    assert {p.name for p in sharded.iterdir()} == {p.name for p in single.iterdir()} | shard_manifests
    for p in single.iterdir():
        if p.suffix in (".npz", ".csv", ".yaml"):  # conversion.yaml too: shards record no shard
            assert (sharded / p.name).read_bytes() == p.read_bytes(), p.name
    (sweep,) = (tmp_path / "logs" / "hht" / "multiruns").iterdir()  # one sweep folder: the launcher's PID
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == ["0", "1", "2", "multirun.yaml"]
