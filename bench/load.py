"""Benchmark: loading N synthetic 256x256 .npz files into the training tensor (load_matrices:
parallel reads into one preallocated array), files/s and peak memory against the final tensor's
size; then the second load of the same files through the data cache (data.cache_dir).

    python -m bench.load [--n 500] [--workers 4] [--repeats 3] [--table FILE]      # e.g. --n 500 5000

Peak memory is tracemalloc's peak (numpy reports its buffers to it) during the load, as a multiple
of the final tensor's bytes; the page cache is dropped from neither load (the files were just
written, as after make_hht), so "first load" is decompression + validation + normalisation.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench import common
from semg_hht.data.cache import load_matrices_cached


def timed_load(paths, workers: int, cache_dir) -> tuple[float, float, int]:
    """(seconds, tracemalloc peak bytes, tensor bytes): timed untraced (tracemalloc slows every
    Python allocation), then loaded again under tracemalloc for the peak."""
    start = time.perf_counter()
    x, errors = load_matrices_cached(paths, 1, 256, "minmax", workers, cache_dir)
    seconds = time.perf_counter() - start
    assert not errors
    nbytes = x.nbytes
    del x
    tracemalloc.start()
    load_matrices_cached(paths, 1, 256, "minmax", workers, cache_dir)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, nbytes


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[500], help="numbers of files (e.g. 500 5000)")
    p.add_argument("--workers", type=int, default=4, help="data.load_workers")
    p.add_argument("--repeats", type=int, default=3, help="later loads: best of this many")
    p.add_argument("--table", help="append the rows (TSV) to this file for bench.all")
    a = p.parse_args(argv)
    print(f"load average {common.load_avg()}; {a.workers} reader threads\n", flush=True)
    rows = []
    for n in a.n:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            common.synthetic_set(Path(tmp) / "data", n)
            paths = sorted((Path(tmp) / "data").glob("*.npz"))[:n]
            made = time.perf_counter() - start
            start = time.perf_counter()
            x, _ = load_matrices_cached(paths, 1, 256, "minmax", a.workers, Path(tmp) / "cache")  # + cache write
            first, nbytes = time.perf_counter() - start, x.nbytes
            del x
            plain = second = float("inf")
            for _ in range(a.repeats):  # interleaved, best of --repeats
                t, plain_peak, _ = timed_load(paths, a.workers, None)  # no cache at all, for reference
                plain = min(plain, t)
                t, cached_peak, _ = timed_load(paths, a.workers, Path(tmp) / "cache")
                second = min(second, t)
            rows += [
                {
                    "bench": "load",
                    "config": f"{n} npz, first load (+ cache write)",
                    "ours": n / first,
                    "unit": "files/s",
                    "note": f"no-cache load {n / plain:.0f} files/s, peak memory {plain_peak / nbytes:.2f}x "
                    f"the {nbytes / 2**20:.0f} MiB tensor",
                    "load": common.load_avg(),
                },
                {
                    "bench": "load",
                    "config": f"{n} npz, second load (cache)",
                    "ours": n / second,
                    "baseline": n / plain,
                    "ratio": plain / second,
                    "unit": "files/s",
                    "note": f"vs no-cache load; peak {cached_peak / nbytes:.2f}x; files made in {made:.0f} s",
                    "load": common.load_avg(),
                },
            ]
            common.print_table(rows[-2:])
            print(flush=True)
    common.append_tsv(a.table, rows)
    return rows


if __name__ == "__main__":
    main()
