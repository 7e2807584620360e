"""Convert one recording: read -> condition -> windows -> normalise -> EMD -> Hilbert matrix -> .npz.

Runs inside worker processes; returns a JobResult instead of raising, so one bad file never stops
the batch. Outputs that already exist are kept (unless overwrite) after checking they were made from
the same recording with the same settings.
"""

from __future__ import annotations

import json
import platform
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np

from semg_hht.errors import SemgError, debug_enabled
from semg_hht.hht.filters import Conditioned, condition
from semg_hht.hht.inputs import Job
from semg_hht.hht.memory import check_signal
from semg_hht.hht.naming import muscle_token, output_stem, recording_id
from semg_hht.hht.readers import RawRecording, read_recording
from semg_hht.hht.segments import Segment, find_segments, padded, session_meta, variable_text
from semg_hht.hht.settings import Settings, WindowSettings
from semg_hht.hht.transform import check_scale, hht_matrix, make_decomposer, normalise_scale
from semg_hht.io import file_sha256, save_npz

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
# Only when segment.enabled: where each segment lies in its session (source), to the sample.
SEGMENT_COLUMNS = ("segment", "repetition", "segment_start_s", "segment_end_s")


@dataclass
class JobResult:
    index: int
    source: str
    rows: list[dict] = field(default_factory=list)
    written: int = 0
    skipped: int = 0
    error: str | None = None
    segments: int = 0  # segments converted (segment.enabled)
    segments_skipped: list[str] = field(default_factory=list)  # one line each: which and why
    warnings: list[str] = field(default_factory=list)  # one line each, e.g. labels fitted to the signal
    clipped: tuple[float, float, float] | None = None  # band-pass used (low, high, fs) when Nyquist cut it


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


def output_columns(segmented: bool, extra: list[str] | None = None) -> tuple[str, ...]:
    """The output manifest's columns: ours, then the input manifest's (renamed where they collide)."""
    own = FIXED_COLUMNS + (SEGMENT_COLUMNS if segmented else ())
    return own + tuple(extra_column(c, own) for c in extra or ())


def extra_column(name: str, own: tuple[str, ...] = FIXED_COLUMNS) -> str:
    """Pass-through manifest column name, renamed when it collides with ours."""
    return f"input_{name}" if name in own else name


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
    try:
        return file_sha256(path)
    except OSError:
        return ""  # read_recording says what is wrong with the file


def _convert(job: Job, s: Settings, out_dir: Path, signature: str, vers: dict, result: JobResult) -> None:
    ss = s.segment
    want = optional = ()
    if ss.enabled:
        reps = ss.repetition_key if ss.mode == "labels" else None
        want = tuple(k for k in (ss.label_key, reps) if k)
        optional = tuple(k for k in (ss.subject_key, *(ss.meta_keys or {}).values()) if k)
    digest = source_digest(job.path)
    check_size = partial(check_signal, max_imf=s.emd.max_imf, fraction=s.max_memory_fraction, path=job.path)
    rec = read_recording(job.path, s.reader, fs_hint=job.fs(), want=want, optional=optional, check_size=check_size)
    n_raw = rec.signal.shape[0]
    if n_raw < s.window.min_samples:
        plan_windows(n_raw, rec.fs, s.window, job.path)  # raises "too short"
    cond = condition(rec.signal, rec.fs, s.filter, job.path)
    if cond.band and s.filter.bandpass and cond.band[1] < s.filter.bandpass[1]:
        result.clipped = (cond.band[0], cond.band[1], cond.fs)
    x, names = cond.signal, rec.channel_names
    if ss.enabled:
        job = _with_meta(job, session_meta(rec.variables, ss, job.path))

    scales = [(0.0, 1.0)] * len(names)
    if s.normalise.scope == "recording":  # a session's segments share its scale: rest stays quieter
        scales = [normalise_scale(x[:, c], s.normalise.method) for c in range(len(names))]
        for c, (off, sc) in enumerate(scales):
            check_scale(off, sc, f"channel {names[c]}", job.path, x[:, c])
    common = _Common(job, s, out_dir, signature, vers, rec, cond, scales, make_decomposer(s.emd), digest)
    if not ss.enabled:
        _convert_part(common, 0, x.shape[0], job.movement, job.subject, None, {}, result)
        return

    subject = job.subject or _subject(rec.variables.get(ss.subject_key or ""))
    segments, skipped = find_segments(rec.variables, n_raw, rec.fs, ss, job.path, notes=result.warnings)
    result.segments_skipped += [f"{job.path}: {line}" for line in skipped]
    _progress_tick("found", len(segments))
    ratio = x.shape[0] / n_raw  # segment bounds are raw samples; resampling rescales them
    for seg in segments:
        a, b = padded(seg, n_raw, rec.fs, ss.pad_s)
        info = {
            "segment": seg.number,
            "repetition": seg.repetition,
            "segment_start_s": round(seg.start / rec.fs, 6),
            "segment_end_s": round(seg.end / rec.fs, 6),
        }
        start, stop = round(a * ratio), round(b * ratio)
        try:  # too short for EMD or for one window: this segment only, listed
            plan_windows(stop - start, cond.fs, s.window, job.path)
        except SemgError as err:
            result.segments_skipped.append(f"{job.path}: segment {seg.number} (label {seg.label}): {err.problem}")
        else:
            _convert_part(common, start, stop, seg.label, subject, seg, info, result)
            result.segments += 1
        _progress_tick("segment", 1)


