"""Seeded synthetic whole sessions in the NinaPro layout, so that segmenting needs no download.

    python -m semg_hht.synth.sessions --out data/sessions --subjects 4 --channels 8 --fs 200

One file per subject, `S<k>_E1_A1.<ext>` as NinaPro names them: after an initial rest, every
movement is repeated `reps` times in a row (movement, then rest), movement 1 first.
- layout `labels` (NinaPro DB1-DB10): `emg` (samples x channels), per-sample `stimulus` (the
  protocol's timing) and `restimulus` (the actual activity: it starts later and ends sooner),
  `repetition` / `rerepetition` (0 during rest), and `subject`;
- layout `marker`: `emg`, a binary on/off `marker` (0 / 100) and `subject`; the movements are
  fixed by protocol order: MOVEMENTS[:movements], each `reps` times.
Formats: `mat` (MATLAB v5, scipy), `mat73` (MATLAB v7.3 = HDF5, arrays stored transposed as
MATLAB writes them), `npz`. No sampling rate is stored in the files (NinaPro stores none either);
`<out>/manifest.csv` lists path, fs_hz, subject and gender.

--quirks: the quirks of a dataset as shipped (make_hht's segment.label_length / open_end / meta_keys
and its duplicate check), in turn by subject: the per-sample vectors run on past the signal (the
protocol's fixed timeline), stop before its end, or the recording stops during the last repetition
(every 4th subject is clean); each session holds `gender` ('m' / 'f') and `age`; and the first
session is there twice, byte for byte, under another name (`S1_E1_A1_copy`).

Each movement activates the electrodes with its own fixed pattern of amplitudes and median
frequencies (the same for everyone), so the movements are learnable; subjects differ in gain and
median frequency.

--spread S (default 0: the sessions above, unchanged) makes people differ as real ones do, S the scale of
every effect: each person wears the armband rotated by N(0, S) electrodes (the movement patterns move
round the channels, between neighbours for a fractional turn), each electrode of theirs has its own gain
(log-normal, sd 0.5 S: skin, fat, contact), each movement is theirs (its amplitude pattern times a
log-normal of sd 0.5 S per channel) and no two repetitions are alike (sd 0.25 S per channel). Classic
features and the CNN then have to generalise across people; at S = 0 the CNN and every classic row score 1.000
(docs/experiments.md, "Generated sessions").
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.errors import SemgError
from semg_hht.io import atomic_open, refuse_overwrite, write_csv
from semg_hht.synth.raw import band_noise, ramp_burst

LAYOUTS = ("labels", "marker")
FORMATS = {"mat": ".mat", "mat73": ".mat", "npz": ".npz"}
MOVEMENTS = ("fist", "pinch", "open", "point", "flexion", "extension", "pronation", "supination")
MARKER_ON = 100


@dataclass(frozen=True)
class SessionConfig:
    subjects: int = 4
    movements: int = 3
    reps: int = 4  # repetitions of each movement
    channels: int = 8
    fs: float = 200.0
    move_s: float = 3.0  # mean movement length (x 0.8-1.2)
    rest_s: float = 2.0  # mean rest length (x 0.8-1.2)
    layout: str = "labels"
    fmt: str = "mat"
    seed: int = 0
    median_freq_hz: float = 90.0
    volts: float = 1e-3
    quirks: bool = False  # shipped data's quirks (the module's docstring)
    spread: float = 0.0  # between-person (and between-repetition) variation (the module's docstring); 0: none


QUIRKS = ("longer", "shorter", "open_end", None)  # subject k has QUIRKS[(k - 1) % 4]


@dataclass(frozen=True)
class TrueSegment:
    """One movement as written: restimulus / marker bounds in samples (end exclusive)."""

    file: str
    subject: int
    label: str  # '3' (labels layout) or 'open' (marker layout)
    repetition: int
    start: int
    end: int
    open: bool = False  # still on at the last sample (--quirks): make_hht's segment.open_end


def session(cfg: SessionConfig, subject: int) -> tuple[dict[str, np.ndarray], list[tuple[int, int, int, int, int]]]:
    """The session's variables and its movements: (movement 1.., repetition 1.., restimulus start and
    end, stimulus start and end), in samples."""
    rng = np.random.default_rng([cfg.seed, 104729, subject])
    fs = cfg.fs
    timeline, t = [], round(cfg.rest_s * fs * rng.uniform(0.8, 1.2))
    for g in range(1, cfg.movements + 1):
        for r in range(1, cfg.reps + 1):
            move = round(cfg.move_s * fs * rng.uniform(0.8, 1.2))
            # restimulus: the person starts after the cue and relaxes before it ends
            a = t + round(rng.uniform(0.05, 0.15) * move)
            b = t + move - round(rng.uniform(0.0, 0.1) * move)
            timeline.append((g, r, a, b, t, t + move))
            t += move + round(cfg.rest_s * fs * rng.uniform(0.8, 1.2))
    n = t
    stimulus, restimulus = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
    repetition, rerepetition = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
    gain = float(np.exp(rng.normal(0, 0.25)))
    mf = min(cfg.median_freq_hz, 0.3 * fs) * rng.uniform(0.9, 1.1)  # a 200 Hz armband sees below 100 Hz
    times = np.arange(n) / fs
    emg = np.stack([0.03 * band_noise(rng, n, fs, 120.0) for _ in range(cfg.channels)], axis=1)  # noise floor
    worn = _Worn.drawn(cfg, subject) if cfg.spread else None  # how this person differs (--spread); its own stream
    for g in range(1, cfg.movements + 1):
        # The movement's own electrode pattern: amplitude and median frequency (the same for everyone).
        fixed = np.random.default_rng([cfg.seed, 15485863, g])
        amplitude, spectrum = fixed.uniform(0.1, 1.0, cfg.channels), fixed.uniform(0.7, 1.3, cfg.channels)
        if worn is not None:
            amplitude, spectrum = worn.movement(amplitude, g), worn.rotated(spectrum)
        carrier = np.stack([band_noise(rng, n, fs, mf * spectrum[c]) for c in range(cfg.channels)], axis=1)
        for g_, r, a, b, cue, cue_end in timeline:
            if g_ != g:
                continue
            stimulus[cue:cue_end], repetition[cue:cue_end] = g, r
            restimulus[a:b], rerepetition[a:b] = g, r
            env = ramp_burst(times[a:b], a / fs, b / fs, min(0.2, 0.25 * (b - a) / fs)) * rng.uniform(0.8, 1.2)
            pattern = amplitude if worn is None else worn.repetition(amplitude)
            emg[a:b] += env[:, None] * pattern[None, :] * carrier[a:b]
    emg *= cfg.volts * gain
    if cfg.layout == "marker":
        vectors = {"marker": (MARKER_ON * (restimulus > 0)).astype(np.float64)}
    else:
        vectors = {"stimulus": stimulus, "restimulus": restimulus, "repetition": repetition}
        vectors["rerepetition"] = rerepetition
    if cfg.quirks:
        emg, vectors, timeline = _quirk(QUIRKS[(subject - 1) % len(QUIRKS)], emg, vectors, timeline)
    variables = {"emg": emg, "subject": np.array([[subject]], dtype=np.float64)}
    variables |= {key: v[:, None] for key, v in vectors.items()}  # MATLAB column vectors, as NinaPro stores them
    if cfg.quirks:
        variables |= {"gender": np.str_("mf"[(subject - 1) % 2]), "age": np.array([[20.0 + 3 * subject]])}
    return variables, timeline


@dataclass
class _Worn:
    """One person's armband and way of moving (--spread; the module's docstring), from a stream of their own,
    so the protocol's timeline and every other draw are those of --spread 0."""

    spread: float
    shift: float  # the armband's rotation, in electrodes
    gain: np.ndarray  # per electrode
    rng: np.random.Generator

    @classmethod
    def drawn(cls, cfg: SessionConfig, subject: int) -> _Worn:
        rng = np.random.default_rng([cfg.seed, 32452843, subject])
        shift = float(rng.normal(0, cfg.spread))
        return cls(cfg.spread, shift, np.exp(rng.normal(0, 0.5 * cfg.spread, cfg.channels)), rng)

    def rotated(self, pattern: np.ndarray) -> np.ndarray:
        """The pattern as electrodes turned by ``shift`` see it: each between its two nearest, round the arm."""
        c = len(pattern)
        at = (np.arange(c) - self.shift) % c
        low = np.floor(at).astype(int)
        w = at - low
        return (1 - w) * pattern[low % c] + w * pattern[(low + 1) % c]

    def movement(self, amplitude: np.ndarray, g: int) -> np.ndarray:
        """Movement g's amplitudes as this person makes it, through their electrodes."""
        own = amplitude * np.exp(self.rng.normal(0, 0.5 * self.spread, len(amplitude)))
        return self.rotated(own) * self.gain

    def repetition(self, amplitude: np.ndarray) -> np.ndarray:
        return amplitude * np.exp(self.rng.normal(0, 0.25 * self.spread, len(amplitude)))


