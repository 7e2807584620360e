"""predict(cfg) -> rows: the whole of predict.py.

The CNN target (movement) from one checkpoint or the mean class probabilities of several (an
ensemble, e.g. the k fold models), and with an SVM its target (gender) on frozen encoder features:
the encoder of the one checkpoint it was fitted on, or the random encoder of the ``fit_svm.py
ckpt=null`` baseline. A person's adapted checkpoint that carries a classic side (adapt.py raw=...) serves
its mixture with raw= (the raw recordings the input was converted from). Inputs are a folder, one .npz or a
manifest CSV; where the true labels are known, the predictions are also scored (metrics.json, confusion
matrices, a one-line summary).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from semg_hht.classic.person import ClassicSide, RecordingFeatures, recording_features
from semg_hht.config_check import PREDICT, check_config
from semg_hht.data.datamodule import renamed_data_keys
from semg_hht.data.labels import Recording, read_manifest, row_filter, row_matches, target_value
from semg_hht.data.matrices import axis_text, check_trained_axis, frequency_axis, load_matrices, npz_files, to_reference
from semg_hht.data.person_norm import person_standardize
from semg_hht.errors import SemgError, say
from semg_hht.filename_scheme import FilenameScheme
from semg_hht.io import refuse_overwrite, save_figure, write_csv, write_json
from semg_hht.models.calibration import scaled
from semg_hht.models.inference import extract_features, pick_device
from semg_hht.models.loading import LoadedCheckpoint, load_classifier, random_encoder
from semg_hht.reporting.plots import confusion_figure
from semg_hht.reporting.report import recording_metrics
from semg_hht.reporting.table import format_table
from semg_hht.svm.persist import load_svm

log = logging.getLogger(__name__)

# What must agree between the checkpoints of an ensemble: their outputs are averaged class by class.
ENSEMBLE_KEYS = ("class_names", "in_channels", "input_size")
RANDOM_BASELINE = "random-encoder SVM baseline (fit_svm.py ckpt=null, seed 001's method 1)"


@dataclass
class Reading:
    """How matrices are read for the models: as they were trained on them."""

    in_channels: int
    input_size: int
    scaling: str
    scheme: FilenameScheme | None  # the training data's file-name scheme (labels of Test*/named files)
    data_dir: Path | None
    person_norm: dict[str, Any] | None = None  # data.person_norm the model was trained with
    scale_reference: float | None = None  # data.scaling=dataset: the training set's number
    frequency_axis: tuple[str, tuple[float, float] | None] | None = None  # the training matrices' (None: unknown)

    def prepare(
        self, x: torch.Tensor, recordings: Sequence[Recording], calibration: np.ndarray | None = None
    ) -> torch.Tensor:
        """Loaded matrices -> this model's input: the dataset scale, then each new person calibrated
        (data.person_norm) on all of their input recordings, as in training, or on the rows marked in
        ``calibration`` (adapt.py: the support rows alone)."""
        x = to_reference(x, self.scaling, self.scale_reference)
        if (self.person_norm or {}).get("enabled"):
            x = person_standardize(x, [r.subject for r in recordings], self.person_norm.get("log_ref"), calibration)
        return x


def checkpoint_paths(ckpt: Any) -> list[str]:
    """ckpt= as a list: null, one path, or a list of paths (an ensemble)."""
    if ckpt is None:
        return []
    if isinstance(ckpt, ListConfig | list | tuple):
        return [str(c) for c in ckpt]
    return [str(ckpt)]


def check_ensemble(models: Sequence[LoadedCheckpoint]) -> None:
    """Checkpoints whose probabilities can be averaged: same classes, input and target."""
    first = models[0]
    for other in models[1:]:
        for key in ENSEMBLE_KEYS:
            if first.hparams[key] != other.hparams[key]:
                raise SemgError(
                    f"ensemble members differ in {key}: {first.hparams[key]} ({first.path.name}) vs "
                    f"{other.hparams[key]}",
                    path=other.path,
                    fix="average checkpoints of one recipe only (e.g. the k fold models of one sweep)",
                )
        axes = (first.frequency_axis, other.frequency_axis)
        if None not in axes and axes[0] != axes[1]:  # None: a checkpoint older than the record, unknown
            raise SemgError(
                f"ensemble members were trained on different frequency axes: {axis_text(axes[0])} vs "
                f"{axis_text(axes[1])}",
                path=other.path,
                fix="average checkpoints of one recipe only",
            )
        for key in ("scaling", "target", "person_norm"):
            if first.data_hparams.get(key) != other.data_hparams.get(key):
                raise SemgError(
                    f"ensemble members differ in data.{key}: {first.data_hparams.get(key)} vs "
                    f"{other.data_hparams.get(key)}",
                    path=other.path,
                    fix="average checkpoints of one recipe only",
                )


def check_pair(meta: dict[str, Any], models: Sequence[LoadedCheckpoint], svm_path: str | Path) -> None:
    """A checkpoint-encoder SVM needs exactly the checkpoint it was fitted on."""
    encoder = meta.get("encoder") or {}
    if encoder.get("kind") != "checkpoint":
        return  # the random-encoder baseline carries its own encoder
    if len(models) != 1:
        raise SemgError(
            f"this SVM reads the features of one checkpoint ({encoder.get('checkpoint')}), not of {len(models)}",
            path=svm_path,
            fix="pass that one ckpt with the SVM, or predict the ensemble without svm=",
        )
    (loaded,) = models
    if encoder.get("checkpoint_sha256") != loaded.sha256:
        raise SemgError(
            f"this SVM was fitted on the features of another checkpoint ({encoder.get('checkpoint')})",
            path=svm_path,
            fix=f"pass that ckpt, or run fit_svm.py ckpt={loaded.path} for this one",
        )
    if meta.get("feature_dim") != loaded.model.encoder.feature_dim:
        raise SemgError("SVM feature size does not match the checkpoint's encoder", path=svm_path, fix="re-fit it")


def reading_of(models: Sequence[LoadedCheckpoint], svm_meta: dict[str, Any] | None) -> Reading:
    """How the first model (else the random-encoder SVM) reads matrices. Fold models of one recipe
    share it except for data.scale_reference, which each member's prepare applies as its own."""
    if models:
        hp, data = models[0].hparams, models[0].data_hparams
        scheme = FilenameScheme(**data["filename_scheme"]) if data.get("filename_scheme") else None
        return Reading(
            hp["in_channels"],
            hp["input_size"],
            data["scaling"],
            scheme,
            Path(data["data_dir"]),
            data.get("person_norm"),
            data.get("scale_reference"),
            models[0].frequency_axis,
        )
    encoder = svm_meta["encoder"]
    arch = encoder["architecture"]
    scheme = FilenameScheme(**encoder["filename_scheme"]) if encoder.get("filename_scheme") else None
    scaling = renamed_data_keys(encoder).get("scaling", "minmax")
    return Reading(
        arch["in_channels"],
        arch["input_size"],
        scaling,
        scheme,
        None,
        encoder.get("person_norm"),
        encoder.get("scale_reference"),
    )


