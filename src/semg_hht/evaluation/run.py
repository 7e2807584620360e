"""The results table on real sEMG (evaluate.py, conf/evaluate.yaml).

For every experiment: the classic features + LDA / RBF SVM on the experiment's own subject folds
(data.filter, data.target, data.classes, data.n_folds, data.split_seed) and on the seed's random
split (the leakage check). Every sweep (a train.py or fit_svm.py multirun over data.fold) adds a
row from its jobs' metrics.json. Writes results.md, results.csv and folds.csv into ``out``.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from semg_hht.config_check import EVALUATE, check_config
from semg_hht.errors import SemgError
from semg_hht.evaluation.aggregate import METRICS, leakage_check
from semg_hht.evaluation.classic import (
    METHODS,
    FeatureSet,
    evaluate_group_folds,
    evaluate_random_split,
    load_features,
    make_classifier,
)
from semg_hht.evaluation.features import feature_vector
from semg_hht.evaluation.table import sweep_folds, table_row, write_table
from semg_hht.hht.settings import FilterSettings, filter_settings
from semg_hht.io import write_csv

log = logging.getLogger("semg_hht.evaluation")
CONF = Path(__file__).resolve().parents[3] / "conf"
SWEEP_KEYS = ("target", "label", "dir")
MOVEMENT_NOTE = (
    "movement = the MuscleTracker hand movements m1..m5 (a real stand-in for the movement target, "
    "not the full/half/invalid range-of-motion classes)"
)


def experiment_data(experiment: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The data.* settings an experiment trains with (the same folds for every method)."""
    gh = GlobalHydra.instance()
    outer, gh.hydra = gh.hydra, None  # evaluate.py runs inside Hydra: compose train.yaml beside it
    try:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SemgError(
            f"experiment={experiment} with overrides {list(overrides)} does not compose: {first}",
            fix="check experiments and overrides (conf/experiment/, conf/train.yaml)",
        ) from None
    finally:
        GlobalHydra.instance().hydra = outer
    return OmegaConf.to_container(cfg.data, resolve=False)


def classic_rows(cfg: DictConfig, experiment: str, filters: FilterSettings) -> tuple[list[dict], list[dict], list[str]]:
    data = experiment_data(experiment, list(cfg.overrides))
    target = data["target"]
    features = OmegaConf.to_container(cfg.features, resolve=True)
    fs = load_features(
        Path(cfg.raw),
        target,
        (data["classes"] or {}).get(target),
        data.get("filter") or {},
        filters,
        features,
        limit_subjects=cfg.limit_subjects,
    )
    log.info("%s: %d recordings, %d subjects, %d features", experiment, len(fs.y), len(set(fs.subjects)), fs.x.shape[1])
    rows, fold_rows, warnings = [], [], []
    for method in cfg.methods:
        r, f, w = method_rows(fs, target, method, data, cfg)
        rows, fold_rows, warnings = rows + r, fold_rows + f, warnings + w
    return rows, fold_rows, warnings


def method_rows(
    fs: FeatureSet, target: str, method: str, data: Mapping[str, Any], cfg: DictConfig
) -> tuple[list[dict], list[dict], list[str]]:
    """The method's subject-fold row, and its random-split row with the leakage check."""
    label = f"classic features + {method.upper()}"
    params = OmegaConf.to_container(cfg.classifiers[method], resolve=True)
    folds = evaluate_group_folds(fs, method, data["n_folds"], data["split_seed"], cfg.seed, params)
    group_row = table_row(target, label, "group", folds)
    rows, warnings = [group_row], []
    try:
        random = evaluate_random_split(fs, method, data["val_fraction"], data["split_seed"], cfg.seed, params)
    except SemgError as err:  # e.g. too few recordings: the group folds still stand
        log.warning("%s / %s: no random split for the leakage check (%s)", target, label, err)
        random = None
    if random is not None:
        warning = leakage_check(random["acc"], group_row["acc_mean"], cfg.leakage_tolerance)
        rows.append(table_row(target, label, "stratified", [random], note=warning or ""))
        if warning:
            warnings.append(f"{target} / {label}: {warning}")
        folds = [*folds, random | {"fold": "random"}]
    fold_rows = [
        {"target": target, "method": label, "fold": f["fold"]}
        | {m: f[m] for m in METRICS}
        | {"val_subjects": " ".join(f["val_subjects"])}
        for f in folds
    ]
    return rows, fold_rows, warnings


def sweep_rows(sweeps: Sequence[Mapping[str, str]], tolerance: float) -> tuple[list[dict], list[str]]:
    rows, warnings = [], []
    for sweep in sweeps:
        path = Path(sweep["dir"])
        folds, split = sweep_folds(path)
        if not folds:
            log.warning("no finished jobs in %s: left out of the table", path)
            continue
        rows.append(table_row(sweep["target"], sweep["label"], split, folds, note=path.name))
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


