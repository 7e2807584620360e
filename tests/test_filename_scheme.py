"""One file-name scheme for both sides (conf/filename_scheme/): an override reaches make_hht's folder labels
and output names and the training side's parser alike, and never the settings signature, so the matrices
already on disk stay valid."""

from pathlib import Path

import numpy as np

from semg_hht.training.train import build_datamodule
from tests.helpers import compose_cfg, read_back, recordings, run_make_hht

SYNONYM = "movement_synonyms.partial=half"  # the one override, under each side's node
# Main's signature of run_make_hht's settings, from before the scheme was a setting: what its outputs hold.
SIGNATURE = "9f2139c67e92bee5"


def converted(folder: Path) -> dict[str, str]:
    """Output name -> the settings signature stored in it."""
    out = {}
    for path in sorted(folder.glob("*.npz")):
        with np.load(path) as z:
            out[path.name] = str(z["settings_signature"])
    return out


def test_one_synonym_reaches_make_hht_and_training_and_not_the_signature(tmp_path):
    raw = recordings(tmp_path / "raw", ["S1_F_partial_r01.csv", "S1_M_full_r01.csv"])
    run_make_hht(raw, tmp_path / "default")
    run_make_hht(raw, tmp_path / "custom", f"+filename_scheme.{SYNONYM}")
    default, custom = converted(tmp_path / "default"), converted(tmp_path / "custom")
    assert list(default) == ["CH1_full_M_002.npz", "Test_CH1_001.npz"]  # 'partial' is no movement by default
    assert list(custom) == ["CH1_full_M_002.npz", "CH1_half_F_001.npz"]
    assert set(default.values()) == set(custom.values()) == {SIGNATURE}

    cfg = compose_cfg([f"+data.filename_scheme.{SYNONYM}", f"paths.output_dir={tmp_path / 'run'}"])
    scheme = build_datamodule(cfg).scheme  # the parser training reads every file name with
    assert scheme.labels(Path("CH1_half_F_001.npz")) == {"movement": "half", "gender": "F"}
    assert scheme.labels(Path("BICEPS_partial_M_003.npz")) == {"movement": "half", "gender": "M"}
    assert read_back("BICEPS_partial_M_003.npz") is None  # the default scheme cannot read that name
