"""Shared fixtures: small synthetic data sets and the real conf/ composed with tiny-model overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from semg_hht.data.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"
MUSCLETRACKER = SHARED / "data" / "muscletracker"

# A model small enough to train in seconds on 2 CPU cores; everything else is the real config.
TINY = [
    "data.input_size=32",
    "model.num_layers=2",
    "model.base_channels=4",
    "data.batch_size=8",
    "data.load_workers=2",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
]


def compose_cfg(overrides: list[str], config_name: str = "train"):
    """The real conf/ with overrides, as the entry script would see it (hydra node included)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=True)


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