def input_recordings(cfg: DictConfig, reading: Reading) -> list[Recording]:
    """The given manifest CSV (rows passing ``filter``), .npz file or folder; by default the
    unlabeled (Test*) files of the checkpoint's data folder, as the seed's inference cell."""
    wanted = row_filter(OmegaConf.to_container(cfg.filter, resolve=True) if cfg.filter else {})
    path = Path(cfg.input) if cfg.input is not None else None
    if path is not None and path.suffix.lower() == ".csv":
        recordings = read_manifest(path, path.parent, allow_outside=True)
        kept = [r for r in recordings if row_matches(r.row, wanted)]
        if not kept:
            raise SemgError(f"no manifest row matches filter={cfg.filter}", path=path, fix="check the filter")
        missing = [r.path for r in kept if not r.path.is_file()]
        if missing:
            raise SemgError(f"{len(missing)} listed files are missing", path=missing[0], fix="restore them")
        return kept
    if wanted:
        raise SemgError("filter selects manifest rows", fix="pass input=<manifest.csv>, or drop filter")
    if path is None:
        return _default_inputs(reading)
    if path.is_file():
        return [_named(path, reading.scheme)]
    if not path.is_dir():
        raise SemgError("input not found", path=path, fix="pass input=<folder of .npz, one .npz, or manifest.csv>")
    files = npz_files(path)
    if not files:
        raise SemgError("no .npz files in the input folder", path=path, fix="convert recordings with make_hht.py")
    return [_named(f, reading.scheme) for f in files]


