"""How long a user waits for the one-line answer to a typo or a missing checkpoint, per entry script.

    python -m bench.fail_fast [--repeats 3]

Each case is a fresh interpreter (a cold start of the script, as a user types it; the OS file cache is
warm after the first). The baseline is what every error cost before the checks moved ahead of the heavy
imports: importing the training code (torch + Lightning), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    ("train.py", "model.num_layer=5", "typo"),
    ("train.py", "ckpt_path=missing.ckpt", "missing checkpoint"),
    ("fit_svm.py", "ckpt=missing.ckpt", "missing checkpoint"),
    ("predict.py", "ckpt=missing.ckpt", "missing checkpoint"),
    ("adapt.py", "ckpt=missing.ckpt", "missing checkpoint"),
    ("evaluate.py", "raw=missing.csv", "missing input"),
    ("make_hht.py", "spectrum.sise=64", "typo"),
]


def seconds(cmd: list[str], cwd: Path, repeats: int) -> float:
    """Median wall time of `cmd` in a fresh process; it must fail with one 'error:' line."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)
        times.append(time.perf_counter() - start)
        if cmd[1] != "-c" and not result.stderr.strip().splitlines()[-1].startswith("error: "):
            raise SystemExit(f"{' '.join(cmd)} did not fail with one line:\n{result.stderr[-1000:]}")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    baseline = seconds([sys.executable, "-c", "import semg_hht.training"], ROOT, a.repeats)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for script, override, what in CASES:
            cmd = [sys.executable, str(ROOT / script), override, f"hydra.run.dir={tmp}/{len(rows)}"]
            s = seconds(cmd, Path(tmp), a.repeats)
            rows.append(
                {
                    "bench": "fail_fast",
                    "config": f"{script} {override} ({what})",
                    "ours": s,
                    "baseline": baseline,
                    "ratio": s / baseline,
                    "unit": "s to the error line (baseline: import torch + Lightning)",
                    "note": "",
                    "load": common.load_avg(),
                }
            )
    common.print_table(rows)
    return rows


if __name__ == "__main__":
    main()
