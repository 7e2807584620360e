"""adapt(cfg): the whole of adapt.py. For each person of the input, a copy of the checkpoint's model
adapted on that person's support rows and scored on their query rows before and after; the adapted
checkpoints, predictions.csv, metrics.json and before_after.png in ``out``, and one line per person. With
raw=, each person's classic side too (semg_hht.classic.person): mixed into their scores, kept in their checkpoint."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from semg_hht.adaptation.methods import AdaptSettings
from semg_hht.adaptation.people import Adapted, adapt_person, person_splits
from semg_hht.classic.person import ClassicSide, recording_features
from semg_hht.config_check import ADAPT, check_config
from semg_hht.data.labels import target_value
from semg_hht.errors import SemgError, say
from semg_hht.io import refuse_overwrite, save_figure, write_csv, write_json
from semg_hht.models.checkpoint import read_checkpoint
from semg_hht.models.loading import NETWORK, load_classifier
from semg_hht.prediction import Output, input_recordings, prediction_table, read_inputs, reading_of, true_labels
from semg_hht.reporting.plots import before_after_figure
from semg_hht.reporting.report import recording_metrics
from semg_hht.training.checkpoint_io import SafeCheckpointIO

log = logging.getLogger(__name__)
SCORES = ("acc", "recording_acc", "balanced_acc", "f1_macro", "chance")


def checkpoint_name(person: str) -> str:
    """<person>.ckpt with anything but letters, digits, '-', '_' and '.' replaced (a file name on every OS)."""
    return re.sub(r"[^\w.-]", "_", person, flags=re.ASCII) + ".ckpt"


def scores(y: np.ndarray, probs: np.ndarray, class_names, recordings) -> dict[str, float]:
    return {k: v for k, v in recording_metrics(y, probs, class_names, recordings).items() if k in SCORES}


def write_adapted(
    original: dict[str, Any], adapted: Adapted, path: Path, record: dict[str, Any], side: ClassicSide | None = None
) -> None:
    """The original checkpoint file with the adapted network weights and a record of the adaptation:
    everything else (hyperparameters, data settings, frequency axis, the calibration temperature) as
    trained but the input's channel order when the adaptation chose one, so predict.py reads it like any
    checkpoint, and the file keeps its size (plus the person's support features when there is a classic side)."""
    weights = {k: v for k, v in adapted.model.state_dict().items() if k.startswith(NETWORK)}
    order = adapted.model.encoder.channel_order
    checkpoint = (
        original
        | {
            "state_dict": {**original["state_dict"], **weights},
            "hyper_parameters": original["hyper_parameters"]
            | ({"channel_order": order} if order or "channel_order" in original["hyper_parameters"] else {}),
            "adaptation": record,
        }
        | ({"classic": side.record()} if side is not None else {})
    )
    SafeCheckpointIO(min_free_mb=0, headroom=0).save_checkpoint(checkpoint, path)


def adapt(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg, ADAPT)
    settings = AdaptSettings.of(OmegaConf.to_container(cfg.adapt, resolve=True))
    if cfg.ckpt is None or cfg.input is None:
        raise SemgError(
            "adapt.py needs a trained model and labelled recordings of the new people",
            fix="pass ckpt=<run>/checkpoints/last.ckpt input=<manifest.csv with subject and label columns>",
        )
    support = OmegaConf.to_container(cfg.support, resolve=True) if cfg.support else {}
    out = Path(cfg.out)
    loaded = load_classifier(cfg.ckpt)
    reading = reading_of([loaded], None)
    target = loaded.data_hparams.get("target", "movement")
    class_names = list(loaded.hparams["class_names"])
    recordings = input_recordings(cfg, reading)
    labelled = [r for r in recordings if target_value(r, target) is not None]
    if len(labelled) < len(recordings):
        log.warning("%d input recordings without a %s label left out", len(recordings) - len(labelled), target)
    if not labelled:
        raise SemgError(f"no input recording has a {target} label", path=cfg.input, fix="adapt on labelled recordings")
    y = true_labels(labelled, target, class_names)
    splits = person_splits(labelled, y, support, class_names)  # every refusal before any file is read
    outputs = [out / checkpoint_name(s.subject) for s in splits]
    if len(set(outputs)) < len(outputs):
        clash = next(p for p in outputs if outputs.count(p) > 1)
        people = [s.subject for s, p in zip(splits, outputs, strict=True) if p == clash]
        raise SemgError(f"people {people} would share one file name ({clash.name})", fix="rename them in the manifest")
    for path in [*outputs, *(out / name for name in ("predictions.csv", "metrics.json", "before_after.png"))]:
        refuse_overwrite(path, cfg.overwrite)
    x, kept = read_inputs(labelled, reading, cfg.load_workers, "error")
    mixture = OmegaConf.to_container(cfg.mixture, resolve=True)
    found = None
    if cfg.raw is not None and mixture["method"] is not None:  # every person's recordings read at once, up front
        found = recording_features(cfg.raw, kept, mixture["window"], mixture["features"])
    sides = [  # each person's classic side (checked now; fitted where their query rows are scored)
        None if found is None else ClassicSide.fitted_on(s.subject, mixture, cfg.seed, found, s.support, y, class_names)
        for s in splits
    ]

    original = read_checkpoint(loaded.path)  # the file every adapted checkpoint is written from, read once
    people, query_rows, before, after, served = {}, [], [], [], []
    for split, path, side in zip(splits, outputs, sides, strict=True):
        adapted = adapt_person(loaded, x, kept, y, split, settings, cfg.seed, cfg.batch_size)
        mixed = adapted.after if side is None else side.mixed(adapted.after, found, split.query)
        rows = [kept[i] for i in split.query]
        record = {
            "person": split.subject,
            "method": settings.method,
            "settings": OmegaConf.to_container(cfg.adapt, resolve=True),
            "support": support,
            "support_files": [kept[i].path.name for i in split.support],
            "source_checkpoint": str(loaded.path),
            "source_sha256": loaded.sha256,
        }
        write_adapted(original, adapted, path, record, side)
        people[split.subject] = {
            "k0": scores(y[split.query], adapted.before, class_names, rows),
            "adapted": scores(y[split.query], adapted.after, class_names, rows),
            **({"mixture": scores(y[split.query], mixed, class_names, rows)} if side else {}),
            "n_support": len(split.support),
            "n_query": len(split.query),
            "seconds": round(adapted.seconds, 3),
            "channel_order": adapted.model.encoder.channel_order,  # null: as recorded
            "checkpoint": str(path),
        }
        query_rows += rows
        before.append(adapted.before)
        after.append(adapted.after)
        served.append(mixed)
        p = people[split.subject]
        turned = f", channels read as {p['channel_order']}" if p["channel_order"] else ""
        mix = f", with the {side.name} {p['mixture']['acc']:.3f}" if side else ""
        say(
            f"{split.subject}: {p['n_support']} support / {p['n_query']} query rows, acc {p['k0']['acc']:.3f} -> "
            f"{p['adapted']['acc']:.3f} ({settings.method}{turned}, {adapted.seconds:.1f} s){mix} -> {path}",
        )

    y_query = true_labels(query_rows, target, class_names)
    before, after, served = np.concatenate(before), np.concatenate(after), np.concatenate(served)
    overall = {"k0": scores(y_query, before, class_names, query_rows)} | {
        "adapted": scores(y_query, after, class_names, query_rows)
    }
    outputs_table = [
        Output(target, target, class_names, after, f"adapted ({settings.method})"),
        Output(f"{target}_before", target, class_names, before, str(loaded.path)),
    ]
    if found is not None:  # the served mixture first (as predict.py raw=... names it), the CNN alone beside it
        overall["mixture"] = scores(y_query, served, class_names, query_rows)
        outputs_table.insert(0, Output(target, target, class_names, served, f"adapted + {side.name}"))
        outputs_table[1].column = f"{target}_cnn"
    rows, columns = prediction_table(query_rows, outputs_table, [y_query] + [None] * (len(outputs_table) - 1))
    write_csv(out / "predictions.csv", rows, columns)
    metrics = overall | {
        "people": people,
        "method": settings.method,
        "support": support,
        "checkpoint": str(loaded.path),
        "temperature": loaded.temperature,  # the source's calibration, kept by every adapted checkpoint
        "input": str(cfg.input),
        "seconds_per_person": float(np.mean([p["seconds"] for p in people.values()])),
        "classic_side": None if found is None else mixture | {"raw": str(cfg.raw)},  # its settings
    }
    write_json(out / "metrics.json", metrics)
    chance = overall["adapted"]["chance"]
    after_key = "mixture" if found is not None else "adapted"  # what the checkpoints serve
    figure = before_after_figure(
        {p: v["k0"]["acc"] for p, v in people.items()},
        {p: v[after_key]["acc"] for p, v in people.items()},
        chance,
        f"{target}: {settings.method} adaptation{' + ' + side.name if found else ''} on support={support}"[:90],
    )
    save_figure(figure, out / "before_after.png")
    mix = f", with the {side.name} {overall['mixture']['acc']:.3f}" if found is not None else ""
    say(
        f"all {len(people)} people: acc {overall['k0']['acc']:.3f} -> {overall['adapted']['acc']:.3f}{mix} on "
        f"{len(query_rows)} query rows (chance {chance:.3f}); {out}",
    )
    return metrics
