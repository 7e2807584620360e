"""The real conf/: every group option and experiment composes and instantiates, and every YAML key
is one the code takes (a parameter of its _target_ / schema, or named in the sources). Real reads while
runs go: tests/test_config_reads.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from semg_hht.classic.classifiers import make_classifier
from semg_hht.config_check import TRAIN, check_config
from semg_hht.training.train import build_datamodule, build_model, build_trainer
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
    check_config(cfg, TRAIN)  # what train.py checks first: a shipped option must pass it (trainer=gpu once did not)


# Experiments on real recordings (their class lists and data.filter do not fit the synthetic set):
# instantiated on a make_hht-shaped stand-in in tests/test_eval_configs.py.
REAL_DATA = {"muscletracker_movement", "muscletracker_gender", "muscletracker_mio_movement", "real_movement"}


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


def _built(experiment: str, tmp_path):
    """What train.py builds from an experiment: model, optimizer + schedule, trainer and datamodule."""
    cfg = compose_cfg([f"experiment={experiment}", f"paths.output_dir={tmp_path}", "trainer.accelerator=cpu"])
    classes = SimpleNamespace(num_classes=3, class_names=["full", "half", "invalid"])
    model, trainer = build_model(cfg, classes), build_trainer(cfg, [])
    model.trainer = trainer
    optimization = model.configure_optimizers()
    return model, optimization["optimizer"], optimization["lr_scheduler"]["scheduler"], trainer, build_datamodule(cfg)


def test_seed_experiments_carry_the_seeds_hyperparameters(tmp_path):
    """The seeds' settings reach the objects that train (not just the composed YAML)."""
    model, optimizer, schedule, trainer, data = _built("seed_dual", tmp_path)  # seed 000
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 7 and convs[0].out_channels == 64 and data.hparams.batch_size == 16
    assert isinstance(model.encoder.blocks[0].norm, torch.nn.BatchNorm2d)
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["lr"] == 1e-4
    assert optimizer.defaults["weight_decay"] == 1e-4 and schedule.warmup_epochs == 5 and schedule.cosine
    assert trainer.max_epochs == 100 and trainer.gradient_clip_val == 1.0
    assert model.criterion.label_smoothing == pytest.approx(0.1 * 3 / 2)  # the seed's 0.1 in torch's terms
    model, optimizer, schedule, trainer, data = _built("seed_cnn", tmp_path)  # seed 001
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and isinstance(model.encoder.blocks[0].norm, torch.nn.InstanceNorm2d)
    assert [type(m) for m in model.head] == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model.head[1].out_features == 128 and model.head[0].p == 0.5 and model.criterion.label_smoothing == 0
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 1e-3
    assert optimizer.defaults["weight_decay"] == 0 and not schedule.cosine and schedule.patience == 5
    assert trainer.max_epochs == 50 and trainer.gradient_clip_val is None and not data.hparams.augment["enabled"]


def test_every_key_of_the_evaluate_config_is_read(tmp_path):
    sweep = '{target:movement,label:"CNN tuned (stacked channels)",dir:logs/x}'
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", f"sweeps=[{sweep}]"], "evaluate")
    OmegaConf.resolve(cfg.paths)
    assert unread_keys(cfg) == []
    assert cfg.sweeps[0].label == "CNN tuned (stacked channels)" and cfg.out == str(tmp_path)
    assert (list(cfg.make_hht), cfg.features.ar_order, cfg.seed) == ([], 4, 42)  # make_hht's own defaults
    svm = make_classifier("svm", OmegaConf.to_container(cfg.classifiers.svm), cfg.seed)[-1].get_params()
    assert (svm["kernel"], svm["C"], svm["gamma"], svm["random_state"]) == ("rbf", 10.0, "scale", 42)
    bad = compose_cfg([f"paths.output_dir={tmp_path}", "+classifiers.svm.depth=3", "+features.window=8"], "evaluate")
    assert set(unread_keys(bad)) == {"classifiers.svm.depth", "features.window"}
