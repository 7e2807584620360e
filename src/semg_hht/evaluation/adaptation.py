"""evaluate.py's adaptation rows: how much a few labelled repetitions of a new person buy.

For a sweep marked ``adapt: true``, every fold model is adapted to each of its validation people (and
every final model to each test person), once for every choice of k of the person's repetitions
(adaptation.column) as the support rows; the person's other rows are the query rows it is scored on.
Beside it, on exactly the same (person, support repetitions) splits: the same model unadapted (k=0), and
the classic windowed features with a classifier fitted on the person's support rows alone, or pooled
with every training person's rows. A fold's figure is over all its query rows of all choices.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from semg_hht.adaptation.methods import AdaptSettings
from semg_hht.adaptation.people import Split, adapt_person, support_choices
from semg_hht.classic.adaptive import (
    AdaptiveSettings,
    adaptive_probabilities,
    read_features,
    shared_covariance,
)
from semg_hht.classic.classifiers import METHODS, classic_probabilities, make_classifier, weighted_mean
from semg_hht.classic.recordings import FeatureSet
from semg_hht.data.labels import read_manifest, target_value
from semg_hht.errors import SemgError
from semg_hht.evaluation.table import (
    final_name,
    final_runs,
    fold_table_rows,
    held_out_summary,
    job_fold,
    table_row,
)
from semg_hht.models.encoder import check_channel_order
from semg_hht.models.loading import load_classifier
from semg_hht.prediction import read_inputs, reading_of, true_labels
from semg_hht.reporting.report import classification_metrics, recording_vote
from semg_hht.reporting.sweep import collect_jobs

log = logging.getLogger("semg_hht.evaluation")


@dataclass(frozen=True)
class FoldPeople:
    """A trained model and the people it never saw: a fold model's validation people, or a final model's
    test people."""

    fold: str
    run: Path
    people: list[str]


@dataclass
class Predictions:
    """Query rows of many adaptations of one fold, gathered (true class, prediction, person)."""

    y: list[int] = field(default_factory=list)
    pred: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    # per episode (person, support values): {recording id: (true class, class probabilities)}, kept where a
    # mixture will read them (adaptation.mixture)
    probs: dict[tuple[str, tuple[str, ...]], dict[str, tuple[int, np.ndarray]]] = field(default_factory=dict)

    def add(self, y: np.ndarray, pred: np.ndarray, subject: str) -> None:
        self.y += [int(v) for v in y]
        self.pred += [int(v) for v in pred]
        self.subjects += [subject] * len(y)

    def keep(self, person: str, choice: tuple[str, ...], ids: Sequence[str], y: np.ndarray, probs: np.ndarray) -> None:
        """One episode's query probabilities by recording id, the rows of one recording (its windows) averaged."""
        ids = np.asarray(ids)
        self.probs[person, choice] = {
            rid: (int(y[ids == rid][0]), probs[ids == rid].mean(0)) for rid in dict.fromkeys(ids.tolist())
        }

    def scores(self, fold: str, class_names: Sequence[str]) -> dict[str, Any]:
        scores = classification_metrics(np.array(self.y), np.array(self.pred), class_names, self.subjects)
        scores.pop("report")
        return scores | {"fold": fold, "val_subjects": sorted(set(self.subjects))}


def _people(run: Path, subset: str) -> list[str]:
    path = run / "split.csv"
    if not path.is_file():
        raise SemgError("no split.csv in the run folder", path=run, fix="point the sweep at train.py runs")
    with path.open(newline="") as f:
        return sorted({row["subject"] for row in csv.DictReader(f) if row["subset"] == subset})


def fold_people(sweep: Mapping[str, str]) -> tuple[list[FoldPeople], list[FoldPeople]]:
    """The sweep's fold models with their validation people, and its final models with their test people."""
    root = Path(sweep["dir"])
    folds = [
        FoldPeople(job_fold(row), root / row["job"], _people(root / row["job"], "val"))
        for row in collect_jobs(root, [])
        if row["status"] == "ok"
    ]
    if not folds:
        raise SemgError("no finished fold jobs to adapt", path=root, fix="point dir at a finished train.py -m run")
    finals = (
        [FoldPeople(final_name(r), r, _people(r, "test")) for r in final_runs(Path(sweep["final"]))]
        if sweep.get("final")
        else []
    )
    return folds, finals


