"""Convert one recording: read -> condition -> windows -> normalise -> EMD -> Hilbert matrix -> .npz.

Runs inside worker processes; returns a JobResult instead of raising, so one bad file never stops
the batch. Outputs that already exist are kept (unless overwrite) after checking they were made from
the same recording with the same settings.
"""

from __future__ import annotations

import hashlib
import json
import platform
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from semg_hht.cli import debug_enabled
from semg_hht.errors import SemgError
from semg_hht.hht.filters import condition
from semg_hht.hht.inputs import Job
from semg_hht.hht.naming import muscle_token, output_stem
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import Settings, WindowSettings
from semg_hht.hht.transform import check_scale, hht_matrix, make_decomposer, normalise_scale
from semg_hht.io import save_npz

FORMAT_VERSION = 2  # 2: source_sha256, so a rerun never reuses a matrix of another recording's content
FIXED_COLUMNS = (
    "file",
    "subject",
    "movement",
    "gender",
    "source",
    "channel",
    "window",
    "t_start_s",
    "t_end_s",
    "recording",
    "hht_fs_hz",
)


@dataclass
class JobResult:
    index: int
    source: str
    rows: list[dict] = field(default_factory=list)
    written: int = 0
    skipped: int = 0
    error: str | None = None


def versions() -> dict[str, str]:
    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    from semg_hht import __version__

    return {
        "semg_hht": __version__,
        "EMD-signal": v("EMD-signal"),
        "numpy": np.__version__,
        "scipy": v("scipy"),
        "python": platform.python_version(),
    }


def extra_column(name: str) -> str:
    """Pass-through manifest column name, renamed when it collides with ours."""
    return f"input_{name}" if name in FIXED_COLUMNS else name


def plan_windows(n: int, fs: float, ws: WindowSettings, path: str) -> list[tuple[int, int]]:
    if n < ws.min_samples:
        raise SemgError(
            f"too short for EMD: {n} samples (< window.min_samples={ws.min_samples})",
            path=path,
            fix="use longer recordings or lower window.min_samples",
        )
    if ws.length_s is None:
        return [(0, n)]
    length = round(ws.length_s * fs)
    hop = round((ws.hop_s or ws.length_s) * fs)
    if length < ws.min_samples or hop < 1:
        raise SemgError(
            f"window.length_s={ws.length_s} is {length} samples at {fs:g} Hz (< window.min_samples)",
            path=path,
            fix="use longer windows",
        )
    if length > n:
        raise SemgError(
            f"recording ({n / fs:.2f} s) is shorter than one window ({ws.length_s} s)",
            path=path,
            fix="lower window.length_s or drop this recording",
        )
    return [(a, a + length) for a in range(0, n - length + 1, hop)]


def convert_recording(job: Job, s: Settings, out_dir: str, signature: str, vers: dict) -> JobResult:
    result = JobResult(index=job.index, source=job.source)
    try:
        _convert(job, s, Path(out_dir), signature, vers, result)
    except SemgError as err:
        result.error = str(err)
    except Exception as err:  # a bug, or a library failing on odd data: report it, keep the batch going
        if debug_enabled():
            raise
        tb = traceback.extract_tb(err.__traceback__)[-1]
        result.error = (
            f"{job.path}: unexpected {type(err).__name__}: {err} (at {Path(tb.filename).name}:{tb.lineno})"
            " -> rerun with SEMG_DEBUG=1 workers=1 for the traceback"
        )
    return result


