"""Amplitude normalisation, EMD (EMD-signal), and the vectorised Hilbert spectrum.

`hilbert_spectrum` is the seed's `compute_hht_matrix` binning with the per-sample Python loop
replaced by one `hilbert(imfs, axis=-1)` and one `np.bincount` over flat (frequency, time) indices.
The float operations and the order in which values are added to each bin are the seed's, so for
the same IMFs the result is identical (tests compare with `np.array_equal`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from PyEMD import CEEMDAN, EEMD, EMD  # at import time, so the worker forkserver preloads it (~1 s)
from scipy.signal import hilbert

from semg_hht.errors import SemgError
from semg_hht.hht.settings import EMDSettings, SpectrumSettings


def normalise_scale(x: np.ndarray, method: str) -> tuple[float, float]:
    """(offset, scale) so that (x - offset) / scale has a fixed amplitude; 1-D x."""
    if method == "zscore":
        return float(np.mean(x)), float(np.std(x))
    if method == "rms":
        return 0.0, float(np.sqrt(np.mean(np.square(x))))
    if method == "maxabs":
        return 0.0, float(np.max(np.abs(x)))
    if method == "none":
        return 0.0, 1.0
    raise ValueError(f"unknown normalisation {method!r}")


def check_scale(
    offset: float, scale: float, what: str, path: str | Path | None, samples: np.ndarray | None = None
) -> None:
    """The normalisation's (offset, scale) of ``samples`` are usable, else one line on what is wrong with them."""
    if not (np.isfinite(scale) and np.isfinite(offset)):  # e.g. 1e300: its square overflows
        raise SemgError(
            f"{what} has samples too large to compute with (its mean or spread overflows)",
            path=path,
            fix="check the recording's units and scaling; sEMG is microvolts to millivolts",
        )
    spread = float(np.ptp(samples)) if samples is not None and samples.size else 0.0
    if not scale > 0 and spread > 0:  # e.g. 1e-300: squares below 1e-308 underflow, the spread reads 0
        raise SemgError(
            f"{what} has samples too small to compute with (largest |value| {np.max(np.abs(samples)):.1e}: "
            "their spread underflows to zero), not a constant signal",
            path=path,
            fix="check the recording's units and scaling: sEMG is about 1e-6 to 1e-2 V; save it in volts, "
            "millivolts or microvolts",
        )
    if not scale > 0:
        raise SemgError(
            f"{what} is constant (all samples equal, e.g. all zero): nothing to decompose",
            path=path,
            fix="check the electrode/cable, or drop this channel with reader.channels",
        )


def emd_options(es: EMDSettings) -> dict[str, Any]:
    """The EMD options set (not null: PyEMD's default otherwise), as EMD(**options) takes them."""
    return {f.name: value for f in fields(es.options) if (value := getattr(es.options, f.name)) is not None}


def make_decomposer(es: EMDSettings):
    """A callable x -> IMFs (+ residue, as EMD-signal returns them) for the configured method."""
    options = emd_options(es)
    if es.method == "emd":
        emd = EMD(**options)
        return lambda x, seed: emd(x, max_imf=es.max_imf)
    if es.method in ("eemd", "ceemdan"):  # noise-assisted: seeded per recording for determinism
        if es.method == "eemd":
            ensemble = EEMD(trials=es.trials, noise_width=es.noise_width, ext_EMD=EMD(**options), parallel=False)
        else:
            ensemble = CEEMDAN(trials=es.trials, epsilon=es.epsilon, ext_EMD=EMD(**options), parallel=False)

        def run_ensemble(x, seed):
            ensemble.noise_seed(seed)
            return ensemble(x, max_imf=es.max_imf)

        return run_ensemble
    raise ValueError(f"unknown EMD method {es.method!r}")


def hilbert_spectrum(imfs: np.ndarray, fs: float, size: int = 256, **axis) -> np.ndarray:
    """(size, size) frequency x time matrix of instantaneous amplitude, max-normalised, float32.

    ``axis``: freq_range, weighting, freq_scale and out_of_range of `hilbert_spectrum_and_peak`.
    freq_range=None is the seed's full axis 0..fs/2; a [lo, hi] range maps lo..hi onto the axis;
    freq_scale="log" spaces the rows evenly in log frequency over that range (lo > 0). Samples whose
    instantaneous frequency lies off the axis are clipped into its first/last row (out_of_range="clip")
    or left out (="drop"); None is what each axis always did: clip on the full axis (the seed), drop
    outside a [lo, hi] range.
    """
    return hilbert_spectrum_and_peak(imfs, fs, size, **axis)[0]


