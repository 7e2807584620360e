"""Reading HHT matrices: validated, normalised, in parallel, straight into one preallocated array."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semg_hht.errors import SemgError

if TYPE_CHECKING:  # torch is not imported at run time: make_hht reads matrices without it
    import torch

log = logging.getLogger(__name__)
SCALINGS = ("minmax", "recording", "dataset", "none")
# scalings that read a channel in its recording's units (the scales make_hht stored put back), and how
GAINS = {"recording": "relative", "dataset": "absolute"}
# make_hht divides each channel by its own amplitude (before EMD) and its spectrum's peak (after);
# their product brings a channel back to the recording's units (data.scaling=recording / dataset).
GAIN_KEYS = ("norm_scale", "spectrum_peak")


def npz_files(folder: Path) -> list[Path]:
    """The .npz files in folder, sorted; anything else named *.npz (a folder, a dangling or looping
    link) is left out with a warning, not reported later as an unreadable or unlisted file."""
    files = []
    for p in sorted(folder.glob("*.npz")):
        if p.is_file():
            files.append(p)
        else:
            log.warning("%s: not a regular file (a folder or a broken link), left out", p)
    return files


def member(archive, key: str, tries: int = 3) -> np.ndarray:
    """``archive[key]``, read again after CPython 3.11's spurious "AST constructor recursion depth
    mismatch" SystemError: compile() keeps its recursion count per interpreter, so np.load's header
    parse (ast.literal_eval) can trip over another thread's (load_matrices reads in threads). Nothing
    was read wrong; the next parse succeeds. Any other SystemError is raised as it is."""
    for attempt in range(tries):
        try:
            return archive[key]
        except SystemError as err:
            if "recursion depth mismatch" not in str(err) or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def read_matrix(path: Path, in_channels: int, size: int, gains: str | None = None) -> np.ndarray:
    """One .npz -> float32 array (in_channels, size, size). Key 'hht', else the first array.
    With ``gains``, each channel is multiplied back by the scales make_hht divided it by (GAIN_KEYS):
    "relative" to the strongest channel's (values stay in the file's range), or "absolute" (the
    recording's own units).

    Never unpickles (allow_pickle=False). Raises SemgError naming the file for anything unusable:
    unreadable or corrupt archive, wrong shape, non-numeric, NaN/Inf, or a constant matrix (an
    empty spectrum: usually an all-zero recording).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not archive.files:
                raise SemgError("npz holds no arrays", path=path, fix="re-create it with make_hht.py")
            matrix = member(archive, "hht" if "hht" in archive.files else archive.files[0])
            scale = _channel_gain(archive, path, in_channels) if gains else None
    except SemgError:
        raise
    except NPZ_READ_ERRORS as err:
        if "allow_pickle" in str(err) and not zipfile.is_zipfile(path):  # numpy's guess for bytes it cannot place
            raise SemgError(
                "cannot read npz: the file is not an .npz archive (a raw recording or another format?)",
                path=path,
                fix="convert raw recordings with make_hht.py first; pass its .npz matrices",
            ) from None
        raise unreadable_npz(path, err, "re-create or remove the file") from None
    if not isinstance(matrix, np.ndarray):  # np.load hands back raw bytes for non-.npy zip members
        raise SemgError("npz member is not an array", path=path, fix="re-create it with make_hht.py")
    if not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(matrix.dtype, np.complexfloating):
        raise SemgError(f"matrix has dtype {matrix.dtype}, expected real numbers", path=path, fix="re-create it")
    expected = (size, size) if in_channels == 1 else (in_channels, size, size)
    if matrix.shape != expected and matrix.shape != (in_channels, size, size):
        raise SemgError(
            f"matrix shape {matrix.shape}, expected {expected}",
            path=path,
            fix="set data.input_size / model.in_channels to match, or re-create the file",
        )
    if not np.isfinite(matrix).all():
        raise SemgError("matrix contains NaN or Inf", path=path, fix="re-create it from the raw recording")
    with np.errstate(over="ignore"):
        matrix = matrix.astype(np.float32, copy=False).reshape(in_channels, size, size)
    if not np.isfinite(matrix).all():
        raise SemgError("values too large for float32 (|x| > 3.4e38)", path=path, fix="rescale or re-create the file")
    if matrix.min() == matrix.max():
        raise SemgError(f"matrix is constant ({matrix.flat[0]:g})", path=path, fix="check the raw recording")
    if scale is not None:
        relative = scale / scale.max() if gains == "relative" else scale
        matrix = matrix * relative.astype(np.float32)[:, None, None]
    return matrix


# what np.load and reading an archive's members raise for a damaged .npz (a truncated one: BadZipFile)
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError)


def unreadable_npz(path: Path, err: BaseException, fix: str) -> SemgError:
    """The one line for an .npz that np.load cannot read (a matrix here, a recording in make_hht's reader).
    A truncated archive (an interrupted copy, download or save) still starts as a zip but has lost the
    directory at its end: zipfile's "File is not a zip file" says so."""
    what = f"{type(err).__name__}: {err}"
    if isinstance(err, zipfile.BadZipFile) and _starts_as_zip(path):
        what = "truncated or damaged: it starts as a zip archive but its end is missing or corrupt"
    return SemgError(f"cannot read npz ({what})", path=path, fix=fix)


