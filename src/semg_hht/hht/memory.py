"""What a conversion needs in memory, estimated before the work and refused in one line above a bound
(max_memory_fraction of the memory available): an .npy whose header claimed 1e11 samples, or
spectrum.size=20000, ended in "unexpected MemoryError", or in the OOM killer on a shared node.

The estimates are deliberately rough (a factor of two either way): they exist to stop sizes that cannot
work, not to pack memory tightly.
"""

from __future__ import annotations

import math
import os

from semg_hht.errors import SemgError

# one (size x size) matrix: np.bincount's float64 grid, that grid divided by its peak, its float32 copy, and
# the float32 array saved
SPECTRUM_BYTES_PER_CELL = 8 + 8 + 4 + 4
# per sample of one channel, beyond the signal itself: each IMF as float64, its analytic signal (complex128),
# instantaneous frequency and amplitude (float64 each), and the bin indices (intp)
PER_IMF_BYTES_PER_SAMPLE = 8 + 16 + 8 + 8 + 8
SIGNAL_COPIES = 3  # as read, conditioned (filters), normalised


def available_bytes() -> int | None:
    """Memory the kernel could give now (MemAvailable: free plus reclaimable cache), else free pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def size_text(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def _bound(fraction: float, share: int) -> tuple[int, int] | None:
    avail = available_bytes()
    return None if avail is None else (int(avail * fraction / max(share, 1)), avail)


def check_spectrum(size: int, channels: int, fraction: float, workers: int) -> None:
    """spectrum.size: every worker holds one matrix in the making, then a stacked sample's channels."""
    need = size * size * (SPECTRUM_BYTES_PER_CELL + 4 * max(channels - 1, 0))
    bound = _bound(fraction, workers)
    if bound is None or need <= bound[0]:
        return
    raise SemgError(
        f"spectrum.size={size} needs about {size_text(need)} per matrix in each of {workers} worker(s), more than "
        f"max_memory_fraction={fraction:g} of the {size_text(bound[1])} of memory available",
        fix="lower spectrum.size (256 is the seed's) or workers, or raise max_memory_fraction",
    )


def check_signal(shape: tuple[int, ...], max_imf: int, fraction: float, path: os.PathLike | str) -> None:
    """A recording of ``shape`` (time on the longer axis) before it is read: its copies, and one channel's
    IMFs with their analytic signals (within the memory available when the recording is read)."""
    samples = max(shape, default=0)
    channels = math.prod(shape) // samples if samples else 0
    imfs = max_imf if max_imf > 0 else max(math.ceil(math.log2(max(samples, 2))), 1)  # -1: EMD's own limit
    need = samples * (8 * channels * SIGNAL_COPIES + (imfs + 1) * PER_IMF_BYTES_PER_SAMPLE)
    bound = _bound(fraction, 1)
    if bound is None or need <= bound[0]:
        return
    raise SemgError(
        f"signal of shape {tuple(shape)} needs about {size_text(need)} to convert, more than "
        f"max_memory_fraction={fraction:g} of the {size_text(bound[1])} of memory available",
        path=path,
        fix="split the recording into shorter files, or raise max_memory_fraction on a machine with more memory",
    )
