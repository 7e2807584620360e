"""All benchmarks with small defaults, one table at the end (what `make bench` runs).

    python -m bench.all [--quick]

Runs bench.train, bench.load, bench.predict (each prints its own detailed table as it
goes) and bench.hht's seed-vs-make_hht comparison for one configuration and bench.fail_fast, then prints every row
together. --quick: 3 layers, fp32, one step (a smoke run in a minute or two).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import common, fail_fast, hht, load, predict, train


def hht_rows(n: int) -> list[dict]:
    """bench.hht's comparison (its bench_one) for 1 kHz x 5 s signals, as table rows."""
    fs, seconds = 1000.0, 5.0
    r = hht.bench_one(fs, seconds, n, max(8, n), hht.worker_count(0), 0)
    return [
        {
            "bench": "hht",
            "config": f"{fs:g} Hz x {seconds:g} s, make_hht",
            "ours": r["cmd"],
            "baseline": r["seed"],
            "ratio": r["cmd"] / r["seed"],
            "unit": "signals/s",
            "note": f"identical to the seed: {r['identical']}",
            "load": common.load_avg(),
        }
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        table = str(Path(tmp) / "bench.tsv")
        layers = ["--layers", "3"] if a.quick else ["--layers", "3", "5", "7"]
        steps = ["--steps", "1", "--precisions", "fp32"] if a.quick else ["--steps", "3"]
        rows = train.main([*layers, *steps, "--table", table])
        rows += load.main(["--n", "120" if a.quick else "500", "--table", table])
        rows += predict.main(["--layers", "5", "--n", "16" if a.quick else "64"])
        rows += hht_rows(2 if a.quick else 4)
        rows += fail_fast.main(["--repeats", "1" if a.quick else "3"])
    print("\n==== all benchmarks ====")
    common.print_table(rows)


if __name__ == "__main__":
    sys.exit(main())
