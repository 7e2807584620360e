"""Every scalar key of train.yaml, hht.yaml, fit_svm.yaml, predict.yaml, evaluate.yaml and adapt.yaml set to a
string, 0 and -1: either a value the key accepts, or exit 1 with one line naming the key, never a
traceback. In-process on the checks each entry point runs first; a few real subprocesses below."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from semg_hht.config_check import ADAPT, EVALUATE, FIT_SVM, PREDICT, TRAIN, check_config, rule_for, scalar_keys
from semg_hht.errors import run_guarded
from semg_hht.hht.settings import settings_from_cfg
from tests.helpers import ROOT, compose_cfg

WRONG = ("abc", 0, -1)
TABLES = {"train": TRAIN, "fit_svm": FIT_SVM, "predict": PREDICT, "evaluate": EVALUATE, "adapt": ADAPT}


def _base(name: str, tmp_path):
    extra = ["input=a", "output=b"] if name == "hht" else [f"paths.output_dir={tmp_path}"]
    return compose_cfg(extra, name)


def _check(name: str):
    if name == "hht":
        return settings_from_cfg
    return lambda cfg: check_config(cfg, TABLES[name])


@pytest.mark.parametrize("name", ["train", "fit_svm", "predict", "evaluate", "adapt"])
def test_every_scalar_key_has_a_rule(name, tmp_path):
    missing = [k for k in scalar_keys(_base(name, tmp_path)) if rule_for(k, TABLES[name]) is None]
    assert missing == [], f"add these keys to semg_hht.config_check.{name.upper()}"


@pytest.mark.parametrize("name", ["train", "hht", "fit_svm", "predict", "evaluate", "adapt"])
def test_every_scalar_key_set_wrong_is_one_line_naming_it(name, tmp_path, capsys):
    base = _base(name, tmp_path)
    check = _check(name)
    run_guarded(check, base)  # the shipped config itself passes
    keys = scalar_keys(base)
    assert len(keys) > 10
    problems, rejected = [], 0
    for key in keys:
        default = OmegaConf.select(base, key)
        for value in WRONG:
            cfg = copy.deepcopy(base)
            OmegaConf.update(cfg, key, value, merge=False)
            try:
                run_guarded(check, cfg)
            except SystemExit as stop:
                err = capsys.readouterr().err
                lines = [ln for ln in err.splitlines() if ln.strip()]
                rejected += 1
                if stop.code != 1 or len(lines) != 1 or not lines[0].startswith("error: ") or key not in lines[0]:
                    problems.append((key, value, stop.code, err))
                continue
            except Exception as err:  # a traceback for the user
                problems.append((key, value, "traceback", repr(err)))
                continue
            if value == "abc" and isinstance(default, (bool, int, float)):
                problems.append((key, value, "accepted a string for a number or flag", ""))
    assert problems == []
    assert rejected > len(keys)


# one per script in the default run (a subprocess costs ~10 s of imports); more train.py values under -m slow
CLI = [
    ("train.py", ["trainer.max_epochs=abc"], "trainer.max_epochs"),
    pytest.param("train.py", ["data.batch_size=-4"], "data.batch_size", marks=pytest.mark.slow),
    pytest.param("train.py", ["model.dropout=1.5"], "model.dropout", marks=pytest.mark.slow),
    ("predict.py", ["batch_size=0", "ckpt=x.ckpt"], "batch_size"),
    ("make_hht.py", ["input=a", "output=b", "spectrum.size=abc"], "spectrum.size"),
]


@pytest.mark.parametrize(("script", "overrides", "key"), CLI)
def test_the_scripts_exit_1_with_one_line(script, overrides, key, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *overrides, f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln]
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("error: ") and key in lines[-1], proc.stderr[-2000:]


def test_device_rule_follows_the_feature_extractor():
    from semg_hht.models.inference import DEVICES

    predict, fit_svm = rule_for("device", PREDICT), rule_for("device", FIT_SVM)
    assert all(predict(d) and fit_svm(d) for d in DEVICES) and not predict("tpu")
