"""The results table on real sEMG (evaluate.py, conf/evaluate.yaml).

For every experiment: the classic features + LDA / RBF SVM on the experiment's own subject folds
(data.filter, data.target, data.classes, data.n_folds, data.split_seed) and on the seed's random
split (the leakage check). The raw recordings are read as make_hht reads them: its whole config (hht_dir's
conversion.yaml, or conf/hht.yaml with evaluate's make_hht=[...] overrides: preset, reader, filter, segment, ...),
and with hht_dir exactly the recordings (session segments) make_hht converted there, under its recording ids.
Every sweep (a train.py or fit_svm.py multirun over data.fold) adds a
row from its jobs' metrics.json. Writes results.md, results.csv and folds.csv into ``out``.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import logging
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from semg_hht.classic.classifiers import METHODS, make_classifier
from semg_hht.classic.features import feature_vector
from semg_hht.classic.recordings import FeatureSet, load_features, manifest_rows, raw_recordings
from semg_hht.config_check import EVALUATE, check_config
from semg_hht.data.labels import row_filter, row_matches
from semg_hht.errors import SemgError
from semg_hht.evaluation.adaptation import Context as AdaptationContext
from semg_hht.evaluation.adaptation import adaptation_rows
from semg_hht.evaluation.adaptation import row_settings as adaptation_settings
from semg_hht.evaluation.classic import (
    evaluate_group_folds,
    evaluate_random_split,
    evaluate_test_set,
    person_standardized,
)
from semg_hht.evaluation.ensemble import CnnRun, Units, cnn_runs, ensemble_scores, sweep_calibrated
from semg_hht.evaluation.hht_features import hht_feature_sets
from semg_hht.evaluation.table import (
    display_rows,
    final_name,
    final_runs,
    fold_table_rows,
    held_out_summary,
    sweep_folds,
    table_row,
    write_table,
)
from semg_hht.hht.record import RECORD, check_conversion, differences, read_record, recorded, recorded_settings
from semg_hht.hht.settings import Settings, settings_from_cfg
from semg_hht.io import refuse_overwrite, write_csv
from semg_hht.reporting.aggregate import METRICS, leakage_check
from semg_hht.reporting.table import print_table

log = logging.getLogger("semg_hht.evaluation")
SWEEP_KEYS = ("target", "label", "dir")
# optional: final (a run whose metrics.json has test figures, or a multirun of such runs, e.g. one per training
# seed: the row's test figure is then their mean), ensemble (true: also a CNN + classic row), adapt (true: also
# the few-shot adaptation rows, evaluation/adaptation.py)
SWEEP_OPTIONAL = ("final", "ensemble", "adapt")
# what the classes of a dataset's experiments are (experiment name prefix -> note in results.md's header)
DATA_NOTES = {
    "muscletracker": "movement = the MuscleTracker hand movements m1..m5 (a real stand-in for the movement "
    "target, not the full/half/invalid range-of-motion classes)"
}


def config_dir(cfg: DictConfig) -> str | None:
    """The config folder ``cfg`` was composed from (Hydra's record of its primary config source, present
    when composed with return_hydra_config); None when unknown."""
    sources = OmegaConf.select(cfg, "hydra.runtime.config_sources", default=None) or []
    return next((str(s.path) for s in sources if s.provider == "main" and s.schema == "file"), None)


@contextlib.contextmanager
def compose_api(conf_dir: str | None) -> Iterator[None]:
    """Hydra's compose API ready for train.yaml: inside evaluate.py the running app already searches
    conf/ (train.yaml lies beside evaluate.yaml); elsewhere (tests, scripts) a context on ``conf_dir``."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    if conf_dir is None:
        raise SemgError("no config folder to compose train.yaml from", fix="pass conf_dir=<the repository's conf/>")
    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base="1.3"):
        yield


def experiment_data(experiment: str, overrides: Sequence[str] = (), conf_dir: str | None = None) -> dict[str, Any]:
    """The data.* settings an experiment trains with (the same folds for every method). A mapping given
    whole replaces the experiment's (Hydra merges it: "data.filter={}" kept {device: biopac})."""
    overrides = list(overrides)
    try:
        with compose_api(conf_dir):
            cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
        for override in OverridesParser.create().parse_overrides(overrides):
            value = override.value()
            if override.is_force_add() or override.is_add() or override.is_delete() or not isinstance(value, dict):
                continue
            OmegaConf.update(cfg, override.key_or_group, value, merge=False)
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SemgError(
            f"experiment={experiment} with overrides {overrides} does not compose: {first}",
            fix="check experiments and overrides (conf/experiment/, conf/train.yaml)",
        ) from None
    return OmegaConf.to_container(cfg.data, resolve=True)


