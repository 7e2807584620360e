"""Synthetic raw sEMG: seeded, the documented class/subject/fatigue effects, and separable after HHT."""

import csv

import numpy as np
import pytest
from scipy.signal import welch

from semg_hht.errors import SemgError
from semg_hht.hht.pipeline import make_hht
from semg_hht.synth.raw import SynthConfig, generate, main, make_subjects, recording
from tests.helpers import hht_cfg

CFG = SynthConfig(subjects=4, reps=4, duration_s=2.0, fs=1000.0, channels=1, seed=11)


def median_freq(x, fs):
    f, p = welch(x, fs=fs, nperseg=256)
    c = np.cumsum(p)
    return f[np.searchsorted(c, c[-1] / 2)]


def active_fraction(x, fs):
    """Share of time the 50 ms RMS envelope is above 30 % of its peak."""
    k = int(0.05 * fs)
    rms = np.sqrt(np.convolve(x**2, np.ones(k) / k, mode="same"))
    return float(np.mean(rms > 0.3 * rms.max()))


def test_seeded_and_stable_per_recording():
    subj = make_subjects(CFG)
    a, row_a = recording(CFG, subj[1], 1, "half", 2)
    b, row_b = recording(CFG, subj[1], 1, "half", 2)
    assert np.array_equal(a, b) and row_a == row_b
    more = SynthConfig(**{**CFG.__dict__, "subjects": 6})  # adding subjects leaves the others unchanged
    assert np.array_equal(recording(more, make_subjects(more)[1], 1, "half", 2)[0], a)
    other = SynthConfig(**{**CFG.__dict__, "seed": 12})
    assert not np.array_equal(recording(other, make_subjects(other)[1], 1, "half", 2)[0], a)


def test_class_subject_gender_and_fatigue_effects():
    subjects = make_subjects(CFG)
    frac = {c: [] for c in ("full", "half")}
    peak = {c: [] for c in ("full", "half")}
    mf_by_gender = {"M": [], "F": []}
    fatigue_slopes = []
    for i, s in enumerate(subjects):
        for c in ("full", "half"):
            mfs = []
            for rep in range(CFG.reps):
                x, _ = recording(CFG, s, i, c, rep)
                x = x[:, 0] / s.gain  # undo the subject gain to compare shapes
                frac[c].append(active_fraction(x, CFG.fs))
                peak[c].append(np.percentile(np.abs(x), 99))
                mfs.append(median_freq(x, CFG.fs))
                assert 1e-4 < np.std(x) < 1e-2  # volts, about 1 mV
            mf_by_gender[s.gender] += mfs
            fatigue_slopes.append(np.polyfit(np.arange(CFG.reps), mfs, 1)[0])
    assert min(frac["full"]) > max(frac["half"])  # full: long bursts; half: short
    assert np.median(peak["half"]) < 0.6 * np.median(peak["full"])  # and weaker
    assert np.mean(mf_by_gender["M"]) < 0.9 * np.mean(mf_by_gender["F"])
    assert np.mean(fatigue_slopes) < 0 and np.mean(np.array(fatigue_slopes) < 0) >= 0.75


def test_invalid_is_irregular_or_truncated():
    subjects = make_subjects(CFG)
    kinds = set()
    for rep in range(CFG.reps * 2):
        x, row = recording(CFG, subjects[0], 0, "invalid", rep)
        if row["duration_s"] < CFG.duration_s:
            kinds.add("truncated")
            k = int(0.05 * CFG.fs)
            rms = np.sqrt(np.convolve(x[:, 0] ** 2, np.ones(k) / k, mode="valid"))
            assert rms[-1] > 0.5 * rms.max()  # still contracting when the recording stops
        else:
            kinds.add("irregular")
            assert active_fraction(x[:, 0], CFG.fs) < 0.5
    assert kinds == {"truncated", "irregular"}


def test_writes_recordings_and_manifest_and_refuses_overwrite(tmp_path):
    main(["--out", str(tmp_path), "--subjects", "2", "--reps", "1", "--duration", "1", "--fs", "500"])
    with open(tmp_path / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["movement"] for r in rows} == {"full", "half", "invalid"}
    assert {r["gender"] for r in rows} == {"M", "F"} and {r["subject"] for r in rows} == {"S01", "S02"}
    first = (tmp_path / rows[0]["path"]).read_text().splitlines()
    assert first[0] == "BICEPS,BRACHIORADIALIS" and len(first) == 501
    with pytest.raises(SemgError, match="--overwrite"):
        generate(tmp_path, SynthConfig(subjects=2, reps=1, duration_s=1, fs=500))
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--subjects", "2"])


def test_classes_are_separable_after_hht(tmp_path):
    """Nearest class centroid on three HHT time-profile features, leave-one-subject-out."""
    cfg = SynthConfig(subjects=4, reps=3, duration_s=2.0, fs=500.0, channels=1, seed=5)
    generate(tmp_path / "raw", cfg)
    make_hht(hht_cfg(f"input={tmp_path / 'raw' / 'manifest.csv'}", f"output={tmp_path / 'hht'}", "spectrum.size=64"))
    with open(tmp_path / "hht" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))

    def features(r):
        """Active share of the time axis, activity at the very end (truncation), number of onsets."""
        m = np.load(tmp_path / "hht" / r["file"])["hht"]
        p = np.convolve(m.sum(axis=0), np.ones(5) / 5, mode="same")
        active = p > 0.5 * p.max()
        return [active.mean(), p[-4:].mean() / p.max(), np.sum(np.diff(active.astype(int)) == 1)]

    F = np.array([features(r) for r in rows])
    F = (F - F.mean(axis=0)) / F.std(axis=0)
    y = np.array([r["movement"] for r in rows])
    subj = np.array([r["subject"] for r in rows])
    classes = sorted(set(y))
    correct = []
    for held in sorted(set(subj)):
        test = subj == held
        centroids = np.array([F[~test & (y == c)].mean(axis=0) for c in classes])
        pred = np.array(classes)[np.argmin(((F[test, None, :] - centroids) ** 2).sum(-1), axis=1)]
        correct += list(pred == y[test])
    assert np.mean(correct) >= 0.8, np.mean(correct)  # 0.92 when written; chance is 0.33
