"""Entry scripts before their work: misspelt keys named with the closest valid ones (every script), checks
that answer before torch is imported, and the error line in the run's log file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semg_hht.cli import unknown_override_line
from semg_hht.config_check import TRAIN, check_config, closest
from semg_hht.errors import SemgError
from tests.helpers import ROOT, compose_cfg

CONF = ROOT / "conf"


@pytest.mark.parametrize(
    ("config", "override", "expected"),
    [
        ("train", "model.num_layer=5", "did you mean model.num_layers?"),
        ("train", "lr=1e-3", "did you mean optimizer.lr?"),
        ("train", "data.batchsize=8", "did you mean data.batch_size"),
        ("fit_svm", "svm.c=3", "did you mean svm.C"),
        ("predict", "bach_size=8", "did you mean batch_size"),
        ("adapt", "adapt.step=5", "did you mean adapt.steps"),
        ("evaluate", "adaptation.k=[1]", "did you mean adaptation.ks"),
        ("hht", "spectrum.sise=64", "did you mean spectrum.size"),
    ],
)
def test_a_misspelt_key_names_the_closest_valid_key(config, override, expected):
    line = unknown_override_line(CONF, config, [override])
    assert line is not None and expected in line and "+" not in line.split("->")[0]


def test_a_new_entry_in_a_free_form_mapping_gets_the_plus_advice():
    line = unknown_override_line(CONF, "train", ["data.filter.device=biopac"])
    assert line.endswith("is new inside the mapping data.filter -> pass +data.filter.device=biopac")


def test_a_misspelt_group_option_names_the_closest_option_and_all_of_them():
    line = unknown_override_line(CONF, "train", ["experiment=dmo"])
    assert "did you mean experiment=demo?" in line and "final_model" in line


def test_valid_overrides_and_sweeps_pass():
    valid = ["experiment=demo", "model.num_layers=3", "+data.filter.device=x", "hydra.run.dir=x"]
    assert unknown_override_line(CONF, "train", valid) is None


def test_a_key_added_with_plus_that_the_schema_lacks_is_refused_with_the_closest():
    cfg = compose_cfg(["+model.num_layer=5", "paths.output_dir=x"])
    with pytest.raises(SemgError, match=r"unknown config key 'model.num_layer': did you mean model.num_layers\?"):
        check_config(cfg, TRAIN)
    check_config(compose_cfg(["+trainer.benchmark=true", "+data.filter.device=x", "paths.output_dir=x"]), TRAIN)


def test_closest_prefers_the_whole_name_then_the_last_part():
    keys = ["model.num_layers", "model.norm", "optimizer.lr", "scheduler.plateau.min_lr"]
    assert closest("model.num_layer", keys)[0] == "model.num_layers"
    assert closest("lr", keys)[0] == "optimizer.lr"
    assert closest("zzz", keys) == []


def _run_script(script: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    """The script as a user runs it; prints whether torch was imported by the time it exited."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{script!r}, *{list(args)!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\n"
        "finally:\n"
        "    print('torch imported:', 'torch' in sys.modules)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd or ROOT, timeout=120)


@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("train.py", ["model.num_layer=5"], "did you mean model.num_layers?"),
        ("train.py", ["model.num_layers=abc"], "model.num_layers='abc' is not an integer"),
        ("fit_svm.py", ["ckpt=nope/best.ckpt"], "nope/best.ckpt: checkpoint not found"),
        ("predict.py", ["ckpt=nope.ckpt"], "nope.ckpt: checkpoint not found"),
        ("adapt.py", ["ckpt=nope.ckpt", "input=x.csv"], "nope.ckpt: checkpoint not found"),
        ("evaluate.py", ["raw=nope.csv"], "nope.csv: raw input manifest not found"),
        ("make_hht.py", ["spectrum.sise=64"], "did you mean spectrum.size?"),
        ("train.py", ["logger=null"], "'logger=null': a config group is dropped with ~logger, not logger=null"),
    ],
)
def test_typos_and_missing_files_answer_before_torch_is_imported(tmp_path, script, args, says):
    result = _run_script(script, *args, f"hydra.run.dir={tmp_path / 'run'}")
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert says in lines[-1] and lines[-1].startswith("error: "), result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    assert "torch imported: False" in result.stdout


def test_right_after_make_train_the_default_folder_error_is_the_command_to_paste(tmp_path):
    (tmp_path / "data" / "demo" / "hht").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", "model.num_layers=3,5"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.stderr.splitlines()[-1].endswith(
        "are in data/demo/hht: python train.py -m experiment=demo model.num_layers=3,5"
    ), result.stderr[-800:]


def test_the_error_line_lands_in_the_run_log_file(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "model.num_layers=0", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    (log,) = run_dir.glob("*.log")
    assert "error: config model.num_layers=0 is not an integer >= 1" in log.read_text()
