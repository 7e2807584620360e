"""The results table: one row per (target, method, split), written as Markdown and CSV (atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from semg_hht.errors import SemgError
from semg_hht.io import write_csv, write_text
from semg_hht.reporting.aggregate import METRICS, aggregate
from semg_hht.reporting.sweep import collect_jobs
from semg_hht.reporting.table import cell

# the figure on the held-out test people (a model fitted on every development person), beside the folds;
# with several final models (one per training seed) their mean, and test_acc_std their spread
TEST_METRICS = ("acc", "balanced_acc", "subject_vote_acc", "chance")
COLUMNS = [
    "target", "method", "split", "n_folds", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")),
    *(f"test_{m}" for m in TEST_METRICS), "test_acc_std", "test_runs", "test_subjects", "note",
]  # fmt: skip


def sweep_folds(sweep_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """The finished jobs of a train.py / fit_svm.py multirun as fold score dicts (val/ prefix
    dropped), and the split they used (group or stratified, from each job's .hydra/config.yaml)."""
    rows = collect_jobs(sweep_dir, [*(f"val/{m}" for m in METRICS), "val/per_subject_acc"])
    folds, splits = [], set()
    for row in rows:
        if row["status"] != "ok":
            continue
        fold = job_fold(row)
        people = sorted(row["val/per_subject_acc"] or {})
        folds.append({m: row[f"val/{m}"] for m in METRICS} | {"fold": fold, "val_subjects": people})
        splits.add(_job_split(sweep_dir / row["job"]))
    return folds, "/".join(sorted(splits)) or "?"


def job_fold(row: Mapping[str, Any]) -> str:
    """The fold of a multirun job (collect_jobs' row): its data.fold override, else the job's folder name."""
    return next((o.split("=", 1)[1] for o in row["overrides"].split() if o.startswith("data.fold=")), row["job"])


def fold_table_rows(target: str, label: str, folds: Sequence[Mapping[str, Any]]) -> list[dict]:
    """folds.csv's rows of one method."""
    return [
        {"target": target, "method": label, "fold": f["fold"]}
        | {m: f[m] for m in METRICS}
        | {"val_subjects": " ".join(f["val_subjects"])}
        for f in folds
    ]


def final_runs(path: Path) -> list[Path]:
    """The final model runs behind a table row's test figure: ``path`` itself when it is one run (its
    metrics.json), else the finished jobs of the multirun at ``path`` in job order (e.g. one final model
    per training seed: ``train.py -m experiment=[...,final_model] seed=0,1,2``)."""
    path = Path(path)
    if (path / "metrics.json").is_file():
        return [path]
    jobs = [path / job["job"] for job in collect_jobs(path, []) if job["status"] == "ok"]
    if not jobs:
        raise SemgError(
            "no metrics.json in the final model's run folder, nor finished jobs of a multirun there",
            path=path,
            fix="point final at a train.py / predict.py run, or at a train.py -m run of final models",
        )
    return jobs


def final_name(run_dir: Path) -> str:
    """folds.csv's name for a final model's test figure: ``test``, or ``test (seed N)`` with the seed
    its model trained with (for an SVM on a trained encoder, the encoder's: one of several final models)."""
    seed = OmegaConf.select(_training_config(Path(run_dir)), "seed", default=None)
    return "test" if seed is None else f"test (seed {seed})"


def held_out_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One test figure from the test scores of several final models of one method (one per training
    seed): the mean of each metric, the accuracy's spread (``acc_std``) and the number of ``runs``."""
    row = aggregate(runs, TEST_METRICS)
    return (
        {m: row[f"{m}_mean"] for m in TEST_METRICS}
        | {"acc_std": row["acc_std"] if len(runs) > 1 else None, "runs": len(runs)}
        | {"val_subjects": runs[0].get("val_subjects") or []}
    )


def _training_config(job_dir: Path) -> DictConfig:
    """The config of the run that trained the job's model: the job's own, or for fit_svm with a
    checkpoint that of the checkpoint's training run (empty when it cannot be found)."""
    config = job_dir / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(config) if config.is_file() else OmegaConf.create({})
    ckpt = OmegaConf.select(cfg, "ckpt", default=None)
    if ckpt:
        run_config = Path(str(ckpt)).parent.parent / ".hydra" / "config.yaml"
        cfg = OmegaConf.load(run_config) if run_config.is_file() else OmegaConf.create({})
    return cfg


def _job_split(job_dir: Path) -> str:
    """data.split of the job; for fit_svm with a checkpoint, that of the checkpoint's training run."""
    return str(OmegaConf.select(_training_config(job_dir), "data.split", default="?"))


def table_row(
    target: str,
    method: str,
    split: str,
    folds: Sequence[Mapping[str, Any]],
    note: str = "",
    test: Mapping[str, Any] | None = None,
) -> dict:
    test = test or {}
    scores = {f"test_{m}": test.get(m) for m in (*TEST_METRICS, "acc_std", "runs")}
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
        if r.get("test_acc_std") is not None:  # several final models: their mean ± spread, and how many
            cells["test acc"] += f" ± {r['test_acc_std']:.3f} ({r['test_runs']} runs)"
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