def input_settings(cfg: DictConfig) -> Settings:
    """make_hht's settings for the raw recordings, so both read them alike with the same defaults: those hht_dir
    was converted with (its conversion.yaml, hht/record.py), else conf/hht.yaml with ``make_hht`` (the overrides
    make_hht.py was given: preset, reader.*, filter.*, segment.*, ...). With hht_dir, refused when its matrices
    were made with other settings, or make_hht gives others than its record."""
    given = [str(o) for o in cfg.make_hht]
    own = [o for o in given if o.split("=", 1)[0].lstrip("+~") in ("input", "output")]
    if own:
        raise SemgError(f"make_hht={given} names {own[0].split('=')[0]}", fix="give raw= and hht_dir= instead")
    record = read_record(Path(cfg.hht_dir)) if cfg.hht_dir is not None else None
    if record is None or given:
        settings, source = given_settings(cfg, given), f"make_hht={given}"
    else:
        settings, source = recorded_settings(Path(cfg.hht_dir), record, cfg.raw or "."), f"its {RECORD}"
    if record is not None and given and (differ := differences(recorded(settings), record)):
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise SemgError(
            f"make_hht={given} disagrees with how hht_dir was converted ({RECORD}: {'; '.join(differ[:3])}{more})",
            path=cfg.hht_dir,
            fix=f"drop make_hht= (evaluate.py reads hht_dir's {RECORD})",
        )
    if cfg.hht_dir is not None:
        check_conversion(Path(cfg.hht_dir), settings, source, fix=None if record is None else REDO)
    return settings


REDO = "convert hht_dir again with make_hht.py (its record does not describe its matrices)"


def given_settings(cfg: DictConfig, given: list[str]) -> Settings:
    """conf/hht.yaml with make_hht.py's overrides ``given``."""
    where = [f"input={cfg.raw or '.'}", f"output={cfg.hht_dir or '.'}"]
    try:
        with compose_api(config_dir(cfg)):
            composed = compose("hht", overrides=[*given, *where])
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SemgError(f"make_hht={given} does not compose: {first}", fix="use make_hht.py's overrides") from None
    try:
        return settings_from_cfg(composed)
    except SemgError as err:
        raise SemgError(f"make_hht={given}: {err.problem}", fix=err.fix or "see conf/hht.yaml") from None


