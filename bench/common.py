"""Shared bits of the benchmarks: the load average, a matmul
peak measured in the same run, synthetic data sets, and one table format (optionally appended
as TSV to a file that bench.all prints as one table)."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import torch

from semg_hht.reporting.table import print_table as show_table
from semg_hht.synth.matrices import make_dataset

COLUMNS = ["bench", "config", "ours", "baseline", "ratio", "unit", "note", "load"]


def load_avg() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """Achieved FLOP/s of an n x n matmul (the practical device peak for that dtype), best of runs."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def synthetic_set(out: Path, n: int, size: int = 256, seed: int = 0) -> Path:
    """About n labelled matrices (4 subjects x 3 movements x k), the project's synthetic generator."""
    per_class = max(1, -(-n // 12))
    make_dataset(out, subjects=4, per_class=per_class, size=size, unlabeled=0, seed=seed)
    return out


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def print_table(rows: list[dict], columns: list[str] = COLUMNS) -> None:
    show_table(rows, columns, fmt=fmt)


def append_tsv(path: str | None, rows: list[dict]) -> None:
    if not path:
        return
    new = not Path(path).exists()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, delimiter="\t", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows({c: fmt(r.get(c)) for c in COLUMNS} for r in rows)
