"""The vectorised Hilbert spectrum equals the seed's per-sample loop exactly, for the same IMFs."""

import numpy as np
import pytest
from PyEMD import EMD

from reference.seed_hht import compute_hht_matrix
from semg_hht.errors import SemgError
from semg_hht.hht.settings import EMDSettings, SpectrumSettings
from semg_hht.hht.transform import (
    check_scale,
    hht_matrix,
    hilbert_spectrum,
    hilbert_spectrum_and_peak,
    make_decomposer,
    normalise_scale,
)
from tests.helpers import emg_like


class FixedIMFs:
    """Stand-in for PyEMD.EMD that returns given IMFs, to feed the seed function chosen IMFs."""

    imfs = None

    def __call__(self, signal, max_imf=-1):
        return self.imfs


# -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "fs", "size"), [(600, 1000, 256), (777, 500.0, 256), (400, 2000, 64)])
def test_full_path_equals_seed_exactly(n, fs, size):
    x = emg_like(n, fs, seed=n)
    ours, n_imfs, _ = hht_matrix(x, fs, make_decomposer(EMDSettings()), SpectrumSettings(size=size))
    seed = compute_hht_matrix(x, fs, matrix_size=size)
    assert ours.dtype == np.float32 and ours.shape == (size, size)
    assert n_imfs >= 5
    assert np.array_equal(ours, seed)


def test_same_imfs_same_matrix_including_negative_frequencies(monkeypatch):
    """Hand-made IMFs with a chirp running backwards (negative inst. frequency) and a residue."""
    fs, n = 1000, 500
    t = np.arange(n) / fs
    imfs = np.stack(
        [
            np.sin(2 * np.pi * (200 * t - 150 * t**2)),  # frequency falls through zero
            0.5 * np.sin(2 * np.pi * 37 * t),
            0.1 + 0.01 * t,  # residue-like trend
        ]
    )
    import PyEMD

    monkeypatch.setattr(PyEMD, "EMD", FixedIMFs)
    FixedIMFs.imfs = imfs
    seed = compute_hht_matrix(np.zeros(n), fs)
    assert np.array_equal(hilbert_spectrum(imfs, fs), seed)


def test_energy_weighting_and_band_drop_out_of_range_samples():
    fs, n = 1000, 1000
    t = np.arange(n) / fs
    imfs = np.stack([np.sin(2 * np.pi * 100 * t), 0.5 * np.sin(2 * np.pi * 300 * t)])
    amp = hilbert_spectrum(imfs, fs, size=64)
    energy = hilbert_spectrum(imfs, fs, size=64, weighting="energy")
    # rows holding the 300 Hz tone: relative weight 0.5 (amplitude) vs 0.25 (energy)
    row100, row300 = int(100 / 500 * 63), int(300 / 500 * 63)
    assert amp[row300, 10:50].mean() / amp[row100, 10:50].mean() == pytest.approx(0.5, rel=0.05)
    assert energy[row300, 10:50].mean() / energy[row100, 10:50].mean() == pytest.approx(0.25, rel=0.05)
    band = hilbert_spectrum(imfs, fs, size=64, freq_range=(50.0, 200.0))
    inside = int((100 - 50) / 150 * 63)
    profile = band.sum(axis=1)
    assert abs(int(profile.argmax()) - inside) <= 1  # the 100 Hz tone, rescaled onto 50..200 Hz
    assert profile[inside + 3 :].sum() < 0.01 * profile.sum()  # 300 Hz is dropped, not piled on the top row


def test_normalisation_makes_features_unit_free():
    """EMD stops on absolute thresholds: volts give fewer IMFs; normalising first gives the same matrix."""
    fs = 1000
    x = emg_like(1500, fs, seed=3)
    volts = x * 2.0**-10  # ~1 mV, power-of-two scale so normalisation is exact
    assert EMD()(volts, max_imf=10).shape[0] < EMD()(x, max_imf=10).shape[0]
    dec, spec = make_decomposer(EMDSettings()), SpectrumSettings()
    for method in ("zscore", "rms", "maxabs"):
        off_v, sc_v = normalise_scale(volts, method)
        off_x, sc_x = normalise_scale(x, method)
        a, _, _ = hht_matrix((volts - off_v) / sc_v, fs, dec, spec)
        b, _, _ = hht_matrix((x - off_x) / sc_x, fs, dec, spec)
        assert np.array_equal(a, b), method


