"""Classic myoelectric features on synthetic signals with known answers."""

import numpy as np
import pytest

from semg_hht.classic import features as F
from semg_hht.classic.recordings import FeatureSet, manifest_rows
from semg_hht.errors import SemgError
from semg_hht.evaluation.classic import evaluate_group_folds
from semg_hht.hht.settings import ManifestColumns


def sine(amplitude=2.0, freq=50.0, fs=1000.0, seconds=2.0):
    t = np.arange(int(fs * seconds)) / fs
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_rms_of_a_sine_is_amplitude_over_sqrt2():
    assert F.rms(sine(3.0)) == pytest.approx(3.0 / np.sqrt(2), rel=1e-3)


def test_mav_of_a_sine_is_2a_over_pi_and_of_a_known_sequence():
    assert F.mav(sine(3.0, freq=10.0, fs=20000.0)) == pytest.approx(2 * 3.0 / np.pi, rel=1e-3)
    assert F.mav(np.array([1.0, -2.0, 3.0, -4.0])) == 2.5


def test_waveform_length_of_a_known_sequence():
    assert F.wl(np.array([0.0, 1.0, -1.0, 2.0])) == 1 + 2 + 3


def test_zero_crossings_of_a_known_sequence_and_threshold():
    x = np.array([1.0, -1.0, 2.0, 0.1, -0.1, 3.0])
    assert F.zc(x) == 4
    assert F.zc(x, threshold=0.5) == 3  # only 0.1 -> -0.1 (a step of 0.2) is below the threshold
    assert F.zc(sine(freq=50.0, seconds=1.0)[1:]) == pytest.approx(100, abs=1)  # two per period


def test_slope_sign_changes_of_a_known_sequence():
    assert F.ssc(np.array([0.0, 2.0, 1.0, 3.0, 3.0, 4.0])) == 2  # the peak at 2 and the trough at 1


def test_variance_is_the_sample_variance():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert F.var(x) == pytest.approx(np.var(x, ddof=1))


@pytest.mark.parametrize("freq", [60.0, 125.0, 300.0])
def test_mean_and_median_frequency_of_a_pure_tone(freq):
    freqs, power = F.spectrum(sine(freq=freq), 1000.0)
    step = freqs[1] - freqs[0]
    assert F.median_frequency(freqs, power) == pytest.approx(freq, abs=step)
    assert F.mean_frequency(freqs, power) == pytest.approx(freq, abs=step)


def test_ar_coefficients_recover_a_known_process():
    rng = np.random.default_rng(0)
    a1, a2 = 0.6, -0.3
    x = np.zeros(20000)
    e = rng.normal(size=x.size)
    for t in range(2, x.size):
        x[t] = a1 * x[t - 1] + a2 * x[t - 2] + e[t]
    coef = F.ar_coefficients(x, 4)
    assert coef[:2] == pytest.approx([a1, a2], abs=0.03)
    assert np.abs(coef[2:]).max() < 0.03


def test_feature_vector_layout_matches_the_names():
    signal = np.stack([sine(1.0), sine(2.0, freq=120.0)], axis=1)
    row = F.feature_vector(signal, 1000.0, ar_order=3)
    names = F.feature_names(2, 3)
    assert row.shape == (len(names),) == (2 * 11,)
    assert row[names.index("ch1_rms")] == pytest.approx(2.0 / np.sqrt(2), rel=1e-3)
    assert row[names.index("ch0_mdf")] == pytest.approx(50.0, abs=4)


def test_a_training_side_of_one_class_is_a_one_line_error():
    """3 people, 2 of them men: the fold that validates on the woman trains on men only."""
    rng = np.random.default_rng(0)
    subjects = [s for s in ("a", "b", "c") for _ in range(4)]
    fs = FeatureSet(
        x=rng.random((12, 3)),
        y=np.array([0] * 8 + [1] * 4),
        class_names=["M", "F"],
        subjects=subjects,
        paths=[],
        names=["f0", "f1", "f2"],
    )
    with pytest.raises(SemgError, match=r"training side holds one class only \(M: 8 recordings of 2 subjects\)"):
        evaluate_group_folds(fs, "lda", n_folds=3, split_seed=0)


def test_classic_rows_come_from_make_hht_discovery_with_its_column_names(tmp_path):
    """inputs.manifest.* applies to the classic baseline as to make_hht: renamed columns, genders
    normalised as make_hht writes them, other columns kept for data.filter."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "recording,rate,person,movement,gender,device\na.csv,1000,p1,full,male,biopac\nb.csv,1000,p2,half,F,mio\n"
    )
    columns = ManifestColumns(path_col="recording", fs_col="rate", subject_col="person")
    rows, classes = manifest_rows(manifest, "movement", None, {"device": "biopac"}, columns=columns)
    assert classes == ["full"] and len(rows) == 1
    assert rows[0]["path"] == str((tmp_path / "a.csv").resolve()) and rows[0]["fs_hz"] == "1000"
    assert (rows[0]["subject"], rows[0]["gender"]) == ("p1", "M")
    with pytest.raises(SemgError, match="no 'path' column .*inputs.manifest.path_col"):  # default names
        manifest_rows(manifest, "movement", None, {})
