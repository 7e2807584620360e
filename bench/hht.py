"""Benchmark: the seed's reference HHT path vs make_hht's, on the same signals, same run.

    python -m bench.hht [--n 4] [--batch 24] [--workers 0] [--fs 1000 2000] [--durations 2 5 10]

For each sampling rate x duration, n synthetic sEMG-like signals (unit variance, the input every
path gets after make_hht's normalisation) go through
  seed      the seed's compute_hht_matrix (EMD-signal + per-sample Python loop), serial;
  serial    our EMD + vectorised Hilbert spectrum, serial, in this process (EMD timed apart);
  make_hht  the whole command on a batch of .npy files (the n signals repeated to `batch` files):
            read, normalise, EMD, spectrum, atomic .npz writes, `workers` processes, pool start-up
            included (filter.bandpass=null so that every path sees the same input).
It prints signals/s, the speed-up over the seed, the share of our serial time spent in EMD, and
whether every make_hht matrix is identical (np.array_equal) to the seed's.

    python -m bench.hht --sessions [--size 64] [--workers 0]

NinaPro-style whole sessions instead (semg_hht.synth.sessions, NinaPro's protocol: 5 s movements,
3 s rests): an 8-channel 200 Hz (DB5-like) and a 12-channel 2 kHz (DB2-like) set of 2 sessions,
each cut into its labelled repetitions by make_hht (preset=ninapro_db5 / ninapro_db2, stacked
size x size samples); prints seconds per segment and per session-minute (wall clock, all workers).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from reference.seed_hht import compute_hht_matrix
from semg_hht.hht.filters import condition
from semg_hht.hht.pipeline import run, worker_count
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import (
    EMDSettings,
    FilterSettings,
    ReaderSettings,
    settings_from_cfg,
)
from semg_hht.hht.transform import hilbert_spectrum, make_decomposer, normalise_scale
from semg_hht.io import save_npz
from semg_hht.synth.raw import band_noise

CONF = Path(__file__).resolve().parents[1] / "conf"


def hht_config(overrides: list[str]):
    """conf/hht.yaml as make_hht.py composes it (no progress bar)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("hht", overrides=[*overrides, "progress=false"])


# -----------------------------------------------------------------------------------------------