@dataclass
class _Common:
    """What every part (the whole recording, or one segment) of one file shares."""

    job: Job
    s: Settings
    out_dir: Path
    signature: str
    vers: dict
    rec: RawRecording
    cond: Conditioned
    scales: list[tuple[float, float]]
    decompose: Callable
    digest: str  # sha256 of the source file: "already done" means this very content


def _convert_part(
    cm: _Common, start: int, stop: int, movement: str, subject: str, seg: Segment | None, info: dict, result: JobResult
) -> None:
    """Samples start:stop of the conditioned signal as one recording: windows x channel units."""
    job, s, names, fs = cm.job, cm.s, cm.rec.channel_names, cm.cond.fs
    x = cm.cond.signal[start:stop]
    spectrum = s.spectrum
    if spectrum.freq_range == "band":  # this recording's band-pass, its upper edge clipped below Nyquist
        spectrum = replace(spectrum, freq_range=cm.cond.band)
    windows = plan_windows(x.shape[0], fs, s.window, job.path)
    scheme = s.filename_scheme
    tokens = _unique([muscle_token(n, f"CH{i + 1}", scheme) for i, n in enumerate(names)])
    units = [list(range(len(names)))] if s.layout.stack_channels else [[c] for c in range(len(names))]
    digits = s.layout.min_digits
    number = None if seg is None else seg.number
    recording = job.recording_number if seg is None else recording_id(job.recording_number, digits, number)
    own = output_columns(s.segment.enabled)
    labels = {"subject": subject, "movement": movement, "gender": job.gender, **dict(job.extra)}

    for w, (a, b) in enumerate(windows):
        w_name = None if s.window.length_s is None else w
        for unit in units:
            muscle = muscle_token(s.layout.stacked_name, "EMG", scheme) if s.layout.stack_channels else tokens[unit[0]]
            stem = output_stem(scheme, muscle, movement, job.gender, job.recording_number, digits, w_name, number)
            out = cm.out_dir / f"{stem}.npz"
            channel = "+".join(names[c] for c in unit)
            row = {
                "file": out.name,
                "subject": subject,
                "movement": movement,
                "gender": job.gender,
                "source": job.source,
                "channel": channel,
                "window": w,
                "t_start_s": round((start + a) / fs, 6),
                "t_end_s": round((start + b) / fs, 6),
                "recording": recording,
                "hht_fs_hz": fs,
                **info,
                **{extra_column(k, own): v for k, v in job.extra},
            }
            if out.exists() and not s.overwrite:
                _check_existing(out, job, channel, w, cm.signature, number, cm.digest)
                result.rows.append(row)
                result.skipped += 1
                continue

            mats, offsets, scs, n_imfs, peaks = [], [], [], [], []
            for c in unit:
                part = x[a:b, c]
                off, sc = cm.scales[c]
                if s.normalise.scope == "window":
                    off, sc = normalise_scale(part, s.normalise.method)
                    check_scale(off, sc, f"channel {names[c]} window {w}", job.path, part)
                entropy = [s.seed, job.index, w, c] + ([] if seg is None else [seg.number])
                seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
                what = f"channel {names[c]}" + (f" window {w}" if w_name is not None else "")
                what += "" if seg is None else f" segment {seg.number}"
                m, k, peak = hht_matrix(
                    (part - off) / sc, fs, cm.decompose, spectrum, seed=seed, path=job.path, what=what
                )
                mats.append(m)
                peaks.append(peak)
                offsets.append(off)
                scs.append(sc)
                n_imfs.append(k)
            hht = np.stack(mats) if s.layout.stack_channels else mats[0]
            save_npz(
                out,
                hht=hht.astype(np.float32),
                hht_format=np.int64(FORMAT_VERSION),
                fs=np.float64(fs),
                fs_original=np.float64(cm.rec.fs),
                band=np.array(cm.cond.band if cm.cond.band else (np.nan, np.nan), dtype=np.float64),
                notch_hz=np.array(cm.cond.notches, dtype=np.float64),
                freq_range=np.array(spectrum.freq_range or (0.0, fs / 2), dtype=np.float64),
                t_start_s=np.float64((start + a) / fs),
                t_end_s=np.float64((start + b) / fs),
                window=np.int64(w),
                source=np.str_(job.source),
                source_sha256=np.str_(cm.digest),
                channel=np.str_(channel),
                channels=np.array([names[c] for c in unit]),
                subject=np.str_(subject),
                movement=np.str_(movement),
                gender=np.str_(job.gender),
                labels=np.str_(json.dumps(labels, sort_keys=True)),
                normalisation=np.str_(f"{s.normalise.method}/{s.normalise.scope}"),
                norm_offset=np.array(offsets),
                norm_scale=np.array(scs),
                n_imfs=np.array(n_imfs, dtype=np.int64),
                spectrum_peak=np.array(peaks, dtype=np.float64),
                emd_method=np.str_(s.emd.method),
                weighting=np.str_(s.spectrum.weighting),
                freq_scale=np.str_(s.spectrum.freq_scale),
                settings_signature=np.str_(cm.signature),
                versions=np.str_(json.dumps(cm.vers, sort_keys=True)),
                **{k: np.asarray(v) for k, v in info.items()},
            )
            result.rows.append(row)
            result.written += 1