def classic_rows(
    cfg: DictConfig,
    experiment: str,
    settings: Settings,
    sweeps: Sequence[Mapping[str, Any]] = (),
    adapting: Sequence[dict] = (),
) -> tuple[list[dict], list[dict], list[str], str]:
    """Classic features (whole recordings, and windows voted per recording) and the linear control
    on the HHT matrices, each on the experiment's subject folds and, with a test set, on it; the
    CNN + classic rows of the ``sweeps`` marked ensemble whose target is this experiment's, and the
    adaptation rows of the ``adapting`` sweeps (evaluation/adaptation.py) with their classic twins; and what
    the rows were given (results.md's header: the target, its classes, the data)."""
    data = experiment_data(experiment, list(cfg.overrides), config_dir(cfg))
    target = data["target"]
    features = OmegaConf.to_container(cfg.features, resolve=True)
    dev, test = split_rows(cfg, data, settings)
    mixing = [s for s in sweeps if s["target"] == row_target(data)]
    units = Units.of(dev[0], target, dev[1]), test and Units.of(test[0], target, dev[1])
    # the CNN side of every mixture, matched by recording id and checked now, before any feature
    runs = {s["label"]: cnn_runs(s, *units, dev[1], data) for s in mixing}
    sets = [("", cfg.methods, None)]
    if cfg.window.enabled:
        sets.append((f" on {cfg.window.length_s * 1000:g} ms windows, vote", cfg.window.methods, cfg.window))
    rows, fold_rows, warnings = [], [], []
    for suffix, methods, window in sets:
        load = {"features": features, "window": OmegaConf.to_container(window) if window else None}
        load |= {"reader": settings.reader}
        fs = load_features(Path(cfg.raw), target, dev[1], {}, settings.filter, rows=dev[0], **load)
        test_fs = load_features(test[1], target, dev[1], {}, settings.filter, rows=test[0], **load) if test else None
        log.info("%s%s: %d rows of %d subjects", experiment, suffix, len(fs.y), len(set(fs.subjects)))
        for calibrated in calibrations(cfg, fs):
            if calibrated:
                fs, test_fs = person_standardized(fs), test_fs and person_standardized(test_fs)
            for method in methods:
                label = f"classic features + {method.upper()}{suffix}{CALIBRATED if calibrated else ''}"
                r, f, w = method_rows(fs, test_fs, row_target(data), label, method, data, cfg)
                rows, fold_rows, warnings = rows + r, fold_rows + f, warnings + w
            if bool(window) == cfg.ensemble.window:
                mixed = {s["label"]: runs[s["label"]] for s in mixing if s["calibrated"] == calibrated}
                r, f = mixture_rows(fs, test_fs, data, cfg, mixed)
                for s in mixing:
                    s["used"] = s["used"] or s["label"] in mixed
                rows, fold_rows = rows + r, fold_rows + f
            if bool(window) == cfg.window.enabled and not calibrated:  # (read with no adapt sweep too)
                settings = adaptation_settings(cfg)
                ctx = AdaptationContext(
                    row_target(data), fs, [str(r.get(settings.column) or "") for r in dev[0]], test_fs,
                    [str(r.get(settings.column) or "") for r in test[0]] if test else [], suffix.removesuffix(", vote"),
                )  # fmt: skip
                r, f = adaptation_rows(ctx, settings, adapting)
                rows, fold_rows = rows + r, fold_rows + f
    if cfg.hht_dir is not None:
        for calibrated in calibrations(cfg, fs):
            norm = {"enabled": True, "log_ref": cfg.person_norm.log_ref, "calibrate_on": None} if calibrated else None
            fs, test_fs = hht_feature_sets(Path(cfg.hht_dir), data | {"person_norm": norm}, cfg.limit_subjects)
            label = f"linear control: HHT matrices, PCA {cfg.classifiers.pca_lda.n_components} + LDA"
            label += CALIBRATED if calibrated else ""
            r, f, w = method_rows(fs, test_fs, row_target(data), label, "pca_lda", data, cfg)
            rows, fold_rows, warnings = rows + r, fold_rows + f, warnings + w
    converted = f" as converted in {cfg.hht_dir}" if cfg.hht_dir is not None else ""
    what = f"{row_target(data)} = {', '.join(dev[1])} ({len(dev[1])} classes) of {cfg.raw}{converted}"
    what += f" (experiment={experiment})"
    return rows, fold_rows, warnings, what


CALIBRATED = ", per-person standardised"


def dataset(cfg: DictConfig, prefix: str) -> bool:
    """Whether the table is of one dataset's experiments (named after it: DATA_NOTES)."""
    return any(str(e).startswith(prefix) for e in cfg.experiments)


def row_target(data: Mapping[str, Any]) -> str:
    """The table's target column: the target and, when the experiment keeps one device, that device
    (the same target on two amplifiers is two rows of people), e.g. `movement (biopac)`."""
    device = (data.get("filter") or {}).get("device")
    return f"{data['target']} ({device})" if isinstance(device, str) else data["target"]


def calibrations(cfg: DictConfig, fs: FeatureSet | None = None) -> list[bool]:
    """Plain rows, and with person_norm.enabled also the per-person calibrated rows (their own rows:
    they need unlabelled recordings of every new person). Not for a target that is one value per
    person (gender): centring each person on their own mean removes exactly that."""
    if not cfg.person_norm.enabled:
        return [False]
    if fs is not None and all(
        len(set(fs.y[np.asarray(fs.subjects, dtype=object) == p])) == 1 for p in set(fs.subjects)
    ):
        log.info("per-person rows left out: the target is one value per person")
        return [False]
    return [False, True]


