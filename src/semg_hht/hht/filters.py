"""Conditioning of a whole recording (samples, channels): resample, mains notch, zero-phase band-pass."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sps

from semg_hht.errors import SemgError
from semg_hht.hht.settings import FilterSettings


@dataclass
class Conditioned:
    signal: np.ndarray  # (samples, channels)
    fs: float
    band: tuple[float, float] | None  # band-pass actually applied (upper edge clipped below Nyquist)
    notches: tuple[float, ...]  # notch frequencies actually applied


def condition(x: np.ndarray, fs: float, fset: FilterSettings, path: str | Path | None = None) -> Conditioned:
    x, fs = resample(x, fs, fset.resample_hz)
    x, notches = notch(x, fs, fset.notch_hz, fset.notch_harmonics, fset.notch_q, path)
    band = None
    if fset.bandpass is not None:
        band = clip_band(fset.bandpass, fs, fset.max_nyquist_fraction, path)
        x = bandpass(x, fs, band, fset.order, path)
    return Conditioned(signal=x, fs=fs, band=band, notches=notches)


def resample(x: np.ndarray, fs: float, target: float | None) -> tuple[np.ndarray, float]:
    """Polyphase resampling (anti-aliased) by the nearest ratio with a denominator <= 1000."""
    if target is None or np.isclose(target, fs):
        return x, fs
    ratio = Fraction(target / fs).limit_denominator(1000)
    y = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=0)
    return y, fs * ratio.numerator / ratio.denominator


def clip_band(
    band: tuple[float, float], fs: float, max_fraction: float, path: str | Path | None = None
) -> tuple[float, float]:
    """Clip the upper edge below Nyquist; refuse a band that no longer exists at this fs."""
    low, high = band
    high = min(high, max_fraction * fs / 2)
    if low >= high:
        raise SemgError(
            f"fs={fs:g} Hz is too low for the {band[0]:g}-{band[1]:g} Hz band-pass (Nyquist {fs / 2:g} Hz)",
            path=path,
            fix="check fs, or set filter.bandpass to a band below fs/2 (or null)",
        )
    return (low, high)


def bandpass(
    x: np.ndarray, fs: float, band: tuple[float, float], order: int, path: str | Path | None = None
) -> np.ndarray:
    low, high = band
    if low > 0:
        sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    else:
        sos = sps.butter(order, high, btype="lowpass", fs=fs, output="sos")
    return _zero_phase(lambda: sps.sosfiltfilt(sos, x, axis=0), x, path)


def notch(
    x: np.ndarray, fs: float, f0: float | None, harmonics: int, q: float, path: str | Path | None = None
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Zero-phase IIR notch at f0 and its harmonics below Nyquist."""
    if f0 is None:
        return x, ()
    if f0 >= 0.99 * fs / 2:  # harmonics above Nyquist are dropped; the fundamental is what was asked for
        raise SemgError(
            f"filter.notch_hz={f0:g} is at or above Nyquist ({fs / 2:g} Hz at fs={fs:g} Hz): no notch can be applied",
            path=path,
            fix="set filter.notch_hz to the mains frequency (50 or 60) or null",
        )
    done = []
    for k in range(1, harmonics + 1):
        f = f0 * k
        if f >= 0.99 * fs / 2:
            break
        b, a = sps.iirnotch(f, q, fs=fs)
        x = _zero_phase(lambda b=b, a=a, x=x: sps.filtfilt(b, a, x, axis=0), x, path)
        done.append(f)
    return x, tuple(done)


def _zero_phase(run, x: np.ndarray, path: str | Path | None) -> np.ndarray:
    try:
        return run()
    except ValueError as err:
        if "padlen" in str(err) or "length" in str(err):
            raise SemgError(
                f"recording too short to filter ({x.shape[0]} samples)",
                path=path,
                fix="use longer recordings or turn the filters off (filter.bandpass=null)",
            ) from None
        raise