def source_digest(path: str) -> str:
    """sha256 of the recording's bytes: "already done" means made from this very content."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""  # read_recording says what is wrong with the file
    return h.hexdigest()


def _convert(job: Job, s: Settings, out_dir: Path, signature: str, vers: dict, result: JobResult) -> None:
    digest = source_digest(job.path)
    rec = read_recording(job.path, s.reader, fs_hint=job.fs())
    n_raw = rec.signal.shape[0]
    if n_raw < s.window.min_samples:
        plan_windows(n_raw, rec.fs, s.window, job.path)  # raises "too short"
    cond = condition(rec.signal, rec.fs, s.filter, job.path)
    x, fs = cond.signal, cond.fs
    windows = plan_windows(x.shape[0], fs, s.window, job.path)
    names = rec.channel_names
    tokens = _unique([muscle_token(n, f"CH{i + 1}") for i, n in enumerate(names)])

    scales = [(0.0, 1.0)] * len(names)
    if s.normalise.scope == "recording":
        scales = [normalise_scale(x[:, c], s.normalise.method) for c in range(len(names))]
        for c, (off, sc) in enumerate(scales):
            check_scale(off, sc, f"channel {names[c]}", job.path)

    units = [list(range(len(names)))] if s.layout.stack_channels else [[c] for c in range(len(names))]
    digits = s.layout.min_digits
    decompose = make_decomposer(s.emd)
    labels = {"subject": job.subject, "movement": job.movement, "gender": job.gender, **dict(job.extra)}

    for w, (a, b) in enumerate(windows):
        w_name = None if s.window.length_s is None else w
        for unit in units:
            muscle = muscle_token(s.layout.stacked_name, "EMG") if s.layout.stack_channels else tokens[unit[0]]
            stem = output_stem(muscle, job.movement, job.gender, job.index + 1, digits, w_name)
            out = out_dir / f"{stem}.npz"
            channel = "+".join(names[c] for c in unit)
            row = {
                "file": out.name,
                "subject": job.subject,
                "movement": job.movement,
                "gender": job.gender,
                "source": job.source,
                "channel": channel,
                "window": w,
                "t_start_s": round(a / fs, 6),
                "t_end_s": round(b / fs, 6),
                "recording": job.index + 1,
                "hht_fs_hz": fs,
                **{extra_column(k): v for k, v in job.extra},
            }
            if out.exists() and not s.overwrite:
                _check_existing(out, job, channel, w, signature, digest)
                result.rows.append(row)
                result.skipped += 1
                continue

            mats, offsets, scs, n_imfs = [], [], [], []
            for c in unit:
                seg = x[a:b, c]
                off, sc = scales[c]
                if s.normalise.scope == "window":
                    off, sc = normalise_scale(seg, s.normalise.method)
                    check_scale(off, sc, f"channel {names[c]} window {w}", job.path)
                seed = int(np.random.SeedSequence([s.seed, job.index, w, c]).generate_state(1)[0])
                what = f"channel {names[c]}" + (f" window {w}" if w_name is not None else "")
                m, k = hht_matrix((seg - off) / sc, fs, decompose, s.spectrum, seed=seed, path=job.path, what=what)
                mats.append(m)
                offsets.append(off)
                scs.append(sc)
                n_imfs.append(k)
            hht = np.stack(mats) if s.layout.stack_channels else mats[0]
            save_npz(
                out,
                hht=hht.astype(np.float32),
                hht_format=np.int64(FORMAT_VERSION),
                fs=np.float64(fs),
                fs_original=np.float64(rec.fs),
                band=np.array(cond.band if cond.band else (np.nan, np.nan), dtype=np.float64),
                notch_hz=np.array(cond.notches, dtype=np.float64),
                freq_range=np.array(s.spectrum.freq_range or (0.0, fs / 2), dtype=np.float64),
                t_start_s=np.float64(a / fs),
                t_end_s=np.float64(b / fs),
                window=np.int64(w),
                source=np.str_(job.source),
                source_sha256=np.str_(digest),
                channel=np.str_(channel),
                channels=np.array([names[c] for c in unit]),
                subject=np.str_(job.subject),
                movement=np.str_(job.movement),
                gender=np.str_(job.gender),
                labels=np.str_(json.dumps(labels, sort_keys=True)),
                normalisation=np.str_(f"{s.normalise.method}/{s.normalise.scope}"),
                norm_offset=np.array(offsets),
                norm_scale=np.array(scs),
                n_imfs=np.array(n_imfs, dtype=np.int64),
                emd_method=np.str_(s.emd.method),
                weighting=np.str_(s.spectrum.weighting),
                settings_signature=np.str_(signature),
                versions=np.str_(json.dumps(vers, sort_keys=True)),
            )
            result.rows.append(row)
            result.written += 1


def _check_existing(out: Path, job: Job, channel: str, window: int, signature: str, digest: str) -> None:
    """A finished output is only reused if it is ours, from this recording's content, with these settings."""
    fix = "delete it, choose another output folder, or pass overwrite=true"
    keys = ("source", "channel", "window", "settings_signature", "source_sha256")
    try:
        with np.load(out, allow_pickle=False) as z:
            meta = {k: str(z[k]) for k in keys if k in z}
    except Exception:
        raise SemgError("existing output is unreadable", path=out, fix=fix) from None
    if any(k not in meta for k in keys[:4]):
        raise SemgError("existing output was not written by make_hht", path=out, fix=fix)
    if (meta["source"], meta["channel"], meta["window"]) != (job.source, channel, str(window)):
        raise SemgError(
            f"existing output was made from {meta['source']} ({meta['channel']}, window {meta['window']}),"
            f" not {job.source} ({channel}, window {window})",
            path=out,
            fix=fix,
        )
    if meta["settings_signature"] != signature:
        raise SemgError("existing output was made with different settings", path=out, fix=fix)
    if "source_sha256" not in meta:
        raise SemgError("existing output was written by an older make_hht (no source checksum)", path=out, fix=fix)
    if meta["source_sha256"] != digest:
        raise SemgError(
            f"existing output was made from other content than {job.path} (a different or changed recording)",
            path=out,
            fix=fix,
        )


def _unique(tokens: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, t in enumerate(tokens):
        out.append(t if t not in seen else f"{t}{i + 1}")
        seen[t] = i
    return out