def episodes(values: Sequence[str], subjects: Sequence[str], people: Sequence[str], ks: Sequence[int]):
    """(k, person, support values) for every k and every choice of k of the person's values."""
    for k in ks:
        for person in people:
            own = [v for v, s in zip(values, subjects, strict=True) if s == person]
            for choice in support_choices(own, k):
                yield k, person, choice


def _split(values: np.ndarray, subjects: np.ndarray, person: str, choice: tuple[str, ...]) -> Split:
    mine = subjects == person
    chosen = np.isin(values, choice)
    return Split(person, np.flatnonzero(mine & chosen), np.flatnonzero(mine & ~chosen))


def cnn_episodes(
    fold: FoldPeople,
    ks: Sequence[int],
    column: str,
    recipes: Mapping[str, AdaptSettings],
    seed: int,
    batch_size: int,
    channel_order: list[int] | None = None,
    keep_probs: bool = False,
) -> tuple[dict[str, dict[int, Predictions]], dict[int, Predictions], list[str]]:
    """The fold's model adapted in every episode by every recipe: query predictions per recipe and k,
    unadapted (k=0) on the same query rows per k, and the class names. ``channel_order``: the people's
    channels read in this order (adaptation.channel_order, a placement stress test). ``keep_probs``: the
    first recipe's predictions also keep their probabilities by recording id (for the mixture rows)."""
    loaded = load_classifier(fold.run / "checkpoints" / "last.ckpt")
    data = loaded.data_hparams
    if data.get("label_source") != "manifest":
        raise SemgError("adaptation rows need a model trained from a manifest", path=fold.run, fix="check the sweep")
    target, class_names = data.get("target", "movement"), list(loaded.hparams["class_names"])
    manifest = Path(data["data_dir"]) / data["manifest"]
    recordings = [
        r
        for r in read_manifest(manifest, manifest.parent, allow_outside=data.get("allow_outside_paths", False))
        if r.subject in fold.people and target_value(r, target) is not None
    ]
    if {r.subject for r in recordings} != set(fold.people):
        raise SemgError(f"not every person of {fold.people} is in the model's manifest", path=manifest, fix="check it")
    if any(not r.labels.get(column) for r in recordings):
        raise SemgError(f"a row has no {column} value", path=manifest, fix="set adaptation.column to a full column")
    x, recordings = read_inputs(recordings, reading_of([loaded], None), 2, "error")
    if channel_order is not None:
        check_channel_order(channel_order, x.shape[1], "adaptation.channel_order")
        x = x[:, list(channel_order)]
    y = true_labels(recordings, target, class_names)
    values = np.array([r.labels[column] for r in recordings])
    subjects = np.array([r.subject for r in recordings], dtype=object)
    ids = np.array([r.labels.get("recording") or r.path.name for r in recordings])  # make_hht's recording id
    adapted = {name: {k: Predictions() for k in ks} for name in recipes}
    first = next(iter(recipes))
    before = {k: Predictions() for k in ks}
    jobs = list(episodes(values, subjects, fold.people, ks))
    for k, person, choice in tqdm(jobs, desc=f"adapt {fold.run.name}", leave=False, mininterval=5):
        split = _split(values, subjects, person, choice)
        for name, settings in recipes.items():
            result = adapt_person(loaded, x, recordings, y, split, settings, seed, batch_size)
            adapted[name][k].add(y[split.query], result.after.argmax(1), person)
            if keep_probs and name == first:
                adapted[name][k].keep(person, choice, ids[split.query], y[split.query], result.after)
        before[k].add(y[split.query], result.before.argmax(1), person)
    return adapted, before, class_names


def _episodes_in_worker(fold: FoldPeople, *settings, threads: int | None):
    if threads is not None:
        torch.set_num_threads(threads)
    return cnn_episodes(fold, *settings)