def test_constant_or_empty_signals_are_clear_errors():
    with pytest.raises(SemgError, match="constant"):
        check_scale(*normalise_scale(np.zeros(100), "zscore"), "channel CH1", "rec.csv")
    with pytest.raises(SemgError, match="constant"):
        check_scale(*normalise_scale(np.full(100, 3.0), "zscore"), "channel CH1", "rec.csv")
    with pytest.raises(SemgError, match="no IMFs"):
        hht_matrix(np.zeros(300), 1000, make_decomposer(EMDSettings()), SpectrumSettings(), path="rec.csv")


@pytest.mark.parametrize("method", ["eemd", "ceemdan"])
def test_ensemble_methods_are_seeded(method):
    es = EMDSettings(method=method, trials=3, max_imf=4)
    x = emg_like(300, 1000, seed=1)
    spec = SpectrumSettings(size=32)
    a, _, _ = hht_matrix(x, 1000, make_decomposer(es), spec, seed=5)
    b, _, _ = hht_matrix(x, 1000, make_decomposer(es), spec, seed=5)
    c, _, _ = hht_matrix(x, 1000, make_decomposer(es), spec, seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_log_frequency_axis_spaces_rows_by_ratio_and_drops_the_rest():
    fs, n = 1000, 2000
    t = np.arange(n) / fs
    tones = (40.0, 80.0, 160.0)  # octaves: evenly spaced rows on a log axis, not on a linear one
    imfs = np.stack([np.sin(2 * np.pi * f * t) for f in (*tones, 5.0)])  # 5 Hz lies outside the range
    log_axis = hilbert_spectrum(imfs, fs, size=64, freq_range=(20.0, 320.0), freq_scale="log")
    profile = log_axis[:, 20:-20].sum(axis=1)
    expected = [np.log(f / 20.0) / np.log(320.0 / 20.0) * 63 for f in tones]
    peaks = sorted(np.argsort(profile)[-3:])
    assert all(abs(p - e) <= 1 for p, e in zip(peaks, expected, strict=True))
    assert abs((peaks[1] - peaks[0]) - (peaks[2] - peaks[1])) <= 1  # one octave, the same number of rows
    assert profile[: int(expected[0]) - 2].sum() < 0.01 * profile.sum()  # 5 Hz dropped, not piled on row 0
    same = hilbert_spectrum(imfs, fs, size=64, freq_range=(20.0, 320.0))
    assert not np.array_equal(same, log_axis)  # linear stays the default
    with pytest.raises(ValueError, match="above 0 Hz"):
        hilbert_spectrum(imfs, fs, size=64, freq_range=(0.0, 320.0), freq_scale="log")


def test_log_axis_settings_need_a_lower_edge_above_zero():
    from semg_hht.hht.settings import settings_from_cfg
    from tests.helpers import hht_cfg

    def settings(*overrides):
        return settings_from_cfg(hht_cfg("input=a", "output=b", *overrides))

    with pytest.raises(SemgError, match="freq_scale=log needs a frequency range starting above 0 Hz"):
        settings("spectrum.freq_scale=log")
    with pytest.raises(SemgError, match="freq_scale=log needs"):
        settings("spectrum.freq_scale=log", "spectrum.freq_range=[0,450]")
    band_log = settings("spectrum.freq_range=band", "spectrum.freq_scale=log")
    band = settings("spectrum.freq_range=band")
    assert band_log.signature() != band.signature()  # a rerun does not mix the two axes in one folder
    # matrices converted before freq_scale existed keep their signature, so reruns still reuse them
    assert band.signature() == settings("spectrum.freq_range=band", "spectrum.freq_scale=linear").signature()
    with pytest.raises(SemgError, match="freq_scale"):
        settings("spectrum.freq_scale=mel")


def _tones(fs: float, n: int, freqs) -> np.ndarray:
    """IMFs that are whole numbers of cycles of pure tones: their instantaneous frequencies are exact."""
    t = np.arange(n) / fs
    return np.stack([np.sin(2 * np.pi * f * t) for f in freqs])


@pytest.mark.parametrize("freq_scale", ["linear", "log"])
def test_drop_leaves_the_edge_rows_free_of_out_of_range_frequencies_and_clip_piles_them_there(freq_scale):
    fs, n, size = 1000, 1000, 64
    imfs = _tones(fs, n, (5.0, 100.0, 400.0))  # 5 Hz below the axis, 400 Hz above it
    axis = {"freq_range": (20.0, 320.0), "freq_scale": freq_scale}
    drop, drop_peak = hilbert_spectrum_and_peak(imfs, fs, size, **axis, out_of_range="drop")
    clip, clip_peak = hilbert_spectrum_and_peak(imfs, fs, size, **axis, out_of_range="clip")
    assert not drop[0].any() and not drop[size - 1].any()  # only the 100 Hz tone, in its own row
    assert np.count_nonzero(drop.sum(axis=1)) == 1
    assert clip[0].min() > 0 and clip[size - 1].min() > 0  # every time bin of both edge rows holds a tone
    inner = slice(1, size - 1)
    assert np.allclose(clip[inner] * clip_peak, drop[inner] * drop_peak)  # the rows between are the same
    # null (the default) is what a [lo, hi] range always did: drop, to the bit
    assert np.array_equal(hilbert_spectrum(imfs, fs, size, **axis), drop)


def test_on_the_full_axis_drop_removes_only_what_clip_moved_into_the_edge_rows(monkeypatch):
    fs = 1000
    imfs = EMD()(emg_like(3000, fs, seed=7), max_imf=10)  # noisy IMFs: some instantaneous frequencies < 0
    clip, clip_peak = hilbert_spectrum_and_peak(imfs, fs, 64, out_of_range="clip")
    drop, drop_peak = hilbert_spectrum_and_peak(imfs, fs, 64, out_of_range="drop")
    moved = clip * clip_peak - drop * drop_peak
    assert moved[1:-1].max() < 1e-9 * clip_peak and moved.min() > -1e-9 * clip_peak
    assert moved[0].sum() > 0  # negative frequencies were clipped into row 0
    # clip is the seed's binning, and what null means on the full axis: today's matrices, bit for bit
    import PyEMD

    monkeypatch.setattr(PyEMD, "EMD", FixedIMFs)
    FixedIMFs.imfs = imfs
    seed = compute_hht_matrix(np.zeros(imfs.shape[1]), fs, matrix_size=64)
    assert np.array_equal(hilbert_spectrum(imfs, fs, 64), clip)
    assert np.array_equal(seed, clip)


def test_out_of_range_is_in_the_signature_where_it_changes_the_matrices():
    from semg_hht.hht.settings import settings_from_cfg
    from tests.helpers import hht_cfg

    def signature(*overrides):
        return settings_from_cfg(hht_cfg("input=a", "output=b", *overrides)).signature()

    full, band = signature(), signature("spectrum.freq_range=band")
    # null is clip on the full axis and drop on a range: the same matrices, the signature of older outputs
    assert signature("spectrum.out_of_range=clip") == full
    assert signature("spectrum.freq_range=band", "spectrum.out_of_range=drop") == band
    # the other choice makes other matrices: a rerun into the folder is refused
    assert signature("spectrum.out_of_range=drop") != full
    assert signature("spectrum.freq_range=band", "spectrum.out_of_range=clip") != band
    with pytest.raises(SemgError, match=r"spectrum\.out_of_range.*not one of clip, drop"):
        signature("spectrum.out_of_range=keep")