def hilbert_spectrum_and_peak(
    imfs: np.ndarray,
    fs: float,
    size: int = 256,
    freq_range: tuple[float, float] | None = None,
    weighting: str = "amplitude",
    freq_scale: str = "linear",
    out_of_range: str | None = None,
) -> tuple[np.ndarray, float]:
    """`hilbert_spectrum` and the peak it was divided by (the bin total of the largest bin, in the
    EMD input's units): the scale that the normalisation drops and `data.scaling=recording` restores."""
    imfs = np.atleast_2d(np.asarray(imfs, dtype=np.float64))
    n_samples = imfs.shape[-1]
    analytic = hilbert(imfs, axis=-1)
    amplitude = np.abs(analytic)
    phase = np.unwrap(np.angle(analytic), axis=-1)
    inst_freq = np.diff(phase, axis=-1) / (2 * np.pi) * fs
    inst_freq = np.concatenate([inst_freq, inst_freq[:, -1:]], axis=-1)

    t = np.arange(n_samples) / fs
    t_idx = np.clip((t / t[-1] * (size - 1)).astype(np.intp), 0, size - 1)
    if out_of_range not in (None, "clip", "drop"):
        raise ValueError(f"out_of_range is clip, drop or None, not {out_of_range!r}")
    if freq_range is None:
        keep = (inst_freq >= 0) & (inst_freq <= fs / 2) if out_of_range == "drop" else None
        inst_freq = np.clip(inst_freq, 0, fs / 2)
        f_idx = np.clip((inst_freq / (fs / 2) * (size - 1)).astype(np.intp), 0, size - 1)
    else:
        lo, hi = freq_range
        if freq_scale == "log" and not lo > 0:
            raise ValueError(f"a log frequency axis needs a range starting above 0 Hz, not {freq_range}")
        keep = None if out_of_range == "clip" else (inst_freq >= lo) & (inst_freq <= hi)
        axis = np.log if freq_scale == "log" else (lambda f: f)
        position = (axis(np.clip(inst_freq, lo, hi)) - axis(lo)) / (axis(hi) - axis(lo))
        f_idx = np.clip((position * (size - 1)).astype(np.intp), 0, size - 1)

    weights = amplitude if weighting == "amplitude" else amplitude * amplitude
    flat = f_idx * size + t_idx  # IMF-major, then time: the seed's order of additions into each bin
    if keep is not None:
        flat, weights = flat[keep], weights[keep]
    matrix = np.bincount(flat.ravel(), weights=weights.ravel(), minlength=size * size).reshape(size, size)
    peak = float(matrix.max())
    if peak > 0:
        matrix = matrix / peak
    return matrix.astype(np.float32), peak


def hht_matrix(
    x: np.ndarray,
    fs: float,
    decompose,
    spec: SpectrumSettings,
    seed: int = 0,
    path: str | Path | None = None,
    what: str = "signal",
) -> tuple[np.ndarray, int, float]:
    """EMD + Hilbert spectrum of one normalised 1-D signal -> (matrix, number of IMF rows, its peak)."""
    imfs = np.atleast_2d(decompose(x, seed))
    if imfs.shape[0] == 0 or not np.any(imfs):
        raise SemgError(f"{what}: EMD found no IMFs", path=path, fix="check the signal is not flat or tiny")
    axis = (spec.freq_range, spec.weighting, spec.freq_scale, spec.out_of_range)
    matrix, peak = hilbert_spectrum_and_peak(imfs, fs, spec.size, *axis)
    if not matrix.any():
        raise SemgError(
            f"{what}: empty Hilbert spectrum (no energy inside spectrum.freq_range)",
            path=path,
            fix="widen spectrum.freq_range or check the signal",
        )
    return matrix, int(imfs.shape[0]), peak