def split_rows(cfg: DictConfig, data: Mapping[str, Any], settings: Settings):
    """(development rows, classes) and, with a test set, (test rows, their manifest). Without
    test_raw the test set is raw's rows passing ``test_filter`` (null: the experiment's
    data.test_filter), taken off the development side exactly as the CNN's DataModule does; with
    test_raw it is that manifest's rows passing ``test_filter`` (null: all), and the development side
    still leaves out the experiment's own test people, so its folds stay the CNN's. Rows are
    classic.raw_recordings' (make_hht's discovery and, with hht_dir, the recordings it converted)."""
    raw = Path(cfg.raw)
    target = data["target"]
    classes = (data["classes"] or {}).get(target)
    rows, classes = manifest_rows(raw, target, classes, data.get("filter") or {}, found=found_rows(raw, cfg, settings))
    own = row_filter(data.get("test_filter") or {})
    given = None if cfg.test_filter is None else row_filter(OmegaConf.to_container(cfg.test_filter, resolve=True))
    if cfg.test_raw is not None:
        test_manifest = Path(cfg.test_raw)
        test_rows, _ = manifest_rows(test_manifest, target, classes, {}, found=found_rows(test_manifest, cfg, settings))
        test_rows = [r for r in test_rows if row_matches(r, given or {})]
        rows = [r for r in rows if not (own and row_matches(r, own))]
    else:
        wanted = own if given is None else given
        if not wanted:
            return (limited(rows, cfg.limit_subjects), classes), None
        test_manifest, test_rows = raw, [r for r in rows if row_matches(r, wanted)]
        rows = [r for r in rows if not row_matches(r, wanted)]
    rows = limited(rows, cfg.limit_subjects)
    if not test_rows:
        raise SemgError(f"no test rows match test_filter={cfg.test_filter}", path=test_manifest, fix="check it")
    shared = {r.get("subject") for r in rows} & {r.get("subject") for r in test_rows} - {None, ""}
    if shared:
        raise SemgError(
            f"subjects {sorted(shared)[:5]} are on both the development and the test side",
            path=test_manifest,
            fix="hold whole people out (test_filter={subject: [...]})",
        )
    return (rows, classes), (test_rows, test_manifest)


def found_rows(manifest: Path, cfg: DictConfig, settings: Settings) -> list[dict[str, str]]:
    """An input's recordings (classic.raw_recordings): with hht_dir those make_hht converted there; a second
    input (test_raw) whose whole recordings were converted elsewhere is read whole."""
    segmented = settings.segment.enabled
    hht_dir = None if cfg.hht_dir is None else Path(cfg.hht_dir)
    if hht_dir is not None and manifest != Path(cfg.raw) and not segmented:
        with contextlib.suppress(SemgError):
            return raw_recordings(manifest, settings.inputs, hht_dir)
        hht_dir = None
    return raw_recordings(manifest, settings.inputs, hht_dir, segmented)


def limited(rows: list[Mapping[str, str]], limit_subjects: int | None) -> list[Mapping[str, str]]:
    """Smoke runs: the development rows of the first N subjects (the test set stays whole)."""
    if limit_subjects is None:
        return rows
    keep = sorted({r["subject"] for r in rows})[:limit_subjects]
    return [r for r in rows if r["subject"] in keep]


def method_rows(
    fs: FeatureSet,
    test: FeatureSet | None,
    target: str,
    label: str,
    method: str,
    data: Mapping[str, Any],
    cfg: DictConfig,
) -> tuple[list[dict], list[dict], list[str]]:
    """The method's subject-fold row (with its test-set figure), and its random-split row with the leakage check."""
    params = OmegaConf.to_container(cfg.classifiers[method], resolve=True)
    folds = evaluate_group_folds(fs, method, data["n_folds"], data["split_seed"], cfg.seed, params)
    held_out = evaluate_test_set(fs, test, method, cfg.seed, params) if test is not None else None
    group_row = table_row(target, label, "group", folds, test=held_out)
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
    return rows, fold_table_rows(target, label, folds + ([held_out] if held_out else [])), warnings


