"""A new person's labelled recordings split into support rows (the few that adapt the model) and query
rows (the rest, scored before and after), and one person adapted and scored: shared by adapt.py and
evaluate.py's adaptation rows, so both measure the same thing."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semg_hht.adaptation.methods import AdaptSettings, adapted_copy
from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.data.labels import Recording, row_filter, row_matches
from semg_hht.errors import SemgError
from semg_hht.models.calibration import scaled
from semg_hht.models.classifier import HHTClassifier
from semg_hht.models.inference import run_batched
from semg_hht.models.loading import LoadedCheckpoint
from semg_hht.prediction import reading_of


@dataclass(frozen=True)
class Split:
    """One person's rows (positions in the input) on each side."""

    subject: str
    support: np.ndarray
    query: np.ndarray


def person_splits(
    recordings: Sequence[Recording], y: np.ndarray, support: Mapping[str, Any], class_names: Sequence[str]
) -> list[Split]:
    """Per person (in input order): the rows matching the ``support`` row filter, and the rest. Refused
    in one line: rows without a person, a person with no support row, support rows that miss a class,
    and a person whose every row is support (nothing would be scored)."""
    wanted = row_filter(support)
    if not wanted:
        raise SemgError(
            "no support rows named (support=null)",
            fix="name each person's support rows by a manifest column, e.g. support='{repetition:[1]}'",
        )
    if any(r.subject is None for r in recordings):
        raise SemgError(
            "adaptation needs the person of every recording",
            path=recordings[0].path.parent,
            fix="pass input=<manifest.csv> with a subject column",
        )
    people = np.array([r.subject for r in recordings], dtype=object)
    chosen = np.array([row_matches(r.row, wanted) for r in recordings], dtype=bool)
    splits = []
    for person in dict.fromkeys(people):
        rows = np.flatnonzero(people == person)
        own, rest = rows[chosen[rows]], rows[~chosen[rows]]
        if len(own) == 0:
            columns = ", ".join(sorted(wanted))
            raise SemgError(
                f"person {person} has no support row (support={support}; their {columns} values: "
                f"{sorted({str(recordings[i].row.get(c)) for i in rows for c in wanted})})",
                fix="choose support rows every person has, or leave the person out (filter=...)",
            )
        missing = sorted(set(range(len(class_names))) - set(y[own].tolist()))
        if missing:
            raise SemgError(
                f"person {person}'s support rows (support={support}) have no {[class_names[i] for i in missing]}",
                fix="record at least one support repetition of every class for each person",
            )
        if len(rest) == 0:
            raise SemgError(
                f"support={support} takes every row of person {person}: no query row is left to score",
                fix="keep some labelled rows out of support (e.g. support='{repetition:[1]}')",
            )
        splits.append(Split(str(person), own, rest))
    return splits


def support_choices(values: Sequence[str], k: int) -> list[tuple[str, ...]]:
    """Every choice of k of a person's repetitions (evaluate.py averages over them)."""
    return list(itertools.combinations(sorted(set(values), key=_natural), k))


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if str(value).isdigit() else (1 << 30, str(value))


def training_augment(loaded: LoadedCheckpoint, seed: int) -> TimeFrequencyAugment | None:
    """The augmentation the checkpoint's model trained with (data.augment), seeded; None when it had none."""
    settings = dict(loaded.data_hparams.get("augment") or {})
    if not settings.pop("enabled", False):
        return None
    augment = TimeFrequencyAugment(**(settings | {"seed": seed}))
    axis = loaded.frequency_axis
    if axis is not None and axis[0] == "log":
        augment.use_log_axis(loaded.hparams["input_size"], *axis[1])
    return augment


def probabilities(model: HHTClassifier, x: torch.Tensor, batch_size: int, temperature: float) -> np.ndarray:
    """Class probabilities of a frozen model (the whole forward pass), on the CPU, at the checkpoint's
    calibration temperature (as predict.py reads them; the adapted copy keeps the source's)."""
    return scaled(run_batched(model, x, batch_size, "cpu"), temperature).numpy()


@dataclass
class Adapted:
    model: HHTClassifier
    before: np.ndarray  # query probabilities of the model as given (k = 0)
    after: np.ndarray  # and of the adapted copy
    seconds: float  # the adaptation alone


def adapt_person(
    loaded: LoadedCheckpoint,
    x: torch.Tensor,
    recordings: Sequence[Recording],
    y: np.ndarray,
    split: Split,
    settings: AdaptSettings,
    seed: int,
    batch_size: int,
) -> Adapted:
    """The model adapted to one person's support rows, and its query probabilities before and after.
    ``x``: the input's matrices as loaded (read_inputs); they are prepared here as the model reads them,
    a calibrated model's person statistics taken from the support rows alone, so nothing of the query
    rows, not even their unlabelled spread, goes into the adapted model or its scores."""
    rows = np.concatenate([split.support, split.query])
    calibration = np.arange(len(rows)) < len(split.support)
    prepared = reading_of([loaded], None).prepare(x[rows], [recordings[i] for i in rows], calibration)
    support, query = prepared[calibration], prepared[~calibration]
    start = time.perf_counter()
    model = adapted_copy(
        loaded.model, support, torch.from_numpy(y[split.support]), settings, training_augment(loaded, seed), seed
    )
    seconds = time.perf_counter() - start
    return Adapted(
        model,
        probabilities(loaded.model, query, batch_size, loaded.temperature),
        probabilities(model, query, batch_size, loaded.temperature),
        seconds,
    )
