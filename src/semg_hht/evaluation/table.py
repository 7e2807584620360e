"""The results table: one row per (target, method, split), written as Markdown and CSV (atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from semg_hht.io import write_csv, write_text
from semg_hht.reporting.aggregate import METRICS, aggregate
from semg_hht.reporting.sweep import collect_jobs
from semg_hht.reporting.table import cell

# the figure on the held-out test people (a model fitted on every development person), beside the folds
TEST_METRICS = ("acc", "balanced_acc", "subject_vote_acc", "chance")
COLUMNS = [
    "target", "method", "split", "n_folds", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")),
    *(f"test_{m}" for m in TEST_METRICS), "test_subjects", "note",
]  # fmt: skip


def sweep_folds(sweep_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """The finished jobs of a train.py / fit_svm.py multirun as fold score dicts (val/ prefix
    dropped), and the split they used (group or stratified, from each job's .hydra/config.yaml)."""
    rows = collect_jobs(sweep_dir, [f"val/{m}" for m in METRICS])
    folds, splits = [], set()
    for row in rows:
        if row["status"] != "ok":
            continue
        folds.append({m: row[f"val/{m}"] for m in METRICS})
        splits.add(_job_split(sweep_dir / row["job"]))
    return folds, "/".join(sorted(splits)) or "?"


def _job_split(job_dir: Path) -> str:
    """data.split of the job; for fit_svm with a checkpoint, that of the checkpoint's training run."""
    config = job_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        return "?"
    cfg = OmegaConf.load(config)
    ckpt = OmegaConf.select(cfg, "ckpt", default=None)
    if ckpt:
        run_config = Path(str(ckpt)).parent.parent / ".hydra" / "config.yaml"
        cfg = OmegaConf.load(run_config) if run_config.is_file() else OmegaConf.create({})
    return str(OmegaConf.select(cfg, "data.split", default="?"))


def table_row(
    target: str,
    method: str,
    split: str,
    folds: Sequence[Mapping[str, Any]],
    note: str = "",
    test: Mapping[str, Any] | None = None,
) -> dict:
    test = test or {}
    scores = {f"test_{m}": test.get(m) for m in TEST_METRICS}
    people = len(test.get("val_subjects") or []) or None
    return (
        {"target": target, "method": method, "split": split}
        | aggregate(folds)
        | scores
        | {
            "test_subjects": people,
            "note": note,
        }
    )


def display_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, str]], list[str]]:
    """The table as people read it (results.md and the console): metrics as mean ± std over folds."""
    cols = ["target", "method", "split", "folds", *METRICS, *(f"test {m}" for m in TEST_METRICS), "note"]
    shown = []
    for r in rows:
        cells = {"target": r["target"], "method": r["method"], "split": r["split"], "folds": str(r["n_folds"])}
        for m in METRICS:
            mean, std = r.get(f"{m}_mean"), r.get(f"{m}_std")
            if mean is None:
                cells[m] = "-"
            else:  # one fold (or one random split) has no spread to show
                cells[m] = f"{mean:.3f}" if r["n_folds"] == 1 else f"{mean:.3f} ± {std:.3f}"
        cells |= {f"test {m}": cell(r.get(f"test_{m}"), digits=3) for m in TEST_METRICS}
        cells["note"] = str(r.get("note") or "")
        shown.append(cells)
    return shown, cols


def markdown(rows: Sequence[Mapping[str, Any]], header: str = "") -> str:
    """display_rows as a Markdown table under ``header``."""
    shown, cols = display_rows(rows)
    lines = [header] if header else []
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in shown]
    return "\n".join(lines) + "\n"


def write_table(
    out_dir: Path, rows: Sequence[Mapping[str, Any]], header: str = "", footer: str = ""
) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    csv_path = write_csv(out_dir / "results.csv", rows, COLUMNS)
    md_path = write_text(out_dir / "results.md", markdown(rows, header) + footer)
    return md_path, csv_path
