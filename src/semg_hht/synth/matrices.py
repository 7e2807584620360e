"""Synthetic HHT matrices with planted class structure, for tests and quick experiments.

Each matrix is frequency x time like a Hilbert spectrum: a few IMF-like frequency tracks whose
amplitude follows a contraction envelope. full = long strong bursts, half = shorter weaker ones,
invalid = irregular blips or a truncated burst. Subjects differ in gain and median frequency;
women's tracks sit higher in frequency (a planted gender effect). Deterministic for a seed.

    python -m semg_hht.synth.matrices --out data/synthetic --size 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from semg_hht.io import save_npz, write_csv

MOVEMENTS = ("full", "half", "invalid")
MUSCLES = ("BICEPS", "TRICEPS")


def envelope(movement: str, width: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(width) / width
    env = np.zeros(width)
    if movement == "invalid":
        if rng.random() < 0.5:  # irregular blips
            for centre in rng.uniform(0, 1, size=rng.integers(4, 9)):
                env += rng.uniform(0.2, 0.8) * np.exp(-0.5 * ((t - centre) / 0.015) ** 2)
        else:  # one burst cut off half-way
            start = rng.uniform(0.2, 0.5)
            env += np.where((t > start) & (t < start + rng.uniform(0.08, 0.15)), rng.uniform(0.5, 0.9), 0.0)
        return env
    reps, length, strength = (3, 0.22, 1.0) if movement == "full" else (3, 0.1, 0.55)
    for k in range(reps):
        centre = (k + 0.5) / reps + rng.normal(0, 0.02)
        env += strength * np.exp(-0.5 * ((t - centre) / (length / 2.5)) ** 2)
    return env


def matrix(movement: str, size: int, median_freq: float, gain: float, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float32; rows are frequency bins (0..fs/2), columns time bins."""
    out = np.zeros((size, size))
    env = gain * envelope(movement, size, rng)
    cols = np.arange(size)
    for k in range(5):  # IMF-like tracks, each about an octave lower
        freq = median_freq / 2**k * (1 + 0.08 * rng.standard_normal(size))
        rows = np.clip((freq * (size - 1)).astype(int), 0, size - 1)
        np.add.at(out, (rows, cols), env * 0.8**k * (1 + 0.2 * rng.standard_normal(size)).clip(0))
    out += 0.02 * rng.random((size, size)) * (rng.random((size, size)) < 0.05)  # sparse background
    return (out / out.max()).astype(np.float32)


def make_dataset(
    out: Path, *, subjects: int, per_class: int, size: int, unlabeled: int, seed: int
) -> list[dict[str, str]]:
    """Write {MUSCLE}_{movement}_{G}_{###}.npz files, Test_###.npz files and manifest.csv."""
    rng = np.random.default_rng(seed)
    rows, number = [], 0
    for s in range(subjects):
        gender = "MF"[s % 2]
        median = (0.30 if gender == "M" else 0.42) + rng.normal(0, 0.02)
        gain = rng.uniform(0.7, 1.3)
        for movement in MOVEMENTS:
            for _ in range(per_class):
                number += 1
                name = f"{MUSCLES[number % 2]}_{movement}_{gender}_{number:03d}.npz"
                save_npz(out / name, hht=matrix(movement, size, median, gain, rng))
                rows.append({"file": name, "subject": f"S{s + 1:02d}", "movement": movement, "gender": gender})
    for i in range(unlabeled):
        movement = MOVEMENTS[i % 3]
        save_npz(out / f"Test_{i + 1:03d}.npz", hht=matrix(movement, size, 0.36, 1.0, rng))
    write_csv(out / "manifest.csv", rows, ["file", "subject", "movement", "gender"])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=12, help="recordings per subject and movement")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--unlabeled", type=int, default=6, help="Test_*.npz files for prediction")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (args.out / "manifest.csv").exists():
        print(f"{args.out} already holds a synthetic set; delete it to regenerate")
        return
    rows = make_dataset(
        args.out,
        subjects=args.subjects,
        per_class=args.per_class,
        size=args.size,
        unlabeled=args.unlabeled,
        seed=args.seed,
    )
    print(f"wrote {len(rows)} labelled + {args.unlabeled} unlabeled matrices to {args.out}")


if __name__ == "__main__":
    main()
