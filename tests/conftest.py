"""Shared fixtures: small synthetic data sets, the real conf/ composed with tiny-model overrides, a
trained tiny checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semg_hht.synth.matrices import make_dataset
from semg_hht.training import train
from tests.helpers import TINY, compose_cfg


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """4 subjects x 3 movements x 3 recordings of 32x32, plus 2 Test_ files and manifest.csv."""
    out = tmp_path_factory.mktemp("synthetic")
    make_dataset(out, subjects=4, per_class=3, size=32, unlabeled=2, seed=0)
    return out


@pytest.fixture
def train_cfg(synthetic_dir, tmp_path):
    """Factory: the training config on the synthetic set with extra overrides."""

    def make(*extra: str, data_dir: Path | None = None):
        return compose_cfg(
            [
                *TINY,
                f"paths.data_dir={data_dir or synthetic_dir}",
                f"paths.output_dir={tmp_path / 'run'}",
                *extra,
            ]
        )

    return make


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    # Two cores: keep torch from oversubscribing while tests run side by side with data loading.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))


@pytest.fixture(scope="module")
def checkpoint(synthetic_dir, tmp_path_factory) -> Path:
    """A one-epoch tiny model trained on synthetic_dir (module scope: one per test module)."""
    out = tmp_path_factory.mktemp("trained")
    train(compose_cfg([*TINY, "trainer.max_epochs=1", f"paths.data_dir={synthetic_dir}", f"paths.output_dir={out}"]))
    return out / "checkpoints" / "best.ckpt"
