"""python -m semg_hht.evaluation: the results table on real sEMG.

    python -m semg_hht.evaluation --raw <input manifest.csv> --out results/real \\
        --experiment muscletracker_movement --experiment muscletracker_gender \\
        [--sweep movement "CNN (seed config)" logs/train/multiruns/<ts>] ...

For every experiment: the classic features + LDA / RBF SVM on the experiment's own subject folds
(data.filter, data.target, data.classes, data.n_folds, data.split_seed) and on the seed's random
split (the leakage check). Every --sweep (a train.py or fit_svm.py multirun over data.fold) adds a
row from its jobs' metrics.json. Writes results.md, results.csv and folds.csv into --out.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from semg_hht.errors import SemgError
from semg_hht.evaluation.aggregate import METRICS, leakage_check
from semg_hht.evaluation.classic import (
    METHODS,
    evaluate_group_folds,
    evaluate_random_split,
    load_features,
)
from semg_hht.evaluation.table import sweep_folds, table_row, write_table
from semg_hht.hht.settings import FilterSettings
from semg_hht.io import write_csv

log = logging.getLogger("semg_hht.evaluation")
CONF = Path(__file__).resolve().parents[3] / "conf"
MOVEMENT_NOTE = (
    "movement = the MuscleTracker hand movements m1..m5 (a real stand-in for the movement target, "
    "not the full/half/invalid range-of-motion classes)"
)


def experiment_data(experiment: str, overrides: Sequence[str] = ()) -> Any:
    """The data.* settings an experiment trains with (the same folds for every method)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
    return OmegaConf.to_container(cfg.data, resolve=False)


def classic_rows(args: argparse.Namespace, experiment: str) -> tuple[list[dict], list[dict], list[str]]:
    data = experiment_data(experiment, args.override)
    target = data["target"]
    filters = FilterSettings(notch_hz=args.notch_hz, notch_harmonics=args.notch_harmonics)
    fs = load_features(
        Path(args.raw),
        target,
        (data["classes"] or {}).get(target),
        data.get("filter") or {},
        filters,
        args.ar_order,
        limit_subjects=args.limit_subjects,
    )
    log.info("%s: %d recordings, %d subjects, %d features", experiment, len(fs.y), len(set(fs.subjects)), fs.x.shape[1])
    rows, fold_rows, warnings = [], [], []
    for method in args.methods:
        label = f"classic features + {method.upper()}"
        folds = evaluate_group_folds(fs, method, data["n_folds"], data["split_seed"], args.seed)
        group_row = table_row(target, label, "group", folds)
        rows.append(group_row)
        try:
            random = evaluate_random_split(fs, method, data["val_fraction"], data["split_seed"], args.seed)
        except SemgError as err:  # e.g. too few recordings: the group folds still stand
            log.warning("%s / %s: no random split for the leakage check (%s)", target, label, err)
            random = None
        if random is not None:
            warning = leakage_check(random["acc"], group_row["acc_mean"], args.tolerance)
            rows.append(table_row(target, label, "stratified", [random], note=warning or ""))
            if warning:
                warnings.append(f"{target} / {label}: {warning}")
            folds = [*folds, random | {"fold": "random"}]
        for f in folds:
            fold_rows.append(
                {"target": target, "method": label, "fold": f["fold"]}
                | {m: f[m] for m in METRICS}
                | {"val_subjects": " ".join(f["val_subjects"])}
            )
    return rows, fold_rows, warnings


def sweep_rows(sweeps: Sequence[Sequence[str]], tolerance: float) -> tuple[list[dict], list[str]]:
    rows, warnings = [], []
    for target, label, path in sweeps:
        folds, split = sweep_folds(Path(path))
        if not folds:
            log.warning("no finished jobs in %s: left out of the table", path)
            continue
        rows.append(table_row(target, label, split, folds, note=f"{Path(path).name}"))
    for row in rows:  # the same method on both splits: the leakage check
        twin = next(
            (
                r
                for r in rows
                if r is not row
                and r["target"] == row["target"]
                and r["method"] == row["method"]
                and r["split"] == "group"
            ),
            None,
        )
        if row["split"] == "stratified" and twin is not None:
            warning = leakage_check(row["acc_mean"], twin["acc_mean"], tolerance)
            if warning:
                row["note"] = f"{row['note']} {warning}".strip()
                warnings.append(f"{row['target']} / {row['method']}: {warning}")
    return rows, warnings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semg_hht.evaluation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", help="input manifest of the raw recordings (make_hht's input=)")
    parser.add_argument("--out", required=True, help="folder for results.md, results.csv, folds.csv")
    parser.add_argument("--experiment", action="append", default=[], help="experiment whose folds to use")
    parser.add_argument("--override", action="append", default=[], help="extra config override, e.g. data.n_folds=3")
    parser.add_argument("--sweep", nargs=3, action="append", default=[], metavar=("TARGET", "LABEL", "DIR"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--notch-hz", type=float, default=60.0, help="as make_hht filter.notch_hz")
    parser.add_argument("--notch-harmonics", type=int, default=3)
    parser.add_argument("--ar-order", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tolerance", type=float, default=0.05, help="leakage warning above this accuracy gap")
    parser.add_argument("--limit-subjects", type=int, default=None, help="smoke runs: the first N subjects only")
    parser.add_argument("--hardware", default="unspecified")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(message)s")
    try:
        rows, fold_rows, warnings = [], [], []
        if args.experiment and not args.raw:
            raise SemgError("--experiment needs --raw (the raw recordings' manifest)", fix="pass --raw")
        for experiment in args.experiment:
            r, f, w = classic_rows(args, experiment)
            rows, fold_rows, warnings = rows + r, fold_rows + f, warnings + w
        r, w = sweep_rows(args.sweep, args.tolerance)
        rows, warnings = rows + r, warnings + w
    except SemgError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    command = "python -m semg_hht.evaluation " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    header = "\n".join(
        [
            f"Measured {datetime.date.today().isoformat()} on {args.hardware}. Command: `{command}`",
            "",
            f"Mean ± std over subject-disjoint folds (split=group); split=stratified is the seed's random "
            f"split (the same people on both sides), shown only for the leakage check; {MOVEMENT_NOTE}. "
            "chance = majority-class rate of the validation recordings; subject_vote_acc = one "
            "majority-vote prediction per unseen person (gender only).",
            "",
        ]
    )
    footer = "".join(f"\n> **{w}**\n" for w in warnings)
    md, _ = write_table(out, rows, header, footer)
    write_csv(out / "folds.csv", fold_rows, ["target", "method", "fold", *METRICS, "val_subjects"])
    print(md.read_text())
    for w in warnings:
        log.warning(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