def mixture_rows(
    fs: FeatureSet,
    test: FeatureSet | None,
    data: Mapping[str, Any],
    cfg: DictConfig,
    runs: Mapping[str, tuple[list[CnnRun], list[CnnRun]]],
) -> tuple[list[dict], list[dict]]:
    """CNN + classic rows: each sweep's CNN probabilities (its cnn_runs, by label) mixed with
    ensemble.method's on these features."""
    rows, fold_rows, target = [], [], row_target(data)
    method = cfg.ensemble.method
    params = OmegaConf.to_container(cfg.classifiers[method], resolve=True)
    settings = {"seed": cfg.seed, "calibration_cv": cfg.calibration_cv} | {
        k: cfg.ensemble[k] for k in ("cnn_weight", "n_jobs")
    }
    windows = f" on {cfg.window.length_s * 1000:g} ms windows" if cfg.ensemble.window else ""
    for name, sweep_runs in runs.items():
        folds, held_out = ensemble_scores(fs, test, sweep_runs, method, params, settings)
        label = f"{name} + classic {method.upper()}{windows}, mean probability"
        rows.append(table_row(target, label, "group", folds, test=held_out_summary(held_out) if held_out else None))
        fold_rows += fold_table_rows(target, label, folds + held_out)
    return rows, fold_rows


def sweep_rows(sweeps: Sequence[Mapping[str, str]], tolerance: float) -> tuple[list[dict], list[dict], list[str]]:
    """A row per sweep (its folds; its final models' mean test figure), folds.csv's rows of each (every
    fold and every final model), and the leakage warnings of methods run on both splits."""
    rows, fold_rows, warnings = [], [], []
    for sweep in sweeps:
        path = Path(sweep["dir"])
        folds, split = sweep_folds(path)
        if not folds:
            log.warning("no finished jobs in %s: left out of the table", path)
            continue
        finals = [final_scores(run) for run in final_runs(Path(sweep["final"]))] if sweep.get("final") else []
        test = held_out_summary(finals) if finals else None
        rows.append(table_row(sweep["target"], sweep["label"], split, folds, note=path.name, test=test))
        fold_rows += fold_table_rows(sweep["target"], sweep["label"], folds + finals)
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
    return rows, fold_rows, warnings


