"""The standard myoelectric time- and frequency-domain features, per channel (as in LibEMG).

Every function takes one channel (1-D array); ``feature_vector`` stacks them for every channel of a
(samples, channels) recording.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps
from scipy.linalg import solve_toeplitz

BASE = ("mav", "rms", "wl", "zc", "ssc", "var", "mnf", "mdf")


def mav(x: np.ndarray) -> float:
    """Mean absolute value."""
    return float(np.mean(np.abs(x)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def wl(x: np.ndarray) -> float:
    """Waveform length: total absolute change between samples."""
    return float(np.sum(np.abs(np.diff(x))))


def zc(x: np.ndarray, threshold: float = 0.0) -> int:
    """Zero crossings: sign changes whose step is at least ``threshold``."""
    a, b = x[:-1], x[1:]
    return int(np.sum((a * b < 0) & (np.abs(a - b) >= threshold)))


def ssc(x: np.ndarray, threshold: float = 0.0) -> int:
    """Slope sign changes: samples that are a local peak or trough by more than ``threshold``."""
    mid, prev, nxt = x[1:-1], x[:-2], x[2:]
    return int(np.sum((mid - prev) * (mid - nxt) > threshold))


def var(x: np.ndarray) -> float:
    return float(np.var(x, ddof=1))


def spectrum(x: np.ndarray, fs: float, nperseg: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density."""
    return sps.welch(x, fs=fs, nperseg=min(nperseg, len(x)))


def mean_frequency(freqs: np.ndarray, power: np.ndarray) -> float:
    return float(np.sum(freqs * power) / max(np.sum(power), np.finfo(float).tiny))


def median_frequency(freqs: np.ndarray, power: np.ndarray) -> float:
    """The frequency that splits the spectrum's power in half."""
    cumulative = np.cumsum(power)
    return float(freqs[np.searchsorted(cumulative, cumulative[-1] / 2)])


def ar_coefficients(x: np.ndarray, order: int) -> np.ndarray:
    """Autoregressive coefficients a_1..a_order (x_t ~ sum a_k x_{t-k}) by Yule-Walker."""
    if order == 0:
        return np.empty(0)
    x = x - np.mean(x)
    r = np.correlate(x, x, mode="full")[len(x) - 1 : len(x) + order] / len(x)
    if r[0] <= 0:
        return np.zeros(order)
    return solve_toeplitz(r[:order], r[1 : order + 1])


def feature_names(channels: int, ar_order: int) -> list[str]:
    per = [*BASE, *(f"ar{k}" for k in range(1, ar_order + 1))]
    return [f"ch{c}_{name}" for c in range(channels) for name in per]


def channel_features(
    x: np.ndarray, fs: float, ar_order: int = 4, threshold: float = 0.0, nperseg: int = 256
) -> np.ndarray:
    """One channel's features; ``threshold`` is ZC/SSC's noise threshold, ``nperseg`` the Welch
    segment length of the spectrum MNF/MDF read."""
    freqs, power = spectrum(x, fs, nperseg)
    base = [
        mav(x),
        rms(x),
        wl(x),
        zc(x, threshold),
        ssc(x, threshold),
        var(x),
        mean_frequency(freqs, power),
        median_frequency(freqs, power),
    ]
    return np.concatenate([base, ar_coefficients(x, ar_order)])


def feature_vector(
    signal: np.ndarray, fs: float, ar_order: int = 4, threshold: float = 0.0, nperseg: int = 256
) -> np.ndarray:
    """(samples, channels) -> one row: every channel's features, channel-major (see feature_names)."""
    return np.concatenate(
        [channel_features(signal[:, c], fs, ar_order, threshold, nperseg) for c in range(signal.shape[1])]
    )
