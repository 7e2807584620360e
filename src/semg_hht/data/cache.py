"""A cache of the loaded training tensor: one float32 .npy plus a JSON manifest.

The first load reads every .npz (load_matrices) and writes ``<key>.npy`` and ``<key>.json`` into
the cache folder; the key hashes the file list and the reading settings (channels, size,
normalisation). A later load of the same list reads the one .npy straight into memory when every
file still has the size and mtime_ns the manifest recorded; any change (edited, replaced, touched,
added or removed file) rebuilds it. Both files are written atomically (temp file + rename, the
manifest last); nothing is pickled (np.save/np.load with allow_pickle=False, JSON). A set with
unusable files is not cached (they are re-reported on every load).
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
from semg_hht.io import atomic_open, write_json

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


def _read_cached(npy: Path, manifest: Path, files: list[list], shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("version") != VERSION or meta.get("files") != files or tuple(meta.get("shape", ())) != shape:
            return None
        if npy.stat().st_size != meta.get("npy_bytes"):
            return None
        x = np.load(npy, allow_pickle=False)  # read into one new array (no memmap left behind)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    return x if x.shape == shape and x.dtype == np.float32 else None


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
    try:
        with atomic_open(npy, "wb") as f:
            np.save(f, x, allow_pickle=False)
        meta = {"version": VERSION, "shape": list(shape), "npy_bytes": npy.stat().st_size, "files": files}
        write_json(manifest, meta)
        log.info("cached %d matrices in %s", len(paths), npy)
    except OSError as err:  # a full or read-only disk costs the cache, not the run
        log.warning("could not write the data cache %s: %s", npy, err)
    return x, errors