def _default_inputs(reading: Reading) -> list[Recording]:
    folder, scheme = reading.data_dir, reading.scheme
    if folder is None or scheme is None:
        raise SemgError("a random-encoder SVM has no data folder to take Test* files from", fix="pass input=")
    if not folder.is_dir():
        raise SemgError("the checkpoint's data folder is not there", path=folder, fix="pass input=<folder>")
    files = [p for p in sorted(folder.glob("*.npz")) if scheme.is_unlabeled(p.name)]
    if not files:
        raise SemgError(
            f"no unlabeled ({scheme.unlabeled_prefix}*) .npz files in the checkpoint's data folder",
            path=folder,
            fix="pass input=<folder, .npz file or manifest.csv to predict>",
        )
    return [Recording(p) for p in files]


def _named(path: Path, scheme: FilenameScheme | None) -> Recording:
    """Labels from the seed's file-name scheme when the name carries them; else unlabeled."""
    if scheme is None:
        return Recording(path)
    try:
        return Recording(path, scheme.labels(path))
    except SemgError:
        return Recording(path)


def read_inputs(recordings: list[Recording], reading: Reading, workers: int, bad_files: str):
    """Matrices as the models read them (size, channels, scaling), before each model's prepare."""
    if bad_files not in ("error", "skip"):
        raise SemgError(f"unknown bad_files '{bad_files}'", fix="use error or skip")
    files = [r.path for r in recordings]
    x, errors = load_matrices(files, reading.in_channels, reading.input_size, reading.scaling, workers)
    if errors:
        first = next(iter(errors.values()))
        if bad_files == "error" or len(errors) == len(files):
            raise SemgError(
                f"{len(errors)} of {len(files)} input files are unusable; first: {first}",
                fix="remove or re-create them (or bad_files=skip to predict the rest)",
            )
        for err in errors.values():
            log.warning("skipped: %s", err)
        keep = np.setdiff1d(np.arange(len(files)), list(errors))
        x, recordings = x[keep], [recordings[i] for i in keep]
    check_trained_axis(frequency_axis([r.path for r in recordings]), reading.frequency_axis, recordings[0].path)
    if (reading.person_norm or {}).get("enabled"):
        log.info("person_norm: %d people standardised by their own statistics", len({r.subject for r in recordings}))
    return torch.from_numpy(x), recordings


def true_labels(recordings: Sequence[Recording], target: str, class_names: Sequence[str]) -> np.ndarray | None:
    """Class index per row (-1 where unknown); None when no row is labelled. A label outside the
    model's classes is refused: it could only ever be counted wrong."""
    values = [target_value(r, target) for r in recordings]
    if all(v is None for v in values):
        return None
    unknown = sorted({v for v in values if v is not None} - set(class_names))
    if unknown:
        raise SemgError(
            f"input {target} labels {unknown} are not among the model's classes {list(class_names)}",
            path=recordings[0].path.parent,
            fix="predict only recordings of the trained classes (filter=...)",
        )
    return np.array([-1 if v is None else list(class_names).index(v) for v in values])


@dataclass
class Output:
    """One model's predictions: its column name, classes and probabilities per row."""

    column: str
    target: str
    class_names: list[str]
    probs: np.ndarray
    source: str  # what produced it, for metrics.json and the summary


def cnn_output(
    models: Sequence[LoadedCheckpoint], x: torch.Tensor, recordings: Sequence[Recording], cfg: DictConfig, device
) -> Output:
    """Mean class probabilities over the checkpoints (one checkpoint: its own), each the softmax of its
    logits over its temperature (calibration; 1 for a checkpoint without one)."""
    probs = []
    for loaded in models:
        model = loaded.model.to(device)
        inputs = reading_of([loaded], None).prepare(x, recordings)
        logits = extract_features(model, inputs, cfg.batch_size, device, cfg.bf16)  # the whole forward pass
        probs.append(scaled(logits, loaded.temperature).numpy())
        if loaded.temperature == 1.0:
            log.info("%s: no calibration temperature (T = 1): plain softmax confidences", loaded.path.name)
        else:
            log.info("%s: probabilities calibrated with temperature %.4g", loaded.path.name, loaded.temperature)
    target = models[0].data_hparams.get("target", "movement")
    source = str(models[0].path) if len(models) == 1 else f"mean of {len(models)} checkpoints"
    return Output(target, target, list(models[0].hparams["class_names"]), np.mean(probs, axis=0), source)


