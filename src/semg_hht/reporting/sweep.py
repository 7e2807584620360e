"""Hydra callback: after a multirun, one table of every job's overrides and result (also CSV)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from semg_hht.io import write_csv
from semg_hht.reporting.aggregate import aggregate
from semg_hht.reporting.table import format_table

log = logging.getLogger(__name__)


def collect_jobs(sweep_dir: Path, metrics: list[str]) -> list[dict[str, Any]]:
    """One row per job folder (those with .hydra/overrides.yaml), in job order."""
    rows = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        overrides = OmegaConf.load(overrides_file)
        row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(str(o) for o in overrides)}
        metrics_file = job_dir / "metrics.json"
        results = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        row["status"] = "ok" if results else "failed"
        row.update({m: results.get(m) for m in metrics})
        rows.append(row)
    rows.sort(key=lambda r: int(r["job"].split("_", 1)[0]) if r["job"].split("_", 1)[0].isdigit() else 0)
    return rows


def fold_summary(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any] | None:
    """Mean and std of the val/ metrics (``acc_mean``, ...) and test/ metrics (``test_acc_mean``, ...)
    when the finished jobs differ only in data.fold (a k-fold sweep: -m data.fold=0,1,2,3,4); None
    for any other sweep."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok or not all("data.fold=" in r["overrides"] for r in ok):
        return None
    if len({" ".join(o for o in r["overrides"].split() if not o.startswith("data.fold=")) for r in ok}) != 1:
        return None
    names = {m: m.removeprefix("val/").replace("/", "_") for m in metrics if m.startswith(("val/", "test/"))}
    return aggregate([{name: r.get(m) for m, name in names.items()} for r in ok], list(names.values()))


def median_temperature(rows: list[dict[str, Any]]) -> tuple[float, int] | None:
    """(median, count) of the finished jobs' fitted calibration temperatures: the value to give a final
    model trained without a validation split (calibration.temperature); None when no job has one."""
    values = [float(r["temperature"]) for r in rows if r["status"] == "ok" and r.get("temperature") is not None]
    return (float(np.median(values)), len(values)) if values else None


class SweepSummary(Callback):
    """Prints and writes ``summary.csv`` in the sweep folder when a multirun ends."""

    def __init__(self, metrics: list[str], filename: str):
        self.metrics = list(metrics)
        self.filename = filename

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = collect_jobs(sweep_dir, self.metrics)
        if not rows:
            return
        shown = [m for m in self.metrics if any(r.get(m) is not None for r in rows)]  # e.g. test/ without a test set
        columns = ["job", "overrides", *shown, "status"]
        write_csv(sweep_dir / self.filename, rows, columns)
        table = format_table(rows, columns)
        print(f"\nSweep summary ({sweep_dir / self.filename}):\n{table}\n", flush=True)
        folds = fold_summary(rows, self.metrics)
        if folds is not None:
            path = write_csv(sweep_dir / f"folds_{self.filename}", [folds], list(folds))
            means = ", ".join(
                f"{k[:-5]} {v:.4f} ± {folds[k[:-5] + '_std']:.4f}"
                for k, v in folds.items()
                if k.endswith("_mean") and v is not None
            )
            print(f"Over {folds['n_folds']} folds ({path}): {means}\n", flush=True)
            median = median_temperature(rows) if "temperature" in self.metrics else None
            if median is not None:  # one recipe's folds: its final model's temperature
                print(
                    f"Calibration: median temperature {median[0]:.4g} over {median[1]} folds; the final model of "
                    f"this recipe (data.split=none) takes it as calibration.temperature={median[0]:.4g}\n",
                    flush=True,
                )