@dataclass(frozen=True)
class RowSettings:
    """evaluate.py's adapt.* and adaptation.* (conf/evaluate.yaml), read once."""

    ks: list[int]
    column: str
    recipes: dict[str, AdaptSettings]  # adapt.* named by its method, then adaptation.compare's
    seed: int
    batch_size: int
    n_jobs: int
    classic: list[tuple[str, dict[str, Any], bool]]  # (method, its classifier settings, pooled)
    channel_order: list[int] | None = None  # the CNN rows' placement stress test
    mixture: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (method, its classifier settings)
    mixture_weight: float | None = None  # adaptation.mixture.cnn_weight, as row_settings reads it
    mixture_ceiling: bool = False  # adaptation.mixture.ceiling: also the rows of what either side gets right
    mixture_fit: dict[str, Any] = field(default_factory=dict)  # classic_probabilities' cfg for the classic side
    adaptive: AdaptiveSettings | None = None  # adaptation.adaptive_lda, where enabled


def row_settings(cfg: DictConfig) -> RowSettings:
    """The settings of the adaptation rows; a bad one is one line now, before any work."""
    base = OmegaConf.to_container(cfg.adapt, resolve=True)
    recipes = {base["method"]: AdaptSettings.of(base)}
    compare = cfg.adaptation.compare
    for name, overrides in (OmegaConf.to_container(compare, resolve=True) if compare else {}).items():
        if name in recipes:
            raise SemgError(f"adaptation.compare.{name}: the name is taken", fix="name each recipe differently")
        recipes[name] = AdaptSettings.of(base | dict(overrides or {}))
    ks = list(cfg.adaptation.ks)
    if not ks or min(ks) < 1:
        raise SemgError(f"adaptation.ks={ks}: k counts support repetitions", fix="e.g. adaptation.ks=[1,2]")
    alone, pooled = list(cfg.adaptation.methods), list(cfg.adaptation.pooled_methods)
    mix = cfg.adaptation.mixture
    for method in alone + pooled + list(mix.methods):
        if method not in METHODS or method not in cfg.classifiers:
            raise SemgError(f"adaptation: {method} is not a classifier", fix="use lda and/or svm")
    classic = [
        (method, OmegaConf.to_container(cfg.classifiers[method], resolve=True), together)
        for together, methods in ((False, alone), (True, pooled))
        for method in methods
    ]
    if cfg.adaptation.n_jobs == 0:
        raise SemgError("adaptation.n_jobs=0 runs nothing", fix="use 1 (this process), 2, ... or -1 (every core)")
    n_jobs = cfg.adaptation.n_jobs if cfg.adaptation.n_jobs > 0 else os.cpu_count() or 1
    order = cfg.adaptation.channel_order
    return RowSettings(
        ks, cfg.adaptation.column, recipes, cfg.seed, cfg.adaptation.batch_size, n_jobs, classic,
        None if order is None else [int(c) for c in order],
        [(m, OmegaConf.to_container(cfg.classifiers[m], resolve=True)) for m in mix.methods], mix.cnn_weight,
        bool(mix.ceiling),
        # the classic side's probabilities as the CNN + classic rows get them (one process: an episode is small)
        {"seed": cfg.seed, "calibration_cv": cfg.calibration_cv, "n_jobs": 1},
        AdaptiveSettings.of(cfg.adaptation.adaptive_lda) if cfg.adaptation.adaptive_lda.enabled else None,
    )  # fmt: skip


def voted_episodes(
    fs: FeatureSet, values: Sequence[str], people: Sequence[str], ks: Sequence[int], classify: Callable
) -> dict[int, Predictions]:
    """A classic side per episode, its windows voted into one prediction per query recording: ``classify(split)``
    gives the class probabilities (or one-hot votes) of the query recordings' windows. ``values``: the support
    column's value per recording of ``fs``."""
    subjects = np.array(fs.recordings()[1], dtype=object)
    values = np.asarray(values)
    out = {k: Predictions() for k in ks}
    for k, person, choice in episodes(values, subjects, people, ks):
        split = _split(values, subjects, person, choice)
        rows = fs.rows_of(split.query)
        one_hot = np.eye(len(fs.class_names))[classify(split).argmax(1)]
        y_true, y_pred = recording_vote(fs.unit[rows], fs.y[rows], one_hot)
        out[k].add(y_true, y_pred, person)
    return out