def final_scores(run_dir: Path) -> dict[str, Any]:
    """The test-set figures of one final model: a train.py run's test/* metrics, or a predict.py run's
    (labelled input) scores; folds.csv names them by the run's seed."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise SemgError("no metrics.json in the final model's run folder", path=run_dir, fix="point final at a run")
    metrics = json.loads(path.read_text())
    fold = {"fold": final_name(run_dir)}
    if "test/acc" in metrics:
        people = metrics.get("test/subjects") or []
        return {m: metrics.get(f"test/{m}") for m in METRICS} | {"val_subjects": people} | fold
    if "targets" in metrics:
        first = next(iter(metrics["targets"].values()))
        return {m: first.get(m) for m in METRICS} | {"val_subjects": first.get("subjects") or []} | fold
    raise SemgError("metrics.json holds no test figures", path=path, fix="run train.py with a test set, or predict.py")


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
    if cfg.experiments and not Path(cfg.raw).exists():  # a manifest or a folder, as make_hht's input=
        raise SemgError("raw input not found", path=cfg.raw, fix="pass raw=<make_hht's input: manifest.csv or folder>")
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
        if not isinstance(sweep, dict) or not set(SWEEP_KEYS) <= set(sweep) <= {*SWEEP_KEYS, *SWEEP_OPTIONAL}:
            raise SemgError(
                f"sweeps[{i}] is {sweep!r}, not a mapping of exactly {', '.join(SWEEP_KEYS)}",
                fix='write sweeps=[{target:movement,label:"CNN tuned",dir:<multirun folder>,final:<run folder>}]',
            )
        if not Path(str(sweep["dir"])).is_dir():
            raise SemgError(
                f"sweeps[{i}] ({sweep['label']}): multirun folder not found",
                path=sweep["dir"],
                fix="point dir at a train.py / fit_svm.py -m run (its hydra.sweep.dir)",
            )
        for flag in ("ensemble", "adapt"):
            if sweep.get(flag) not in (None, True, False):
                raise SemgError(f"sweeps[{i}].{flag}={sweep[flag]!r} must be true or false", fix=f"{flag}:true")
    if any(s.get("ensemble") for s in sweeps):
        if cfg.ensemble.method not in cfg.classifiers:
            raise SemgError(f"ensemble.method={cfg.ensemble.method} has no classifier", fix="use a key of classifiers")
        if cfg.ensemble.n_jobs == 0:
            raise SemgError("ensemble.n_jobs=0 runs nothing", fix="use 1 (one process), 2, ... or -1 (every core)")
        if cfg.ensemble.window and not cfg.window.enabled:
            raise SemgError("ensemble.window=true needs the windowed features", fix="window.enabled=true")
    if any(s.get("adapt") for s in sweeps):
        if not cfg.experiments:
            raise SemgError("adaptation rows need the experiment of their sweep", fix="list it in experiments")
        settings = adaptation_settings(cfg)  # a bad setting fails now, not after the features
        if settings.mixture and cfg.hht_dir is None:
            raise SemgError(
                "adaptation.mixture matches the CNN's and the classic features' recordings by make_hht's ids",
                fix="pass hht_dir=<the make_hht folder the sweeps trained on>, or adaptation.mixture.methods=[]",
            )
        lda_alone = any(method == "lda" and not pooled for method, _, pooled in settings.classic)
        if lda_alone and 1 in settings.ks and not cfg.window.enabled:
            # whole recordings: k=1 gives the person-alone LDA one row per class; LDA needs more rows than classes
            raise SemgError(
                "adaptation: LDA on one whole support recording per class of the person alone cannot be fitted",
                fix="keep window.enabled=true (each recording gives many windows), or drop lda from adaptation.methods",
            )
    return [
        {k: str(v) for k, v in sweep.items() if v is not None and k not in ("ensemble", "adapt")}
        | ({"calibrated": sweep_calibrated(Path(sweep["dir"]))} if sweep.get("ensemble") else {})
        | ({"adapt": True} if sweep.get("adapt") else {})
        for sweep in sweeps
    ]


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """conf/evaluate.yaml -> results.md, results.csv, folds.csv in cfg.out; returns the rows, the
    per-fold rows, the leakage warnings and the files written."""
    check_config(cfg, EVALUATE)
    for name in ("results.md", "results.csv", "folds.csv"):  # an earlier table is not replaced in silence
        refuse_overwrite(Path(str(cfg.out)) / name, cfg.overwrite)
    sweeps = check_inputs(cfg)
    settings = input_settings(cfg)
    command = command_line(cfg)
    rows, fold_rows, warnings = [], [], []
    mixtures = [{**s, "used": False} for s in sweeps if "calibrated" in s]
    adapting = [{**s, "used": False} for s in sweeps if s.get("adapt")]
    described = []
    for experiment in cfg.experiments:
        r, f, w, what = classic_rows(cfg, experiment, settings, mixtures, adapting)
        rows, fold_rows, warnings, described = rows + r, fold_rows + f, warnings + w, [*described, what]
    unused = [s["label"] for s in mixtures if not s.get("used")]
    if unused:  # a row asked for must not go missing quietly
        raise SemgError(
            f"no CNN + classic row for sweeps {unused}: no experiment has their target (or, calibrated, "
            "person_norm.enabled is false)",
            fix="add the sweep's experiment to experiments (and person_norm.enabled=true for calibrated sweeps)",
        )
    unused = [s["label"] for s in adapting if not s.get("used")]
    if unused:
        raise SemgError(
            f"no adaptation rows for sweeps {unused}: no experiment has their target (or window.enabled is false)",
            fix="add the sweep's experiment to experiments",
        )
    r, f, w = sweep_rows(sweeps, cfg.leakage_tolerance)
    rows, fold_rows, warnings = rows + r, fold_rows + f, warnings + w
    out = Path(cfg.out)
    header = "\n".join(
        [
            f"Measured {datetime.date.today().isoformat()} on {cfg.hardware}. Command: `{command}`",
            "",
            *([f"Data: {'; '.join(described)}.", ""] if described else []),
            "Mean ± std over subject-disjoint folds (split=group); split=stratified is the seed's random "
            "split (the same people on both sides), shown only for the leakage check; "
            + "".join(f"{note}. " for prefix, note in DATA_NOTES.items() if dataset(cfg, prefix))
            + "chance = majority-class rate of the validation recordings; subject_vote_acc = one "
            "majority-vote prediction per unseen person (gender only).",
            "",
        ]
    )
    footer = "".join(f"\n> **{w}**\n" for w in warnings)
    md, csv_path = write_table(out, rows, header, footer)
    folds_path = write_csv(out / "folds.csv", fold_rows, ["target", "method", "fold", *METRICS, "val_subjects"])
    print_table(*display_rows(rows), title=f"{md}:")
    for w in warnings:
        log.warning(w)
    return {
        "rows": rows,
        "folds": fold_rows,
        "warnings": warnings,
        "files": [str(md), str(csv_path), str(folds_path)],
        "command": command,
    }