def _subject(value: np.ndarray | None) -> str:
    """The session's subject variable as text (NinaPro stores a number: 3.0 -> '3')."""
    return "" if value is None else variable_text(value) or ""


def _with_meta(job: Job, meta: dict[str, str]) -> Job:
    """The session's own variables (segment.meta_keys) among its labels: gender into the output names, the
    others as manifest columns. Where the input manifest gives one too, the two must agree."""
    given = {"gender": job.gender, **dict(job.extra)}
    for column, value in meta.items():
        if given.get(column) and value and given[column] != value:
            raise SemgError(
                f"the input manifest or file name gives {column} {given[column]!r} but the session says {value!r}",
                path=job.path,
                fix=f"correct one of them, or leave {column} out of segment.meta_keys",
            )
    extra = dict(job.extra)
    for column, value in meta.items():
        if column != "gender":
            extra[column] = extra.get(column) or value
    return replace(job, gender=job.gender or meta.get("gender", ""), extra=tuple(extra.items()))


def set_progress(sink: Callable[[tuple[str, int]], None] | None) -> None:
    """Where segment progress goes: the parent's bar (serial) or a queue to it (worker processes)."""
    global _progress_sink
    _progress_sink = sink


_progress_sink: Callable[[tuple[str, int]], None] | None = None


def _progress_tick(kind: str, n: int) -> None:
    if _progress_sink is not None:
        _progress_sink((kind, n))


def _check_existing(
    out: Path, job: Job, channel: str, window: int, signature: str, segment: int | None, digest: str
) -> None:
    """A finished output is only reused if it is ours, from this recording's content (and segment),
    with these settings."""
    fix = "delete it, choose another output folder, or pass overwrite=true"
    keys = ("source", "channel", "window", "settings_signature", "source_sha256")
    try:
        with np.load(out, allow_pickle=False) as z:
            meta = {k: str(z[k]) for k in keys if k in z}
            stored_segment = int(z["segment"]) if "segment" in z else None
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
    if stored_segment != segment:
        raise SemgError(f"existing output was made from segment {stored_segment}, not {segment}", path=out, fix=fix)
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