def classic_episodes(
    fs: FeatureSet,
    values: Sequence[str],
    train_people: set[str],
    people: Sequence[str],
    ks: Sequence[int],
    method: str,
    params: Mapping[str, Any],
    seed: int,
    pooled: bool,
) -> dict[int, Predictions]:
    """The classic classifier per episode, fitted on the person's support recordings alone or pooled with
    every recording of ``train_people``."""
    subjects = np.array(fs.recordings()[1], dtype=object)
    base = np.flatnonzero(np.isin(subjects, list(train_people))) if pooled else np.empty(0, dtype=int)

    def classify(split: Split) -> np.ndarray:
        train_rows = fs.rows_of(np.concatenate([base, split.support]))
        model = make_classifier(method, params, seed).fit(fs.x[train_rows], fs.y[train_rows])
        return np.eye(len(fs.class_names))[model.predict(fs.x[fs.rows_of(split.query)])]

    return voted_episodes(fs, values, people, ks, classify)


def adaptive_episodes(
    fs: FeatureSet,
    values: Sequence[str],
    train_people: set[str],
    people: Sequence[str],
    ks: Sequence[int],
    settings: AdaptiveSettings,
) -> dict[int, Predictions]:
    """The adaptive LDA per episode: the person's support recordings with the covariance of ``train_people``."""
    x = read_features(fs.x, fs.names, settings)
    row_people = np.array(fs.subjects, dtype=object)
    pool = np.isin(row_people, list(train_people))
    shared = shared_covariance(x[pool], fs.y[pool], row_people[pool])

    def classify(split: Split) -> np.ndarray:
        support, query = fs.rows_of(split.support), fs.rows_of(split.query)
        return adaptive_probabilities(shared, x[support], fs.y[support], x[query], len(fs.class_names), settings)

    return voted_episodes(fs, values, people, ks, classify)


def classic_probs_episodes(
    fs: FeatureSet, values: Sequence[str], people: Sequence[str], ks: Sequence[int], method: str,
    params: Mapping[str, Any], settings: Mapping[str, Any],
) -> dict[int, Predictions]:  # fmt: skip
    """The mixtures' classic side: per episode, the method fitted on the person's support recordings alone and
    its class probabilities of each query recording (its windows averaged), kept by recording id."""
    labels, subjects = fs.recordings()
    subjects, values = np.array(subjects, dtype=object), np.asarray(values)
    ids = np.array(fs.ids if fs.ids is not None else [""] * len(labels))
    out = {k: Predictions() for k in ks}
    for k, person, choice in episodes(values, subjects, people, ks):
        split = _split(values, subjects, person, choice)
        probs = classic_probabilities(fs, split.support, fs.take(split.query), method, params, settings)
        out[k].keep(person, choice, ids[split.query], labels[split.query], probs)
    return out


def paired(cnn: Predictions, classic: Predictions):
    """Per episode: (person, true class per query recording, the CNN's probabilities, the classic side's), the two
    matched by recording id; any recording or support choice on one side only is refused."""
    fix = "pass hht_dir=<the make_hht folder the sweep trained on> (both sides then share its recording ids)"
    if set(cnn.probs) != set(classic.probs):
        person, choice = sorted(set(cnn.probs) ^ set(classic.probs))[0]
        raise SemgError(
            f"adaptation.mixture: the CNN and the classic features differ in person {person}'s support choices "
            f"(repetitions {list(choice)} are on one side only)",
            fix=fix,
        )
    for (person, choice), mine in cnn.probs.items():
        theirs = classic.probs[person, choice]
        if set(theirs) != set(mine):
            other = sorted(set(mine) ^ set(theirs))[0]
            raise SemgError(
                f"adaptation.mixture: person {person}'s query recordings differ between the CNN and the classic "
                f"features (recording {other!r} is on one side only)",
                fix=fix,
            )
        ids = list(mine)
        yield (
            person,
            np.array([mine[i][0] for i in ids]),
            np.stack([mine[i][1] for i in ids]),
            np.stack([theirs[i][1] for i in ids]),
        )


