"""Seeded synthetic raw sEMG: the seed's movement classes, subject/gender effects, fatigue.

    python -m semg_hht.synth --out data/demo/raw --subjects 8 --reps 8

Each recording is one repetition, two channels (BICEPS, BRACHIORADIALIS) in volts at `fs`:
band-limited (20-450 Hz) motor-unit-like noise whose spectrum is a log-normal bump around a median
frequency, multiplied by a contraction envelope, plus a small noise floor and 50 Hz mains hum.

- full:    one long (60-75 % of the recording), strong burst with smooth on/off ramps
- half:    one short (22-35 %), weaker (~45 %) burst
- invalid: either 3-5 irregular short bursts of random strength, or a truncated recording
           (shorter, the burst still rising when the recording stops)
- subject: amplitude gain (log-normal) and median-frequency factor; gender: M larger amplitude and
           lower median frequency than F
- fatigue: within a set (the reps of one class), the median frequency drifts down by up to 12 %.

Writes `<out>/<subject>/<subject>_<G>_<class>_r<rep>.csv` (header = muscle names) and `<out>/manifest.csv`
(path, fs_hz, subject, gender, movement, repetition, fatigue, median_freq_hz, duration_s).
Every recording has its own random stream (seed, subject, class, rep): adding subjects or reps
leaves the others unchanged.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.errors import SemgError
from semg_hht.io import atomic_open, refuse_overwrite, write_csv

CLASSES = ("full", "half", "invalid")
MUSCLES = ("BICEPS", "BRACHIORADIALIS")
MANIFEST_COLUMNS = (
    "path",
    "fs_hz",
    "subject",
    "gender",
    "movement",
    "repetition",
    "fatigue",
    "median_freq_hz",
    "duration_s",
)


@dataclass(frozen=True)
class SynthConfig:
    subjects: int = 8
    reps: int = 8  # repetitions per class and subject (one fatigue set)
    duration_s: float = 3.0
    fs: float = 1000.0
    channels: int = 2
    seed: int = 0
    median_freq_hz: float = 95.0  # population median frequency (biceps-like)
    mains_hz: float = 50.0
    mains_amp: float = 0.02  # relative to a full contraction
    noise_floor: float = 0.03  # relative to a full contraction
    fatigue_drop: float = 0.12  # median frequency lost by the last rep of a set
    volts: float = 1e-3  # a full contraction is about 1 mV


@dataclass(frozen=True)
class Subject:
    name: str
    gender: str
    gain: float
    mf_factor: float


def make_subjects(cfg: SynthConfig) -> list[Subject]:
    out = []
    for i in range(cfg.subjects):
        rng = np.random.default_rng([cfg.seed, 7919, i])
        gender = "M" if i % 2 == 0 else "F"  # balanced
        gain = float(np.exp(rng.normal(0, 0.25))) * (1.3 if gender == "M" else 1.0)
        mf = float(rng.uniform(0.93, 1.07)) * (0.88 if gender == "M" else 1.12)
        out.append(Subject(name=f"S{i + 1:02d}", gender=gender, gain=gain, mf_factor=mf))
    return out


def band_noise(rng: np.random.Generator, n: int, fs: float, median_hz: float, sigma: float = 0.45) -> np.ndarray:
    """Unit-variance noise with a log-normal spectral bump at median_hz, band-limited to 20-450 Hz."""
    f = np.fft.rfftfreq(n, 1 / fs)
    with np.errstate(divide="ignore"):
        logf = np.log(np.maximum(f, 1e-9) / median_hz)
    shape = np.exp(-(logf**2) / (4 * sigma**2))  # amplitude; power is exp(-logf^2 / (2 sigma^2))
    shape[(f < 20) | (f > min(450.0, 0.95 * fs / 2))] = 0
    spec = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))) * shape
    x = np.fft.irfft(spec, n)
    return x / x.std()


def ramp_burst(t: np.ndarray, on: float, off: float, ramp: float, cut_end: bool = False) -> np.ndarray:
    """0..1 plateau between on and off with raised-cosine ramps (no ramp down if cut_end)."""
    env = np.zeros_like(t)
    up = (t >= on) & (t < on + ramp)
    env[up] = 0.5 - 0.5 * np.cos(np.pi * (t[up] - on) / ramp)
    env[(t >= on + ramp) & (t < off - (0 if cut_end else ramp))] = 1.0
    if not cut_end:
        down = (t >= off - ramp) & (t < off)
        env[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - (off - ramp)) / ramp)
    return env


def envelope(rng: np.random.Generator, movement: str, duration: float, fs: float) -> np.ndarray:
    """Contraction envelope relative to a full contraction; its length is the recording's."""
    if movement == "invalid" and rng.random() < 0.5:  # truncated: stops while still contracting
        duration *= rng.uniform(0.5, 0.7)
        t = np.arange(round(duration * fs)) / fs
        on = rng.uniform(0.35, 0.6) * duration
        return rng.uniform(0.7, 1.1) * ramp_burst(t, on, duration + 1, 0.25, cut_end=True)
    t = np.arange(round(duration * fs)) / fs
    if movement == "full":
        length = rng.uniform(0.60, 0.75) * duration
        on = rng.uniform(0.08, 0.95 * duration - length)
        return rng.uniform(0.85, 1.15) * ramp_burst(t, on, on + length, 0.15 * duration)
    if movement == "half":
        length = rng.uniform(0.22, 0.35) * duration
        on = rng.uniform(0.1, 0.9 * duration - length)
        return 0.45 * rng.uniform(0.85, 1.15) * ramp_burst(t, on, on + length, 0.08 * duration)
    env = np.zeros_like(t)  # invalid, irregular: several short jerky bursts
    for _ in range(rng.integers(3, 6)):
        length = rng.uniform(0.05, 0.12) * duration
        on = rng.uniform(0.02, 0.98 * duration - length)
        env = np.maximum(env, rng.uniform(0.3, 1.0) * ramp_burst(t, on, on + length, 0.02 * duration))
    return env