def _quirk(kind: str | None, emg: np.ndarray, vectors: dict, timeline: list) -> tuple[np.ndarray, dict, list]:
    """One quirk of shipped data: the per-sample vectors longer (rest appended: the protocol's timeline runs
    on) or shorter (cut within the last rest) than the signal, or the recording stopped halfway through
    the last repetition (the timeline's last movement then ends at the last sample)."""
    n = emg.shape[0]
    last_rest = n - max(cue_end for *_, cue_end in timeline)  # after the last cue, every vector rests
    if kind == "longer":
        return emg, {k: np.r_[v, np.zeros(last_rest, v.dtype)] for k, v in vectors.items()}, timeline
    if kind == "shorter":
        return emg, {k: v[: n - last_rest // 2] for k, v in vectors.items()}, timeline
    if kind == "open_end":
        g, r, a, b, cue, _ = timeline[-1]
        cut = (a + b) // 2
        return emg[:cut], {k: v[:cut] for k, v in vectors.items()}, [*timeline[:-1], (g, r, a, cut, cue, cut)]
    return emg, vectors, timeline


def generate_sessions(out: str | Path, cfg: SessionConfig, overwrite: bool = False) -> list[TrueSegment]:
    """Write one session file per subject and manifest.csv; returns every movement written."""
    out = Path(out)
    refuse_overwrite(out / "manifest.csv", overwrite, key="--overwrite")
    if cfg.layout not in LAYOUTS or cfg.fmt not in FORMATS:
        raise SemgError(f"layout must be one of {LAYOUTS} and format one of {tuple(FORMATS)}")
    if not cfg.spread >= 0:
        raise SemgError(f"--spread {cfg.spread} is negative", fix="pass 0 (none) or more, e.g. --spread 1")
    if cfg.layout == "marker" and cfg.movements > len(MOVEMENTS):
        raise SemgError(f"the marker layout names at most {len(MOVEMENTS)} movements", fix="lower --movements")
    truth, rows = [], []
    for i in range(cfg.subjects):
        subject = i + 1
        name = f"S{subject}_E1_A1{FORMATS[cfg.fmt]}"
        variables, timeline = session(cfg, subject)
        write_session(out / name, variables, cfg.fmt)
        n = variables["emg"].shape[0]
        for g, r, a, b, _, _ in timeline:
            label = MOVEMENTS[g - 1] if cfg.layout == "marker" else str(g)
            truth.append(TrueSegment(name, subject, label, r, a, b, open=b == n))
        rows.append({"path": name, "fs_hz": f"{cfg.fs:g}", "subject": subject, "gender": "MF"[i % 2]})
    if cfg.quirks:  # the same bytes under another name, listed as if it were a session of its own
        copy = f"S1_E1_A1_copy{FORMATS[cfg.fmt]}"
        with atomic_open(out / copy, "wb") as f:
            f.write((out / rows[0]["path"]).read_bytes())
        rows.append({**rows[0], "path": copy})
    write_csv(out / "manifest.csv", rows, ("path", "fs_hz", "subject", "gender"))
    return truth


def write_session(path: Path, variables: dict[str, np.ndarray], fmt: str) -> None:
    with atomic_open(path, "wb") as f:
        if fmt == "npz":
            np.savez_compressed(f, **{k: np.squeeze(v) if k != "emg" else v for k, v in variables.items()})
        elif fmt == "mat":
            from scipy.io import savemat

            savemat(f, variables, do_compression=True)
        else:
            _write_mat73(f, variables)


def _write_mat73(f, variables: dict[str, np.ndarray]) -> None:
    """MATLAB v7.3 as MATLAB writes it: a 512-byte MAT header (HDF5 user block), then HDF5 datasets
    holding each array transposed (column-major), tagged with its MATLAB class."""
    import h5py

    with h5py.File(f, "w", userblock_size=512) as h5:
        for key, v in variables.items():
            kind = {"f": "double", "u": "uint8", "U": "char"}[v.dtype.kind]
            if kind == "char":  # UTF-16 code units, a 1 x n row
                v = np.array([[ord(c) for c in str(v)]], dtype=np.uint16)
            ds = h5.create_dataset(key, data=np.ascontiguousarray(np.atleast_2d(v).T))
            ds.attrs["MATLAB_class"] = np.bytes_(kind)
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: semg_hht.synth.sessions HDF5 schema 1.00 ."
    f.seek(0)
    f.write(text.ljust(116) + b"\0" * 8 + b"\x00\x02IM" + b"\0" * (512 - 128))


def main(argv: list[str] | None = None) -> None:
    from semg_hht.errors import run_guarded

    d = SessionConfig()
    p = argparse.ArgumentParser(prog="python -m semg_hht.synth.sessions", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (session files + manifest.csv)")
    p.add_argument("--subjects", type=int, default=d.subjects, help="one session file each")
    p.add_argument("--movements", type=int, default=d.movements)
    p.add_argument("--reps", type=int, default=d.reps, help="repetitions of each movement")
    p.add_argument("--channels", type=int, default=d.channels)
    p.add_argument("--fs", type=float, default=d.fs, help="sampling rate, Hz")
    p.add_argument("--move", type=float, default=d.move_s, help="mean movement length, s")
    p.add_argument("--rest", type=float, default=d.rest_s, help="mean rest length, s")
    p.add_argument("--layout", choices=LAYOUTS, default=d.layout)
    p.add_argument("--format", choices=tuple(FORMATS), default=d.fmt, dest="fmt")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quirks", action="store_true", help="shipped data's quirks (see above)")
    p.add_argument("--spread", type=float, default=d.spread, help="between-person variation (see above); 0: none")
    p.add_argument("--overwrite", action="store_true", help="replace an existing set in --out")
    a = p.parse_args(argv)
    cfg = SessionConfig(**{k: v for k, v in vars(a).items() if k not in ("out", "overwrite", "move", "rest")})
    cfg = SessionConfig(**{**cfg.__dict__, "move_s": a.move, "rest_s": a.rest})
    truth = run_guarded(generate_sessions, a.out, cfg, a.overwrite)
    print(
        f"wrote {cfg.subjects} sessions ({cfg.layout} layout, {cfg.fmt}, {cfg.channels} channels, {cfg.fs:g} Hz) "
        f"with {len(truth)} movements to {a.out}"
        + (" (with quirks: a copy, open ends, odd lengths)" if a.quirks else "")
        + (f" (people differ: --spread {a.spread:g})" if a.spread else "")
    )


if __name__ == "__main__":
    main()