def mixed(cnn: Predictions, classic: Predictions, weight: float) -> Predictions:
    """Per query recording of every episode, the weighted mean of the adapted CNN's probabilities and the
    classic side's."""
    out = Predictions()
    for person, y, mine, theirs in paired(cnn, classic):
        out.add(y, weighted_mean(mine, theirs, weight).argmax(1), person)
    return out


def either_right(cnn: Predictions, classic: Predictions) -> Predictions:
    """The ceiling of every mixture of the two sides: a query recording counts as right when either side's top
    class is (scored as that class; otherwise as the CNN's). No weighting of the two can score more."""
    out = Predictions()
    for person, y, mine, theirs in paired(cnn, classic):
        out.add(y, np.where(theirs.argmax(1) == y, y, mine.argmax(1)), person)
    return out


def joined(fs: FeatureSet, other: FeatureSet) -> FeatureSet:
    """Two feature sets as one (the development people and the test people), recordings renumbered."""
    shift = len(fs.paths)
    return FeatureSet(
        np.concatenate([fs.x, other.x]), np.concatenate([fs.y, other.y]), fs.class_names,
        [*fs.subjects, *other.subjects], [*fs.paths, *other.paths], fs.names,
        np.concatenate([fs.unit, other.unit + shift]),
        None if fs.ids is None or other.ids is None else [*fs.ids, *other.ids],
    )  # fmt: skip


@dataclass
class Context:
    """What the adaptation rows of one experiment need from evaluate.py."""

    target: str  # the table's target column
    fs: FeatureSet  # windowed classic features of the development people
    values: list[str]  # the support column per development recording
    test_fs: FeatureSet | None
    test_values: list[str]
    window_label: str  # e.g. " on 250 ms windows"