def svm_output(
    svm,
    models: Sequence[LoadedCheckpoint],
    x: torch.Tensor,
    recordings: Sequence[Recording],
    cfg: DictConfig,
    device,
    taken: str,
) -> Output:
    pipeline, meta = svm
    encoder_info = meta["encoder"]
    if encoder_info.get("kind") == "checkpoint":
        encoder, source = models[0].model.encoder, f"SVM on {models[0].path.name}'s encoder"
        reading = reading_of(models[:1], None)
    else:
        encoder, _ = random_encoder(encoder_info["architecture"], encoder_info["seed"])
        source = RANDOM_BASELINE
        reading = reading_of([], meta)
        log.warning("svm=%s is the %s: a baseline, not a trained model", cfg.svm, RANDOM_BASELINE)
    inputs = reading.prepare(x, recordings)
    features = extract_features(encoder, inputs, cfg.batch_size, device, cfg.bf16).numpy()
    names = [meta["classes"][int(i)] for i in pipeline.classes_]
    column = meta["target"] if meta["target"] != taken else f"svm_{meta['target']}"
    return Output(column, meta["target"], names, pipeline.predict_proba(features), source)


def classic_side(models: Sequence[LoadedCheckpoint], raw: str | None):
    """The person-alone classic side predict.py serves: that of the one checkpoint, with raw=; None without raw=
    (a checkpoint that carries one says so)."""
    carrying = [m for m in models if m.classic is not None]
    if raw is None:
        for m in carrying:
            log.warning(
                "%s carries %s's classic side (person-alone %s): pass raw=<the raw recordings the input was "
                "converted from> to serve the mixture (now: the CNN alone)", m.path.name, m.classic.get("person"),
                m.classic.get("method"),
            )  # fmt: skip
        return None
    if len(models) != 1 or not carrying:
        where = models[0].path if models else None
        raise SemgError(
            "raw= mixes in the classic side of one person's adapted checkpoint"
            + (f"; {len(models)} checkpoints given" if len(models) != 1 else "; this one carries none"),
            path=where,
            fix="pass ckpt=<person>.ckpt from adapt.py raw=..., or drop raw=",
        )
    return ClassicSide.from_record(models[0].classic, models[0].path)


def person_features(side: ClassicSide, raw: str, recordings: Sequence[Recording]) -> RecordingFeatures:
    """The classic features of the input's raw recordings, read as the person's support recordings were (the
    same make_hht settings: else refused, before any model runs)."""
    found = recording_features(raw, recordings, side.window, side.features)
    if found.signature != side.signature:
        raise SemgError(
            f"the input was converted with other make_hht settings ({found.signature}) than the person's support "
            f"recordings ({side.signature}): their classic features are not comparable",
            path=recordings[0].path.parent,
            fix="convert the new recordings with the make_hht settings of the adapted person's",
        )
    return found


def mixture_outputs(side: ClassicSide, cnn: Output, found: RecordingFeatures) -> list[Output]:
    """The served mixture under the target's name, and the CNN alone beside it (<target>_cnn)."""
    mixed = side.mixed(cnn.probs, found, np.arange(len(cnn.probs)))
    alone = Output(f"{cnn.column}_cnn", cnn.target, cnn.class_names, cnn.probs, cnn.source)
    return [Output(cnn.column, cnn.target, cnn.class_names, mixed, f"{cnn.source} + {side.name}"), alone]


