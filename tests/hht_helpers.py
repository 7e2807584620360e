"""Shared helpers for the make_hht tests (not a test module)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def hht_cfg(*overrides: str):
    """conf/hht.yaml composed by Hydra with command-line style overrides (no progress bar)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("hht", overrides=["progress=false", "workers=1", *overrides])


def emg_like(n: int, fs: float, seed: int = 0) -> np.ndarray:
    """Unit-variance band-limited noise under a burst envelope (a quick stand-in for sEMG)."""
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(seed)
    x = sosfiltfilt(butter(4, [20, min(450, 0.45 * fs)], btype="band", fs=fs, output="sos"), rng.standard_normal(n))
    t = np.arange(n) / n
    x = x * (0.1 + np.exp(-(((t - 0.5) / 0.2) ** 2)))
    return (x - x.mean()) / x.std()


def parse_filename(filename):
    """The seed's label parser (seeds/001, load_data_from_directory), as the training side uses it."""
    basename = os.path.basename(filename)
    if basename.lower().startswith("test"):
        return None
    gender_match = re.search(r"[_-]([MF])[_-]", basename)
    if not gender_match:
        return None
    gender = gender_match.group(1)
    basename_lower = basename.lower()
    if "fatiguetest" in basename_lower or "full" in basename_lower:
        movement = "full"
    elif "half" in basename_lower:
        movement = "half"
    elif "invalid" in basename_lower or "wrong" in basename_lower:
        movement = "invalid"
    else:
        return None
    return {"gender": gender, "movement": movement}