def adaptation_rows(ctx: Context, cfg: RowSettings, sweeps: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Table rows and folds.csv rows of every sweep marked adapt whose target is ctx.target (its CNN
    unadapted and adapted by every recipe, per k), then once per target the classic rows on the first
    such sweep's folds and test people."""
    rows, fold_rows = [], []
    mine = [s for s in sweeps if s["target"] == ctx.target]
    for sweep in mine:
        for label, cv, held in cnn_rows(sweep, cfg, ctx):
            _add(rows, fold_rows, ctx.target, label, cv, held)
        sweep["used"] = True
    if mine:
        for label, cv, held in classic_rows(ctx, cfg, *fold_people(mine[0])):
            _add(rows, fold_rows, ctx.target, label, cv, held)
    return rows, fold_rows


def _add(rows: list, fold_rows: list, target: str, label: str, cv: list[dict], held: list[dict]) -> None:
    rows.append(table_row(target, label, "group", cv, test=held_out_summary(held) if held else None))
    fold_rows += fold_table_rows(target, label, cv + held)


def cnn_rows(sweep: Mapping[str, str], cfg: RowSettings, ctx: Context):
    """(label, fold scores, final models' test scores) of the sweep's CNN: unadapted on the query rows of
    the smallest k, then adapted by every recipe for every k, then the first recipe mixed with every
    adaptation.mixture method."""
    folds, finals = fold_people(sweep)
    settings = (cfg.ks, cfg.column, cfg.recipes, cfg.seed, cfg.batch_size, cfg.channel_order, bool(cfg.mixture))
    # every trained model on its own: side by side in n_jobs processes, one torch thread each (a support
    # batch is too small to keep two threads busy, two processes are not)
    jobs = [*folds, *finals]
    results = Parallel(n_jobs=min(cfg.n_jobs, len(jobs)))(
        delayed(_episodes_in_worker)(f, *settings, threads=1 if cfg.n_jobs > 1 else None) for f in jobs
    )
    cv, test = results[: len(folds)], results[len(folds) :]
    names = cv[0][2]

    def scores(results, runs, pick) -> list[dict]:
        return [pick(r).scores(f.fold, names) for r, f in zip(results, runs, strict=True)]

    k0 = min(cfg.ks)
    label = sweep["label"] + (f", channels read as {cfg.channel_order}" if cfg.channel_order else "")
    yield (
        f"{label}, k=0: unadapted, on the k={k0} query rows",
        scores(cv, folds, lambda r: r[1][k0]),
        scores(test, finals, lambda r: r[1][k0]),
    )
    for name in cfg.recipes:
        for k in cfg.ks:
            pick = lambda r, name=name, k=k: r[0][name][k]  # noqa: E731
            yield f"{label}, adapted ({name}), k={k}", scores(cv, folds, pick), scores(test, finals, pick)
    first = next(iter(cfg.recipes))
    test_people = sorted({p for f in finals for p in f.people}) if ctx.test_fs is not None else []
    both = joined(ctx.fs, ctx.test_fs) if test_people else None
    for method, params in cfg.mixture:
        run, weight = (cfg.ks, method, params, cfg.mixture_fit), cfg.mixture_weight
        classic = [classic_probs_episodes(ctx.fs, ctx.values, f.people, *run) for f in folds]
        # the classic side of the test people is one deterministic fit per episode, shared by every final model
        held = classic_probs_episodes(both, ctx.values + ctx.test_values, test_people, *run) if both else None
        for k in cfg.ks:
            name = f"{label}, adapted ({first}) + classic {method.upper()} of the person alone{ctx.window_label}, k={k}"
            pairs = zip(cv, classic, folds, strict=True)
            fold_scores = [mixed(r[0][first][k], c[k], weight).scores(f.fold, names) for r, c, f in pairs]
            held_pairs = zip(test, finals, strict=True) if held else ()
            test_scores = [mixed(r[0][first][k], held[k], weight).scores(f.fold, names) for r, f in held_pairs]
            yield name, fold_scores, test_scores
        if cfg.mixture_ceiling:
            for k in cfg.ks:
                name = (
                    f"{label}, adapted ({first}) or classic {method.upper()} of the person alone{ctx.window_label}: "
                    f"either right (the ceiling of any mixture of the two, not a method), k={k}"
                )
                pairs = zip(cv, classic, folds, strict=True)
                fold_scores = [either_right(r[0][first][k], c[k]).scores(f.fold, names) for r, c, f in pairs]
                held_pairs = zip(test, finals, strict=True) if held else ()
                test_scores = [either_right(r[0][first][k], held[k]).scores(f.fold, names) for r, f in held_pairs]
                yield name, fold_scores, test_scores


def classic_rows(ctx: Context, cfg: RowSettings, folds: list[FoldPeople], finals: list[FoldPeople]):
    """(label, fold scores, test scores) of every classic method fitted on the person alone (and, for
    adaptation.pooled_methods, pooled with the training people; with adaptation.adaptive_lda, the adaptive LDA),
    per k, on the CNN's folds and test people."""
    everyone = {s for s in ctx.fs.subjects if s}
    test = [f for f in finals[:1] if ctx.test_fs is not None]  # one deterministic fit scores the test people
    both = joined(ctx.fs, ctx.test_fs) if test else None
    sides = []  # (row label, its episodes given the features, support values, training people and people scored)
    for method, params, pooled in cfg.classic:
        how = "pooled with the training people" if pooled else "the person alone"
        settings = {"ks": cfg.ks, "method": method, "params": params, "seed": cfg.seed, "pooled": pooled}
        sides.append(
            (f"classic features + {method.upper()}{ctx.window_label}, {how}", partial(classic_episodes, **settings))
        )
    if cfg.adaptive is not None:
        label = f"classic features + adaptive LDA{ctx.window_label}"
        label += " (the person's class means, the training people's covariance)"
        sides.append((label, partial(adaptive_episodes, ks=cfg.ks, settings=cfg.adaptive)))
    for label, run in sides:
        cv = [run(ctx.fs, ctx.values, everyone - set(f.people), f.people) for f in folds]
        held = [run(both, ctx.values + ctx.test_values, everyone, f.people) for f in test]
        for k in cfg.ks:
            yield (
                f"{label}, k={k}",
                [c[k].scores(f.fold, ctx.fs.class_names) for c, f in zip(cv, folds, strict=True)],
                [h[k].scores("test", ctx.fs.class_names) for h in held],
            )
