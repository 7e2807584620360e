"""Shared helpers for the make_hht tests (not a test module)."""

from __future__ import annotations

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
    x = sosfiltfilt(
        butter(4, [20, min(450, 0.45 * fs)], btype="band", fs=fs, output="sos"), rng.standard_normal(n)
    )
    t = np.arange(n) / n
    x = x * (0.1 + np.exp(-(((t - 0.5) / 0.2) ** 2)))
    return (x - x.mean()) / x.std()
