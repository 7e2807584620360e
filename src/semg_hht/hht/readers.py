"""Read one recording into a (samples, channels) float64 array, its fs (if stored) and channel names.

Formats: .csv/.txt (comma, semicolon or whitespace, sniffed; optional header row; with semicolons, decimal
commas are read too), .npy, .npz
(signal + fs keys), .mat v5 (scipy) and v7.3 (HDF5, h5py; keys configurable). Arrays with two axes
keep time on the longer one. Session files (.mat/.npz) may also give named per-sample vectors
(labels, repetitions) and a subject variable, returned as they are stored (see hht.segments).
Every problem is a SemgError naming the file and what to do.
"""

from __future__ import annotations

import logging
import math
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semg_hht.data.matrices import unreadable_npz
from semg_hht.errors import SemgError
from semg_hht.hht.memory import size_text
from semg_hht.hht.settings import ReaderSettings

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf)$", re.IGNORECASE)
log = logging.getLogger(__name__)
_TIME_NAMES = {"t", "time", "times", "time_s", "time (s)", "timestamp", "seconds", "sec", "s", "ms", "time_ms"}
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_DELIMS = {"comma": ",", "semicolon": ";", "whitespace": None}


@dataclass
class RawRecording:
    signal: np.ndarray  # (n_samples, n_channels), float64
    fs: float | None  # sampling rate stored in the file (or derived from a time column)
    channel_names: list[str]
    variables: dict[str, np.ndarray] = field(default_factory=dict)  # the requested extra variables


def read_recording(
    path: str | Path,
    rs: ReaderSettings,
    fs_hint: float | None = None,
    want: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    check_size: Callable[[tuple[int, ...]], None] | None = None,
) -> RawRecording:
    """Read, pick channels, resolve fs (manifest > file > reader.fs) and check the samples.
    `want` / `optional`: other variables of a .mat/.npz session (a missing `want` one is an error).
    `check_size`: called with an .npy's shape, from its header, before the samples are read (hht.memory)."""
    path = Path(path)
    if not path.is_file():
        raise SemgError("recording not found", path=path, fix="check the path (manifest paths are relative to it)")
    ext = path.suffix.lower()
    extra = (*want, *optional)
    variables: dict[str, np.ndarray] = {}
    if extra and ext not in (".mat", ".npz"):
        raise SemgError(
            f"segment.enabled needs session files with '{want[0] if want else extra[0]}' (.mat or .npz), not {ext}",
            path=path,
            fix="convert the sessions to .mat/.npz, or set segment.enabled=false",
        )
    try:
        if ext in (".csv", ".txt"):
            signal, fs, names = _read_text(path, rs)
        elif ext == ".npy":
            signal, fs, names = _read_npy(path, check_size), None, None
        elif ext == ".npz":
            signal, fs, names, variables = _read_npz(path, rs, want, optional)
        elif ext == ".mat":
            signal, fs, names, variables = _read_mat(path, rs, want, optional)
        else:
            raise SemgError(f"unsupported file type '{ext}'", path=path, fix="use .csv, .txt, .npy, .npz or .mat")
    except SemgError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as err:
        raise SemgError(
            f"cannot read {ext} file ({_short(err)})",
            path=path,
            fix="check the file is complete and in that format",
        ) from None

    signal = _as_2d(signal, path)
    names = _channel_names(names, signal.shape[1], rs, path)
    signal, names = _select(signal, names, rs, path)
    fs = _resolve_fs(fs_hint, fs, rs, path)
    _check_samples(signal, names, path)
    return RawRecording(signal=signal, fs=fs, channel_names=names, variables=variables)


# ---------------------------------------------------------------- formats


