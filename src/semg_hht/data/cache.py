"""A cache of the loaded training tensor: one float32 .npy plus a JSON manifest.

The first load reads every .npz (load_matrices) and writes ``<key>.npy`` and ``<key>.json`` into
the cache folder; the key hashes the file list and the reading settings (channels, size,
normalisation). A later load of the same list reads the one .npy straight into memory when every
file still has the size and mtime_ns the manifest recorded; any change (edited, replaced, touched,
added or removed file) rebuilds it, and so does a damaged .npy (the manifest records its sha256; the
shape, dtype and finiteness of what is read are checked too), with a warning. Both files are written
atomically (temp file + rename, the manifest last); nothing is pickled (np.save/np.load with
allow_pickle=False, JSON). A set with unusable files is not cached (they are re-reported on every load).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semg_hht.data.matrices import load_matrices
from semg_hht.errors import SemgError
from semg_hht.io import atomic_open, remove_dead_temp_files, write_json

log = logging.getLogger(__name__)

VERSION = 1


def _stats(paths: Sequence[Path]) -> list[list]:
    rows = []
    for path in paths:
        st = path.stat()
        rows.append([str(path), st.st_size, st.st_mtime_ns])
    return rows


def cache_key(paths: Sequence[Path], in_channels: int, size: int, scaling: str) -> str:
    text = json.dumps([VERSION, in_channels, size, scaling, [str(p) for p in paths]])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _digest(x: np.ndarray) -> str:
    """sha256 of the array's bytes (about 1 s a GB): what the cache holds is what was written."""
    return hashlib.sha256(np.ascontiguousarray(x).data).hexdigest()


def _read_cached(npy: Path, manifest: Path, files: list[list], shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached tensor, or None: stale (a file or setting changed: rebuilt quietly) or damaged (rebuilt,
    with a warning). Nothing read is used unchecked: shape, dtype, every value finite, and the sha256
    recorded when it was written (a cache damaged in place, same size, held NaN and trained on it)."""
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("version") != VERSION or meta.get("files") != files or tuple(meta.get("shape", ())) != shape:
            return None
        if npy.stat().st_size != meta.get("npy_bytes"):
            return None
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    try:
        x = np.load(npy, allow_pickle=False)  # read into one new array (no memmap left behind)
    except (OSError, ValueError, EOFError) as err:
        x, damage = None, f"unreadable: {err}"
    else:
        damage = _damage(x, meta, shape)
    if damage is None:
        return x
    log.warning("data cache %s is damaged (%s): rebuilding it from the .npz files", npy, damage)
    return None


def _damage(x: np.ndarray, meta: dict, shape: tuple[int, ...]) -> str | None:
    if x.shape != shape or x.dtype != np.float32:
        return f"it holds {x.dtype} {x.shape}, not float32 {shape}"
    if "sha256" in meta and _digest(x) != meta["sha256"]:
        return "its sha256 differs from the one recorded when it was written"
    if not np.isfinite(x).all():  # a cache written before checksums were recorded
        return "it holds NaN or Inf"
    return None


def load_matrices_cached(
    paths: Sequence[Path], in_channels: int, size: int, scaling: str, workers: int, cache_dir: str | Path | None
) -> tuple[np.ndarray, dict[int, SemgError]]:
    """load_matrices through the cache in ``cache_dir`` (None: no cache)."""
    if cache_dir is None:
        return load_matrices(paths, in_channels, size, scaling, workers)
    paths = [Path(os.path.abspath(p)) for p in paths]  # abspath: no syscalls (resolve costs ~70 us a file)
    folder = Path(cache_dir)
    key = cache_key(paths, in_channels, size, scaling)
    npy, manifest = folder / f"{key}.npy", folder / f"{key}.json"
    shape = (len(paths), in_channels, size, size)
    files = _stats(paths)
    cached = _read_cached(npy, manifest, files, shape) if manifest.is_file() else None
    if cached is not None:
        log.info("loaded %d matrices from the cache %s", len(paths), npy)
        return cached, {}
    x, errors = load_matrices(paths, in_channels, size, scaling, workers)
    if errors:
        return x, errors
    # the cache folder is shared by runs and held by none: a killed run's temp copy of a whole training
    # set would stay there for good, so writing a new entry removes those (a live run's are kept)
    remove_dead_temp_files(folder)
    try:
        with atomic_open(npy, "wb") as f:
            np.save(f, x, allow_pickle=False)
        meta = {
            "version": VERSION,
            "shape": list(shape),
            "npy_bytes": npy.stat().st_size,
            "sha256": _digest(x),
            "files": files,
        }
        write_json(manifest, meta)
        log.info("cached %d matrices in %s", len(paths), npy)
    except OSError as err:  # a full or read-only disk costs the cache, not the run
        log.warning("could not write the data cache %s: %s", npy, err)
    return x, errors