def signals(n: int, fs: float, seconds: float, seed: int) -> list[np.ndarray]:
    """sEMG-like: band-limited noise under a contraction envelope, in volts (~1 mV)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, int(fs), int(seconds * 10), i])
        m = round(fs * seconds)
        t = np.arange(m) / m
        env = 0.05 + np.exp(-(((t - rng.uniform(0.3, 0.7)) / 0.2) ** 2))
        out.append(1e-3 * env * band_noise(rng, m, fs, rng.uniform(70, 120)))
    return out


def normalised(x: np.ndarray) -> np.ndarray:
    off, sc = normalise_scale(x, "zscore")  # what make_hht feeds EMD with the default config
    return (x - off) / sc


def bench_one(fs: float, seconds: float, n: int, batch: int, workers: int, seed: int) -> dict:
    xs = signals(n, fs, seconds, seed)
    zs = [normalised(x) for x in xs]

    t0 = time.perf_counter()
    seed_out = [compute_hht_matrix(z, fs) for z in zs]
    t_seed = time.perf_counter() - t0

    decompose, t_emd, t_spec = make_decomposer(EMDSettings()), 0.0, 0.0
    serial_out = []
    for z in zs:
        a = time.perf_counter()
        imfs = decompose(z, 0)
        b = time.perf_counter()
        serial_out.append(hilbert_spectrum(imfs, fs))
        t_emd += b - a
        t_spec += time.perf_counter() - b
    t_serial = t_emd + t_spec

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open(tmp / "manifest.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "fs_hz", "movement", "gender"])
            for i in range(batch):
                np.save(tmp / f"sig{i:03d}.npy", xs[i % n])
                w.writerow([f"sig{i:03d}.npy", fs, "full", "M"])
        overrides = [f"input={tmp / 'manifest.csv'}", f"output={tmp / 'out'}", f"workers={workers}"]
        s = settings_from_cfg(hht_config([*overrides, "filter.bandpass=null"]))
        t0 = time.perf_counter()
        run(s)
        t_cmd = time.perf_counter() - t0
        cmd_out = [np.load(tmp / "out" / f"CH1_full_M_{i + 1:03d}.npz")["hht"] for i in range(batch)]

    identical = all(np.array_equal(seed_out[i % n], m) for i, m in enumerate(cmd_out))
    identical &= all(np.array_equal(a, b) for a, b in zip(seed_out, serial_out, strict=True))
    return {
        "fs": fs,
        "seconds": seconds,
        "n": n,
        "seed": n / t_seed,
        "serial": n / t_serial,
        "cmd": batch / t_cmd,
        "emd_share": t_emd / t_serial,
        "identical": identical,
    }


def stage_breakdown(fs: float, seconds: float, n: int, seed: int) -> dict[str, float]:
    """Seconds per stage of one make_hht conversion with the default config, from a 2-channel CSV."""
    stages = dict.fromkeys(("read csv", "filter", "normalise", "EMD", "Hilbert+binning", "write npz"), 0.0)
    decompose, fset = make_decomposer(EMDSettings()), FilterSettings()
    with tempfile.TemporaryDirectory() as tmp:
        for i, x in enumerate(signals(n, fs, seconds, seed)):
            path = Path(tmp) / f"rec{i}.csv"
            np.savetxt(path, np.column_stack([x, 0.5 * x[::-1]]), delimiter=",", fmt="%.6e")
            t = [time.perf_counter()]
            rec = read_recording(path, ReaderSettings(), fs_hint=fs)
            t.append(time.perf_counter())
            cond = condition(rec.signal, rec.fs, fset)
            t.append(time.perf_counter())
            for c in range(cond.signal.shape[1]):
                t0 = time.perf_counter()
                z = normalised(cond.signal[:, c])
                t1 = time.perf_counter()
                imfs = decompose(z, 0)
                t2 = time.perf_counter()
                m = hilbert_spectrum(imfs, cond.fs)
                t3 = time.perf_counter()
                save_npz(Path(tmp) / f"out{i}_{c}.npz", hht=m)
                t4 = time.perf_counter()
                for k, dt in zip(
                    ("normalise", "EMD", "Hilbert+binning", "write npz"),
                    np.diff([t0, t1, t2, t3, t4]),
                    strict=True,
                ):
                    stages[k] += dt
            stages["read csv"] += t[1] - t[0]
            stages["filter"] += t[2] - t[1]
    return stages


SESSION_SETS = (("8 ch, 200 Hz", "ninapro_db5", 8, 200.0), ("12 ch, 2 kHz", "ninapro_db2", 12, 2000.0))


def bench_sessions(size: int, workers: int, seed: int) -> None:
    from semg_hht.hht.pipeline import make_hht
    from semg_hht.synth.sessions import SessionConfig, generate_sessions

    print(f"{'session set':>14} | {'segments':>8} {'minutes':>7} | {'s/segment':>9} {'s/session-minute':>16}")
    for name, preset, channels, fs in SESSION_SETS:
        cfg = SessionConfig(
            subjects=2, movements=3, reps=4, channels=channels, fs=fs, move_s=5.0, rest_s=3.0, seed=seed
        )
        with tempfile.TemporaryDirectory() as tmp:
            generate_sessions(Path(tmp) / "raw", cfg)
            minutes = sum(session_minutes(p, fs) for p in (Path(tmp) / "raw").glob("*.mat"))
            overrides = [f"input={tmp}/raw/manifest.csv", f"output={tmp}/out", f"preset={preset}"]
            hht = hht_config([*overrides, f"spectrum.size={size}", f"workers={workers}"])
            t0 = time.perf_counter()
            summary = make_hht(hht)
            wall = time.perf_counter() - t0
        n = summary["segments"]
        print(f"{name:>14} | {n:8d} {minutes:7.2f} | {wall / n:9.2f} {wall / minutes:16.1f}", flush=True)
    print(f"\nwall-clock seconds, {size}x{size} stacked samples, make_hht with {worker_count(workers)} workers")


def session_minutes(path: Path, fs: float) -> float:
    from scipy.io import whosmat

    samples = next(shape[0] for name, shape, _ in whosmat(path) if name == "emg")
    return samples / fs / 60


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=4, help="signals per configuration (seed and serial paths)")
    p.add_argument("--batch", type=int, default=24, help="files per configuration for make_hht")
    p.add_argument("--workers", type=int, default=0, help="make_hht processes (0 = all CPUs)")
    p.add_argument("--fs", type=float, nargs="+", default=[1000.0, 2000.0])
    p.add_argument("--durations", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sessions", action="store_true", help="NinaPro-style sessions cut into segments instead")
    p.add_argument("--size", type=int, default=64, help="--sessions: spectrum.size")
    a = p.parse_args(argv)
    workers = worker_count(a.workers)
    if a.sessions:
        print(f"CPUs usable: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}\n")
        bench_sessions(a.size, a.workers, a.seed)
        return
    print(
        f"CPUs usable: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}; "
        f"{a.n} signals per configuration, make_hht: {a.batch} files, {workers} workers\n"
    )
    head = (
        f"{'fs':>6} {'s':>4} | {'seed':>7} {'serial':>7} {'make_hht':>8} | "
        f"{'x serial':>8} {'x make_hht':>10} | {'EMD share':>9} | identical"
    )
    print(head + "\n" + "-" * len(head))
    ok = True
    for fs in a.fs:
        for sec in a.durations:
            r = bench_one(fs, sec, a.n, max(a.batch, a.n), workers, a.seed)
            ok &= r["identical"]
            print(
                f"{fs:6.0f} {sec:4.0f} | {r['seed']:7.2f} {r['serial']:7.2f} {r['cmd']:8.2f} | "
                f"{r['serial'] / r['seed']:8.1f} {r['cmd'] / r['seed']:10.1f} | "
                f"{100 * r['emd_share']:8.1f}% | {r['identical']}",
                flush=True,
            )
    print("\nsignals/s; x = speed-up over the seed path; EMD share = EMD time / our serial time")
    fs, sec = a.fs[-1], a.durations[len(a.durations) // 2]
    stages = stage_breakdown(fs, sec, a.n, a.seed)
    total = sum(stages.values())
    print(f"\nwhere make_hht's time goes (one process, 2-channel CSV, {fs:g} Hz x {sec:g} s, default config):")
    for k, v in stages.items():
        print(f"  {k:16s} {100 * v / total:5.1f}%")
    if not ok:
        raise SystemExit("outputs differ from the seed path")


if __name__ == "__main__":
    main()