def _read_text(path: Path, rs: ReaderSettings) -> tuple[np.ndarray, float | None, list[str] | None]:
    with open(path, encoding="utf-8", errors="strict") as f:
        lines = [ln.strip() for ln in f]
    rows = [(i, ln) for i, ln in enumerate(lines, 1) if ln and not ln.startswith("#")]
    if not rows:
        raise SemgError("file has no samples", path=path, fix="check the recording was saved")
    delim = _DELIMS[rs.delimiter] if rs.delimiter != "auto" else _sniff([ln for _, ln in rows[:5]])
    names = _split(rows[0][1], delim)
    if delim == ";":  # where ';' separates values the comma is the decimal mark (European locales): 0,25;-1,5
        rows = [(i, ln.replace(",", ".")) for i, ln in rows]
    header = None
    first = _split(rows[0][1], delim)
    if not all(_NUMBER.match(tok) for tok in first):
        header, rows = [tok.strip().strip("\"'") for tok in names], rows[1:]
    if not rows:
        raise SemgError("file has a header but no samples", path=path, fix="check the recording was saved")
    if rs.delimiter == "auto" and delim == "," and header is None and all(_DECIMAL_COMMA.match(ln) for _, ln in rows):
        raise SemgError(
            f"every line looks like {rows[0][1]!r}: one channel with decimal commas, or two integer channels?",
            path=path,
            fix="for two channels pass reader.delimiter=comma (or add a header row); for one, "
            "reader.delimiter=semicolon (it reads decimal commas)",
        )
    width = len(_split(rows[0][1], delim))
    try:
        data = np.loadtxt([ln for _, ln in rows], delimiter=delim, ndmin=2, dtype=np.float64)
    except ValueError:
        _explain_bad_row(rows, delim, width, path)
        raise
    if data.shape[1] != width:
        _explain_bad_row(rows, delim, width, path)
    if header is not None and len(header) != width:
        raise SemgError(
            f"header has {len(header)} names but rows have {width} columns",
            path=path,
            fix="fix the header row",
        )
    fs = None
    if rs.time_column is None and header is not None:
        timeish = [h for h in header if h.strip().lower() in _TIME_NAMES]
        if timeish:
            log.warning(
                "%s: column %r looks like time but is converted as a channel -> set reader.time_column=%s",
                path, timeish[0], timeish[0],
            )  # fmt: skip
    if rs.time_column is not None:
        idx = _column_index(rs.time_column, header, width, path)
        t = data[:, idx]
        steps = np.diff(t)
        if len(steps) and np.all(steps > 0):
            fs = float(1.0 / np.median(steps))
        data = np.delete(data, idx, axis=1)
        if header is not None:
            header = header[:idx] + header[idx + 1 :]
    return data, fs, header


