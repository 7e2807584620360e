"""The real conf/: every group option and experiment composes and instantiates, and every YAML key
is read by the code (a key nothing reads fails here)."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from semg_hht.evaluation.classic import make_classifier
from semg_hht.training.train import build_datamodule, build_model
from tests.config_keys import unread_keys
from tests.helpers import CONF, TINY, compose_cfg

GROUPS = [
    "data",
    "model",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "paths",
    "hydra",
    "experiment",
]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def test_all_group_options_are_found():
    assert {g for g, _ in OPTIONS} >= {"data", "model", "optimizer", "scheduler", "trainer", "experiment"}
    assert ("experiment", "seed_dual") in OPTIONS and ("trainer", "gpu") in OPTIONS


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_every_key_is_read(group, option, tmp_path):
    if group in ("paths", "hydra"):
        override = []
    elif group in ("callbacks", "logger"):
        override = [f"{group}=[default,{option}]" if group == "callbacks" else f"{group}={option}"]
    else:
        override = [f"{group}={option}"]
    cfg = compose_cfg([*override, f"paths.output_dir={tmp_path}"])
    OmegaConf.resolve(cfg.trainer)
    assert unread_keys(cfg) == []


# Experiments on real recordings (their class lists and data.filter do not fit the synthetic set):
# instantiated on a make_hht-shaped stand-in in tests/test_eval_configs.py.
REAL_DATA = {"muscletracker_movement", "muscletracker_gender", "muscletracker_mio_movement"}


@pytest.mark.parametrize("experiment", [o for g, o in OPTIONS if g == "experiment" and o not in REAL_DATA])
def test_every_experiment_instantiates_end_to_end(experiment, synthetic_dir, tmp_path):
    people = ["data.label_source=manifest", "data.manifest=manifest.csv"] if experiment == "person_norm" else []
    cfg = compose_cfg(
        [f"experiment={experiment}", *TINY, f"paths.data_dir={synthetic_dir}", f"paths.output_dir={tmp_path}", *people]
    )
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    x = datamodule.x[:4]
    assert model(x).shape == (4, datamodule.num_classes)
    for node in [n for n in (*cfg.callbacks.values(), *cfg.logger.values()) if n]:  # null: switched off
        assert instantiate(node) is not None
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert instantiate(trainer_cfg | {"logger": False}).max_epochs == cfg.trainer.max_epochs


def test_the_checker_catches_an_unread_key(tmp_path):
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", "+model.kernel_size=5", "+data.augment.mixup=0.2"])
    assert set(unread_keys(cfg)) == {"model.kernel_size", "data.augment.mixup"}


def test_cli_style_model_override_sits_directly_under_model(tmp_path):
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", "model.num_layers=5"])
    assert cfg.model.num_layers == 5 and cfg.data.in_channels == cfg.model.in_channels


def test_seed_experiments_carry_the_seeds_hyperparameters(tmp_path):
    dual = compose_cfg(["experiment=seed_dual", f"paths.output_dir={tmp_path}"])
    assert (dual.model.num_layers, dual.model.base_channels, dual.data.batch_size) == (7, 64, 16)
    assert (dual.optimizer.name, dual.optimizer.lr, dual.scheduler.warmup_epochs) == ("AdamW", 1e-4, 5)
    assert (dual.trainer.max_epochs, dual.trainer.gradient_clip_val, dual.model.label_smoothing) == (
        100,
        1.0,
        0.1,
    )
    cnn = compose_cfg(["experiment=seed_cnn", f"paths.output_dir={tmp_path}"])
    assert (cnn.model.num_layers, cnn.model.norm, cnn.optimizer.name, cnn.optimizer.lr) == (
        3,
        "instance",
        "Adam",
        1e-3,
    )
    assert (cnn.scheduler.plateau.patience, cnn.scheduler.cosine, cnn.model.label_smoothing) == (
        5,
        False,
        0.0,
    )


def test_every_key_of_the_evaluate_config_is_read(tmp_path):
    sweep = '{target:movement,label:"CNN tuned (stacked channels)",dir:logs/x}'
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", f"sweeps=[{sweep}]"], "evaluate")
    OmegaConf.resolve(cfg.paths)
    assert unread_keys(cfg) == []
    assert cfg.sweeps[0].label == "CNN tuned (stacked channels)" and cfg.out == str(tmp_path)
    assert (cfg.filter.notch_hz, cfg.filter.notch_harmonics, cfg.features.ar_order, cfg.seed) == (60.0, 3, 4, 42)
    svm = make_classifier("svm", OmegaConf.to_container(cfg.classifiers.svm), cfg.seed)[-1].get_params()
    assert (svm["kernel"], svm["C"], svm["gamma"], svm["random_state"]) == ("rbf", 10.0, "scale", 42)
    bad = compose_cfg([f"paths.output_dir={tmp_path}", "+classifiers.svm.depth=3", "+features.window=8"], "evaluate")
    assert set(unread_keys(bad)) == {"classifiers.svm.depth", "features.window"}