def recording(cfg: SynthConfig, subj: Subject, idx: int, movement: str, rep: int) -> tuple[np.ndarray, dict]:
    """(samples, channels) volts and its manifest row (without path)."""
    rng = np.random.default_rng([cfg.seed, idx, CLASSES.index(movement), rep])
    fatigue = rep / max(cfg.reps - 1, 1)
    mf = cfg.median_freq_hz * subj.mf_factor * (1 - cfg.fatigue_drop * fatigue) * rng.uniform(0.97, 1.03)
    env = envelope(rng, movement, cfg.duration_s, cfg.fs)
    n = len(env)
    t = np.arange(n) / cfg.fs
    chans = []
    for c in range(cfg.channels):
        lag = round(rng.uniform(0, 0.03) * cfg.fs)  # the second muscle follows slightly later
        e = np.roll(env, lag * c)
        if c:
            e[: lag * c] = 0
        carrier = band_noise(rng, n, cfg.fs, mf * (1.0 + 0.15 * c))
        floor = cfg.noise_floor * band_noise(rng, n, cfg.fs, 150.0)
        hum = cfg.mains_amp * np.sin(2 * np.pi * cfg.mains_hz * t + rng.uniform(0, 2 * np.pi))
        chans.append(cfg.volts * subj.gain * (0.6 if c else 1.0) * (e * carrier + floor + hum))
    row = {
        "fs_hz": f"{cfg.fs:g}",
        "subject": subj.name,
        "gender": subj.gender,
        "movement": movement,
        "repetition": rep + 1,
        "fatigue": round(fatigue, 3),
        "median_freq_hz": round(mf, 2),
        "duration_s": round(n / cfg.fs, 6),
    }
    return np.stack(chans, axis=1), row


def generate(out: str | Path, cfg: SynthConfig, overwrite: bool = False) -> Path:
    """Write all recordings and manifest.csv under `out`; returns the manifest path."""
    out = Path(out)
    manifest = out / "manifest.csv"
    refuse_overwrite(manifest, overwrite, key="--overwrite")
    if cfg.channels < 1 or cfg.channels > len(MUSCLES):
        raise SemgError(f"--channels must be 1..{len(MUSCLES)}, got {cfg.channels}")
    if cfg.duration_s * cfg.fs < 256:
        raise SemgError("recordings would be shorter than 256 samples", fix="raise --duration or --fs")
    rows = []
    for i, subj in enumerate(make_subjects(cfg)):
        for movement in CLASSES:
            for rep in range(cfg.reps):
                x, row = recording(cfg, subj, i, movement, rep)
                rel = f"{subj.name}/{subj.name}_{subj.gender}_{movement}_r{rep + 1:02d}.csv"
                with atomic_open(out / rel, "w", encoding="utf-8") as f:
                    np.savetxt(f, x, fmt="%.6e", delimiter=",", header=",".join(MUSCLES[: cfg.channels]), comments="")
                rows.append({"path": rel, **row})
    return write_csv(manifest, rows, MANIFEST_COLUMNS)


def main(argv: list[str] | None = None) -> None:
    from semg_hht.errors import run_guarded

    d = SynthConfig()
    p = argparse.ArgumentParser(prog="python -m semg_hht.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (recordings + manifest.csv)")
    p.add_argument("--subjects", type=int, default=d.subjects, help="number of subjects (half M, half F)")
    p.add_argument("--reps", type=int, default=d.reps, help="repetitions per class and subject")
    p.add_argument("--duration", type=float, default=d.duration_s, help="seconds per recording")
    p.add_argument("--fs", type=float, default=d.fs, help="sampling rate, Hz")
    p.add_argument("--channels", type=int, default=d.channels, help="1 or 2")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    a = p.parse_args(argv)
    cfg = SynthConfig(
        subjects=a.subjects, reps=a.reps, duration_s=a.duration, fs=a.fs, channels=a.channels, seed=a.seed
    )
    path = run_guarded(generate, a.out, cfg, a.overwrite)
    n = cfg.subjects * cfg.reps * len(CLASSES)
    print(f"wrote {n} synthetic recordings ({cfg.channels} channels, {cfg.fs:g} Hz) and {path}")


if __name__ == "__main__":
    main()