def _explain_bad_row(rows: list[tuple[int, str]], delim: str | None, width: int, path: Path) -> None:
    """Slow path after a failed parse: name the first bad line."""
    for lineno, ln in rows:
        toks = _split(ln, delim)
        if len(toks) != width:
            raise SemgError(
                f"line {lineno} has {len(toks)} columns, expected {width}",
                path=path,
                fix="every row needs one value per channel (check the delimiter: reader.delimiter)",
            )
        if not all(_NUMBER.match(t) for t in toks):
            raise SemgError(
                f"line {lineno} is not numeric: {ln[:60]!r}",
                path=path,
                fix="keep one optional header row; remove text or units from the data rows",
            )


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_npy(path: Path, check_size: Callable[[tuple[int, ...]], None] | None) -> np.ndarray:
    """The header first: one that claims more samples than the file holds (1e11: np.load's MemoryError) is
    damaged, and ``check_size`` refuses a real one too large to convert, both before any allocation."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = _NPY_HEADERS.get(version)
            shape, _, dtype = read_header(f) if read_header else (None, None, None)
        except (ValueError, OSError):
            shape = None  # np.load says what is wrong
        held = os.fstat(f.fileno()).st_size - f.tell()
    if shape is not None:
        claimed = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and claimed > held:
            raise SemgError(
                f"the .npy header claims shape {shape} of {dtype} ({size_text(claimed)}) but the file holds "
                f"{size_text(held)} after it: truncated, or a damaged header",
                path=path,
                fix="copy or export the recording again",
            )
        if check_size is not None:
            check_size(tuple(shape))
    return np.load(path, allow_pickle=False)


def _read_npz(path: Path, rs: ReaderSettings, want: tuple[str, ...], optional: tuple[str, ...]):
    try:
        return _read_npz_arrays(path, rs, want, optional)
    except zipfile.BadZipFile as err:  # a truncated archive: was "unexpected BadZipFile" in make_hht's report
        raise unreadable_npz(path, err, "copy or export the recording again, or remove it") from None


def _read_npz_arrays(path: Path, rs: ReaderSettings, want: tuple[str, ...], optional: tuple[str, ...]):
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        if rs.npz_signal_key not in keys:
            raise SemgError(
                f"no '{rs.npz_signal_key}' array (keys: {', '.join(keys) or 'none'})",
                path=path,
                fix="set reader.npz_signal_key to the array holding the signal",
            )
        _require(want, keys, path, "array")
        signal = z[rs.npz_signal_key]
        fs = _scalar(z[rs.npz_fs_key], rs.npz_fs_key, path) if rs.npz_fs_key in keys else None
        names = [str(n) for n in np.atleast_1d(z[rs.names_key])] if rs.names_key in keys else None
        variables = {k: z[k] for k in (*want, *optional) if k in keys}
    return signal, fs, names, variables


def _read_mat(path: Path, rs: ReaderSettings, want: tuple[str, ...], optional: tuple[str, ...]):
    """Only the variables we need are loaded (a NinaPro session also holds glove, accelerometer...)."""
    wanted = [rs.mat_key, rs.mat_fs_key, rs.names_key, *want, *optional]
    m, keys = _load_hdf5_mat(path, wanted) if _is_hdf5(path) else _load_v5_mat(path, wanted)
    if rs.mat_key not in m:
        raise SemgError(
            f"no variable '{rs.mat_key}' (variables: {', '.join(keys()) or 'none'})",
            path=path,
            fix="set reader.mat_key to the variable holding the signal",
        )
    _require(want, m, path, "variable", keys)
    fs = _scalar(m[rs.mat_fs_key], rs.mat_fs_key, path) if rs.mat_fs_key in m else None
    names = [str(n) for n in np.atleast_1d(m[rs.names_key])] if rs.names_key in m else None
    return m[rs.mat_key], fs, names, {k: m[k] for k in (*want, *optional) if k in m}


def _is_hdf5(path: Path) -> bool:
    import h5py

    return h5py.is_hdf5(path)


def _load_v5_mat(path: Path, names: list[str]):
    from scipy.io import loadmat, whosmat

    m = loadmat(path, squeeze_me=True, variable_names=names)
    return m, lambda: [name for name, _, _ in whosmat(path)]


def _load_hdf5_mat(path: Path, names: list[str]):
    """MATLAB v7.3: an HDF5 file whose arrays are stored transposed (MATLAB is column-major)."""
    import h5py

    with h5py.File(path, "r") as f:
        keys = [k for k in f if not k.startswith("#")]
        m = {k: _h5_value(f, f[k], path) for k in dict.fromkeys(names) if k in f}
    return m, lambda: keys


def _h5_value(f, node, path: Path):
    import h5py

    if not isinstance(node, h5py.Dataset):
        raise SemgError(
            f"variable '{node.name.lstrip('/')}' is a MATLAB struct, not an array",
            path=path,
            fix="store plain arrays (emg, labels, ...) at the top level of the file",
        )
    kind = node.attrs.get("MATLAB_class", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if node.attrs.get("MATLAB_empty", 0):
        return np.array([])
    data = node[()]
    if kind == "char":  # UTF-16 code units, one column per character
        return np.str_("".join(chr(c) for c in np.asarray(data).T.ravel()))
    if kind == "cell":  # references to the cells' own datasets
        return np.array([_h5_value(f, f[ref], path) for ref in np.asarray(data).T.ravel()])
    return np.squeeze(np.asarray(data).T)


def _require(want: tuple[str, ...], present, path: Path, what: str, keys=None) -> None:
    missing = [k for k in want if k not in present]
    if missing:
        listed = keys() if keys is not None else list(present)
        raise SemgError(
            f"no {what} '{missing[0]}' ({what}s: {', '.join(listed) or 'none'})",
            path=path,
            fix="set the segment.* key naming it (segment.label_key, segment.repetition_key), or null where optional",
        )


# ---------------------------------------------------------------- checks and helpers


def _sniff(lines: list[str]) -> str | None:
    """Whichever separator the first lines use: semicolon when every line has one (a European CSV, whose
    values may hold decimal commas: 0,25;-1,5), else comma, else semicolon, else whitespace."""
    if all(";" in ln for ln in lines):
        return ";"
    for d in (",", ";"):
        if any(d in ln for ln in lines):
            return d
    return None


def _split(line: str, delim: str | None) -> list[str]:
    return [t.strip() for t in line.split(delim)] if delim else line.split()


def _column_index(col: int | str, header: list[str] | None, width: int, path: Path) -> int:
    if isinstance(col, int) and not isinstance(col, bool) and -width <= col < width:
        return col % width
    if header is not None and str(col) in header:
        return header.index(str(col))
    raise SemgError(f"no time column {col!r}", path=path, fix="set reader.time_column to a column index or name")


def _scalar(value: np.ndarray, key: str, path: Path) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise SemgError(f"'{key}' must be one number (Hz), got shape {arr.shape}", path=path)
    if not np.issubdtype(arr.dtype, np.number):
        raise SemgError(
            f"'{key}' must be a number (Hz), got {arr.dtype.name} {str(arr.reshape(()))[:40]!r}",
            path=path,
            fix=f"store {key} as a number, e.g. np.float64(1000)",
        )
    return float(arr.reshape(()))


def _as_2d(signal: np.ndarray, path: Path) -> np.ndarray:
    arr = np.asarray(signal)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise SemgError(f"signal has non-numeric type {arr.dtype}", path=path, fix="store real numbers")
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:  # (0, 2) would otherwise be turned into 2 samples of no channel
        raise SemgError(f"signal is empty (shape {arr.shape})", path=path, fix="check the recording was saved")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim == 2:
        if arr.shape[0] < arr.shape[1]:  # time runs along the longer axis
            arr = arr.T
    else:
        raise SemgError(
            f"signal has {arr.ndim} dimensions {arr.shape}",
            path=path,
            fix="store (samples,) or (samples, channels)",
        )
    return np.ascontiguousarray(arr)


def _channel_names(names: list[str] | None, n: int, rs: ReaderSettings, path: Path) -> list[str]:
    if rs.channel_names is not None:
        if len(rs.channel_names) != n:
            raise SemgError(
                f"reader.channel_names has {len(rs.channel_names)} names but the file has {n} channels",
                path=path,
                fix="give one name per channel",
            )
        return list(rs.channel_names)
    if names is not None and len(names) == n and all(names):
        return list(names)
    return [f"CH{i + 1}" for i in range(n)]


def _select(signal: np.ndarray, names: list[str], rs: ReaderSettings, path: Path) -> tuple[np.ndarray, list[str]]:
    if rs.channels is None:
        return signal, names
    idx = []
    for c in rs.channels:
        if isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(names):
            idx.append(c)
        elif str(c) in names:
            idx.append(names.index(str(c)))
        else:
            raise SemgError(
                f"no channel {c!r} (channels: {', '.join(names)})",
                path=path,
                fix="set reader.channels to indices or names of existing channels",
            )
    return signal[:, idx], [names[i] for i in idx]


def _resolve_fs(hint: float | None, stored: float | None, rs: ReaderSettings, path: Path) -> float:
    for fs in (hint, stored, rs.fs):
        if fs is not None:
            if not np.isfinite(fs) or fs <= 0:
                raise SemgError(f"sampling rate {fs} is not a positive number", path=path, fix="fix fs (Hz)")
            return float(fs)
    raise SemgError(
        "sampling rate unknown",
        path=path,
        fix="add an fs_hz column to the manifest, store fs in the file, or pass reader.fs=<Hz>",
    )


def _check_samples(signal: np.ndarray, names: list[str], path: Path) -> None:
    bad = ~np.isfinite(signal)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise SemgError(
            f"{int(bad.sum())} NaN/inf samples (first: sample {row}, channel {names[col]})",
            path=path,
            fix="interpolate or cut the gaps before converting",
        )


def _short(err: BaseException) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return msg[:120]