def _starts_as_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _channel_gain(archive, path: Path, in_channels: int) -> np.ndarray:
    missing = [k for k in GAIN_KEYS if k not in archive.files]
    if missing:
        raise SemgError(
            f"npz has no {' / '.join(missing)}: data.scaling={'/'.join(GAINS)} needs the channel "
            "scales make_hht stores since this version",
            path=path,
            fix="re-create the matrices with make_hht.py overwrite=true, or set data.scaling=minmax",
        )
    norm_scale, spectrum_peak = member(archive, "norm_scale"), member(archive, "spectrum_peak")
    gain = np.asarray(norm_scale, dtype=np.float64) * np.asarray(spectrum_peak, dtype=np.float64)
    if gain.shape != (in_channels,) or not (np.isfinite(gain).all() and (gain > 0).all()):
        raise SemgError(
            f"channel scales {gain.tolist()} do not fit {in_channels} channel(s) or are not positive",
            path=path,
            fix="re-create the file with make_hht.py overwrite=true",
        )
    return gain


def frequency_axis(paths: Sequence[Path]) -> tuple[str, tuple[float, float] | None]:
    """The frequency axis the files share: ("linear", None), or ("log", (lo, hi) Hz) for make_hht's
    spectrum.freq_scale=log. Files of both kinds, or log files of different ranges, are an error: their
    rows would mean different frequencies. Files written before freq_scale existed are linear."""
    axes: dict[tuple[str, tuple[float, float] | None], Path] = {}
    for path in paths:
        with np.load(path, allow_pickle=False) as archive:
            scale = str(archive["freq_scale"]) if "freq_scale" in archive.files else "linear"
            span = tuple(float(v) for v in archive["freq_range"]) if scale == "log" else None
        axes.setdefault((scale, span), path)
        if len(axes) > 1:
            (first, a), (second, b) = axes.items()
            raise SemgError(
                f"frequency axes differ: {axis_text(first)} in {a.name} and {axis_text(second)} here",
                path=b,
                fix="convert every recording with the same spectrum.freq_scale and freq_range (make_hht.py)",
            )
    return next(iter(axes), ("linear", None))


def axis_text(axis: tuple[str, tuple[float, float] | None]) -> str:
    """("log", (20.0, 450.0)) -> "log 20-450 Hz"; ("linear", None) -> "linear"."""
    scale, span = axis
    return f"{scale} {span[0]:g}-{span[1]:g} Hz" if span else scale


def check_trained_axis(found: tuple, trained: tuple | None, path: Path) -> None:
    """Matrices on the frequency axis a model was trained on (``trained`` None: an older checkpoint that
    did not record it); else one line naming the make_hht settings to convert with."""
    if trained is None or found == trained:
        return
    scale, span = trained
    settings = f"spectrum.freq_scale={scale}" + (f" spectrum.freq_range=[{span[0]:g},{span[1]:g}]" if span else "")
    raise SemgError(
        f"these matrices have a {axis_text(found)} frequency axis, the model was trained on {axis_text(trained)}",
        path=path,
        fix=f"convert the recordings with the model's make_hht settings ({settings})",
    )


def scale_(x: np.ndarray, method: str) -> np.ndarray:
    """In place, per sample: min-max each channel to [0, 1] as the seed does; `recording` (x already
    in the recording's units) divides all channels by the sample's one maximum, so the ratio between
    muscles stays; `dataset` and `none` leave it (`dataset` is divided later by one number for the
    whole set: dataset_reference / to_reference)."""
    if method == "recording":
        np.divide(x, x.max(), out=x)
    elif method == "minmax":
        lo = x.min(axis=(-2, -1), keepdims=True)
        hi = x.max(axis=(-2, -1), keepdims=True)
        np.subtract(x, lo, out=x)
        np.divide(x, np.where(hi > lo, hi - lo, 1.0), out=x)
    elif method not in ("dataset", "none"):
        raise SemgError(f"unknown scaling '{method}'", fix=f"set data.scaling to one of {SCALINGS}")
    return x


def load_matrices(
    paths: Sequence[Path], in_channels: int, size: int, scaling: str, workers: int
) -> tuple[np.ndarray, dict[int, SemgError]]:
    """Read all files in parallel threads into one preallocated (N, C, H, W) float32 array.

    No list-then-stack copy: each worker writes its row in place. Returns the array and the
    errors of unusable files by row (rows left zero; the caller decides to fail or drop them).
    """
    out = np.empty((len(paths), in_channels, size, size), dtype=np.float32)
    errors: list[SemgError | None] = [None] * len(paths)

    def fill(i: int) -> None:
        try:
            out[i] = read_matrix(paths[i], in_channels, size, gains=GAINS.get(scaling))
            scale_(out[i], scaling)
        except SemgError as err:
            out[i] = 0.0
            errors[i] = err

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fill, range(len(paths))))
    return out, {i: e for i, e in enumerate(errors) if e is not None}


def dataset_reference(x: np.ndarray | torch.Tensor) -> float:
    """data.scaling=dataset's one number: the median of the samples' peaks (x in the recordings'
    units: the training rows). A median, so a few clipped or silent recordings do not move it."""
    peaks = np.asarray(x).reshape(len(x), -1).max(axis=1)
    if len(peaks) == 0 or not np.median(peaks) > 0:
        raise SemgError(
            "data.scaling=dataset found no training recording with a positive peak",
            fix="check the matrices, or use data.scaling=recording",
        )
    return float(np.median(peaks))


def to_reference(x: torch.Tensor, scaling: str, reference: float | None) -> torch.Tensor:
    """x divided by the dataset reference under data.scaling=dataset; any other scaling as it is."""
    if scaling != "dataset":
        return x
    if reference is None or not reference > 0:
        raise SemgError(
            f"data.scaling=dataset needs a positive data.scale_reference, got {reference}",
            fix="use a checkpoint written by train.py (it stores the training set's reference), or set one",
        )
    return x / reference