def command_line(cfg: DictConfig) -> str:
    """`python evaluate.py <overrides>`, as typed (Hydra's record of the command line's overrides)."""
    if "hydra" in cfg:  # composed with return_hydra_config (tests)
        hydra_cfg = cfg.hydra
    elif HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
    else:
        return "python evaluate.py"
    task = list(hydra_cfg.overrides.task)
    own = [o for o in hydra_cfg.overrides.hydra if not str(o).startswith("hydra.mode=")]  # hydra.run.dir=... etc.
    return shlex.join(["python", "evaluate.py", *task, *own])


def check_inputs(cfg: DictConfig) -> list[dict[str, str]]:
    """Every input problem before the minutes of feature extraction; the sweeps as plain dicts."""
    if cfg.experiments and cfg.raw is None:
        raise SemgError(
            f"experiments={list(cfg.experiments)} need the raw recordings' manifest",
            fix="pass raw=<input manifest.csv> (make_hht's input=), or experiments=[] for sweep rows only",
        )
    if cfg.experiments and not Path(cfg.raw).is_file():
        raise SemgError("raw manifest not found", path=cfg.raw, fix="pass raw=<input manifest.csv>")
    unknown = [m for m in cfg.methods if m not in METHODS or m not in cfg.classifiers]
    if unknown:
        raise SemgError(
            f"methods {unknown} have no classifier",
            fix=f"use methods from {sorted(set(METHODS) & set(cfg.classifiers))}",
        )
    known = set(inspect.signature(feature_vector).parameters) - {"signal", "fs"}
    if set(cfg.features) - known:
        raise SemgError(f"unknown features keys {sorted(set(cfg.features) - known)}", fix=f"use {sorted(known)}")
    for key, lo in (("ar_order", 0), ("nperseg", 2)):
        value = cfg.features.get(key)
        if value is not None and (not isinstance(value, int) or value < lo):
            raise SemgError(f"features.{key}={value} must be a whole number >= {lo}", fix="see conf/evaluate.yaml")
    for method in cfg.methods:  # a bad classifier setting fails now, not after the features
        make_classifier(method, OmegaConf.to_container(cfg.classifiers[method], resolve=True), cfg.seed)
    sweeps = OmegaConf.to_container(cfg.sweeps, resolve=True)
    for i, sweep in enumerate(sweeps):
        if not isinstance(sweep, dict) or set(sweep) != set(SWEEP_KEYS):
            raise SemgError(
                f"sweeps[{i}] is {sweep!r}, not a mapping of exactly {', '.join(SWEEP_KEYS)}",
                fix='write sweeps=[{target:movement,label:"CNN tuned",dir:<multirun folder>}]',
            )
        if not Path(str(sweep["dir"])).is_dir():
            raise SemgError(
                f"sweeps[{i}] ({sweep['label']}): multirun folder not found",
                path=sweep["dir"],
                fix="point dir at a train.py / fit_svm.py -m run (its hydra.sweep.dir)",
            )
    return [{k: str(sweep[k]) for k in SWEEP_KEYS} for sweep in sweeps]


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """conf/evaluate.yaml -> results.md, results.csv, folds.csv in cfg.out; returns the rows, the
    per-fold rows, the leakage warnings and the files written."""
    check_config(cfg, EVALUATE)
    sweeps = check_inputs(cfg)
    filters = filter_settings(cfg.filter)
    command = command_line(cfg)
    rows, fold_rows, warnings = [], [], []
    for experiment in cfg.experiments:
        r, f, w = classic_rows(cfg, experiment, filters)
        rows, fold_rows, warnings = rows + r, fold_rows + f, warnings + w
    r, w = sweep_rows(sweeps, cfg.leakage_tolerance)
    rows, warnings = rows + r, warnings + w
    out = Path(cfg.out)
    header = "\n".join(
        [
            f"Measured {datetime.date.today().isoformat()} on {cfg.hardware}. Command: `{command}`",
            "",
            f"Mean ± std over subject-disjoint folds (split=group); split=stratified is the seed's random "
            f"split (the same people on both sides), shown only for the leakage check; {MOVEMENT_NOTE}. "
            "chance = majority-class rate of the validation recordings; subject_vote_acc = one "
            "majority-vote prediction per unseen person (gender only).",
            "",
        ]
    )
    footer = "".join(f"\n> **{w}**\n" for w in warnings)
    md, csv_path = write_table(out, rows, header, footer)
    folds_path = write_csv(out / "folds.csv", fold_rows, ["target", "method", "fold", *METRICS, "val_subjects"])
    print(md.read_text())
    for w in warnings:
        log.warning(w)
    return {
        "rows": rows,
        "folds": fold_rows,
        "warnings": warnings,
        "files": [str(md), str(csv_path), str(folds_path)],
        "command": command,
    }