def score(output: Output, recordings: Sequence[Recording], out_dir: Path) -> dict[str, Any] | None:
    """Scores of one output over the rows whose true label is known, and its confusion PNG."""
    y = true_labels(recordings, output.target, output.class_names)
    if y is None:
        return None
    known = np.flatnonzero(y >= 0)
    rows = [recordings[i] for i in known]
    probs = output.probs[known]
    scores = recording_metrics(y[known], probs, output.class_names, rows)
    scores.pop("report")
    title = f"{output.column}: {output.source}"[:80]
    figure = confusion_figure(np.array(scores["confusion_matrix"]), output.class_names, title)
    save_figure(figure, out_dir / f"confusion_matrix_{output.column}.png")
    subjects = sorted({r.subject for r in rows if r.subject})
    return scores | {
        "n_labelled": len(known),
        "n_subjects": len(subjects),
        "subjects": subjects,
        "source": output.source,
    }


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    check_config(cfg, PREDICT)
    paths = checkpoint_paths(cfg.ckpt)
    if not paths and not cfg.svm:
        raise SemgError(
            "predict.py needs a checkpoint (or a list: an ensemble) or a random-encoder SVM",
            fix="pass ckpt=<run>/checkpoints/best.ckpt (or ckpt=[a.ckpt,b.ckpt]), or svm=<ckpt=null run>/svm.skops",
        )
    output = Path(cfg.output)
    metrics_path = output.parent / "metrics.json"
    refuse_overwrite(output, cfg.overwrite)
    refuse_overwrite(metrics_path, cfg.overwrite)
    device = pick_device(cfg.device)
    models = [load_classifier(p) for p in paths]
    if models:
        check_ensemble(models)
    svm = load_svm(cfg.svm) if cfg.svm else None
    if svm is not None:
        check_pair(svm[1], models, cfg.svm)
    side = classic_side(models, cfg.raw)
    reading = reading_of(models, svm[1] if svm else None)
    recordings = input_recordings(cfg, reading)
    heads = [(models[0].data_hparams.get("target", "movement"), models[0].hparams["class_names"])] if models else []
    heads += [(svm[1]["target"], svm[1]["classes"])] if svm else []
    for target, class_names in heads:  # a label outside the classes fails now, not after the work
        true_labels(recordings, target, class_names)
    x, recordings = read_inputs(recordings, reading, cfg.load_workers, cfg.bad_files)
    found = None if side is None else person_features(side, cfg.raw, recordings)

    outputs = [cnn_output(models, x, recordings, cfg, device)] if models else []
    if side is not None:
        outputs = mixture_outputs(side, outputs[0], found)
    if svm is not None:
        outputs.append(svm_output(svm, models, x, recordings, cfg, device, outputs[0].column if outputs else ""))
    targets = [out.target for out in outputs]  # each target's true labels once (the mixture's CNN alone: none)
    known = [
        true_labels(recordings, out.target, out.class_names) if targets.index(out.target) == i else None
        for i, out in enumerate(outputs)
    ]
    rows, columns = prediction_table(recordings, outputs, known)
    scores = {out.column: s for out in outputs if (s := score(out, recordings, output.parent)) is not None}
    write_csv(output, rows, columns)
    if scores:
        first = next(iter(scores.values()))
        summary = {k: first[k] for k in ("acc", "balanced_acc", "f1_macro", "chance", "recording_acc")}
        write_json(
            metrics_path,
            summary
            | {"targets": scores, "checkpoints": paths, "temperatures": [m.temperature for m in models]}
            | {"svm": cfg.svm, "input": cfg.input, "raw": cfg.raw},
        )
        for column, s in scores.items():
            say(summary_line(column, s))
    predicted = {o.column for o in outputs}
    shown = [
        c
        for c in columns
        if c in ("file", "subject") or c.removesuffix("_confidence").removeprefix("true_") in predicted
    ]
    say(
        f"\n{output} ({len(rows)} files; first {min(len(rows), cfg.show_rows)}):\n"
        + format_table(rows[: cfg.show_rows], shown)
    )
    return rows


def prediction_table(recordings: Sequence[Recording], outputs: Sequence[Output], known: Sequence[np.ndarray | None]):
    """predictions.csv: file, subject and recording when the input has them, then per output the
    true label (when known), the prediction, its confidence and every class probability."""
    columns = ["file"]
    if any(r.subject for r in recordings):
        columns.append("subject")
    if any(r.labels.get("recording") for r in recordings):
        columns.append("recording")
    rows = [
        {"file": r.path.name, "subject": r.subject or "", "recording": r.labels.get("recording") or ""}
        for r in recordings
    ]
    for out, y in zip(outputs, known, strict=True):
        col = out.column
        if y is not None:
            columns.append(f"true_{col}")
        columns += [col, f"{col}_confidence"] + [f"p_{col}_{c}" for c in out.class_names]
        for i, (row, p) in enumerate(zip(rows, out.probs, strict=True)):
            if y is not None:
                row[f"true_{col}"] = out.class_names[y[i]] if y[i] >= 0 else ""
            row[col], row[f"{col}_confidence"] = out.class_names[int(p.argmax())], float(p.max())
            row.update({f"p_{col}_{c}": float(v) for c, v in zip(out.class_names, p, strict=True)})
    return rows, columns


def summary_line(column: str, s: dict[str, Any]) -> str:
    vote = "" if s["subject_vote_acc"] is None else f", per-person vote {s['subject_vote_acc']:.3f}"
    return (
        f"{column} ({s['source']}): acc {s['acc']:.3f}, balanced {s['balanced_acc']:.3f}, macro F1 "
        f"{s['f1_macro']:.3f}, per recording {s['recording_acc']:.3f}{vote}, chance {s['chance']:.3f} "
        f"on {s['n_labelled']} labelled matrices" + (f" of {s['n_subjects']} people" if s["n_subjects"] else "")
    )
