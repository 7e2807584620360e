"""Conditioning: zero-phase band-pass clipped below Nyquist, mains notch, resampling."""

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.hht.filters import condition
from semg_hht.hht.settings import FilterSettings


def tone(f, fs, n, phase=0.0):
    return np.sin(2 * np.pi * f * np.arange(n) / fs + phase)[:, None]


def test_band_is_clipped_below_nyquist_and_reported():
    out = condition(tone(100, 500, 2000), 500, FilterSettings())
    assert out.band == (20.0, 0.95 * 250)
    assert condition(tone(100, 2000, 2000), 2000, FilterSettings()).band == (20.0, 450.0)


def test_fs_too_low_for_band_is_an_error():
    with pytest.raises(SemgError, match=r"rec\.csv: fs=30 Hz is too low for the 20-450 Hz band"):
        condition(tone(5, 30, 300), 30, FilterSettings(), path="rec.csv")


def test_bandpass_is_zero_phase_and_removes_out_of_band():
    fs, n = 1000, 4000
    x = tone(80, fs, n) + tone(5, fs, n) + 0.5 * tone(480, fs, n)
    y = condition(x, fs, FilterSettings()).signal[500:-500, 0]
    ref = tone(80, fs, n)[500:-500, 0]
    assert np.corrcoef(y, ref)[0, 1] > 0.99  # in phase: no filter delay
    assert np.std(y - ref) < 0.05


def test_notch_removes_mains_and_harmonics():
    fs, n = 1000, 5000
    x = tone(60, fs, n) + tone(120, fs, n) + tone(90, fs, n)
    out = condition(x, fs, FilterSettings(bandpass=None, notch_hz=60, notch_harmonics=2))
    assert out.notches == (60.0, 120.0)
    spec = np.abs(np.fft.rfft(out.signal[1000:-1000, 0]))
    f = np.fft.rfftfreq(n - 2000, 1 / fs)
    peak = lambda hz: spec[np.argmin(np.abs(f - hz))]  # noqa: E731
    assert peak(60) < 0.01 * peak(90) and peak(120) < 0.01 * peak(90)


def test_a_notch_above_nyquist_is_refused_not_dropped():
    with pytest.raises(SemgError, match=r"rec\.csv: filter\.notch_hz=600 is at or above Nyquist \(500 Hz"):
        condition(tone(50, 1000, 2000), 1000, FilterSettings(bandpass=None, notch_hz=600), path="rec.csv")


def test_resample_changes_length_and_fs():
    out = condition(tone(50, 2000, 4000), 2000, FilterSettings(bandpass=None, resample_hz=1000))
    assert out.fs == 1000 and out.signal.shape == (2000, 1)


def test_too_short_to_filter_is_an_error():
    with pytest.raises(SemgError, match="too short to filter"):
        condition(tone(50, 1000, 20), 1000, FilterSettings(), path="rec.csv")
