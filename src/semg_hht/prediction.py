"""predict(cfg) -> rows: the whole of predict.py. Movement (the CNN) and, with an SVM, gender (the SVM
on the same frozen features) for unlabeled recordings, written to predictions.csv."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from semg_hht.config_check import PREDICT, check_config
from semg_hht.data.labels import FilenameScheme
from semg_hht.data.matrices import load_matrices, npz_files
from semg_hht.errors import SemgError
from semg_hht.io import refuse_overwrite, write_csv
from semg_hht.models.inference import run_batched
from semg_hht.models.loading import LoadedCheckpoint, load_classifier
from semg_hht.svm.features import extract_features, pick_device
from semg_hht.svm.persist import load_svm
from semg_hht.training.sweep import format_table

log = logging.getLogger(__name__)


def check_pair(meta: dict[str, Any], loaded: LoadedCheckpoint, svm_path: str | Path) -> None:
    """The SVM must have been fitted on this very checkpoint's features."""
    encoder = meta.get("encoder") or {}
    if encoder.get("kind") != "checkpoint":
        raise SemgError(
            "this SVM was fitted on a random encoder (the ckpt=null baseline), not on a checkpoint",
            path=svm_path,
            fix=f"run fit_svm.py ckpt={loaded.path} and pass that svm.skops",
        )
    if encoder.get("checkpoint_sha256") != loaded.sha256:
        raise SemgError(
            f"this SVM was fitted on the features of another checkpoint ({encoder.get('checkpoint')})",
            path=svm_path,
            fix=f"pass that ckpt, or run fit_svm.py ckpt={loaded.path} for this one",
        )
    if meta.get("feature_dim") != loaded.model.encoder.feature_dim:
        raise SemgError("SVM feature size does not match the checkpoint's encoder", path=svm_path, fix="re-fit it")


def input_files(input_path: str | None, loaded: LoadedCheckpoint) -> list[Path]:
    """The given .npz file or folder, or by default the unlabeled (Test*) files of the checkpoint's
    data folder, as the seed's inference cell."""
    if input_path is None:
        folder = Path(loaded.data_hparams["data_dir"])
        scheme = FilenameScheme(**loaded.data_hparams["filename_scheme"])
        if not folder.is_dir():
            raise SemgError("the checkpoint's data folder is not there", path=folder, fix="pass input=<folder>")
        files = [p for p in sorted(folder.glob("*.npz")) if scheme.is_unlabeled(p.name)]
        if not files:
            raise SemgError(
                f"no unlabeled ({scheme.unlabeled_prefix}*) .npz files in the checkpoint's data folder",
                path=folder,
                fix="pass input=<folder or .npz file to predict>",
            )
        return files
    path = Path(input_path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SemgError("input not found", path=path, fix="pass input=<folder of .npz matrices or one .npz>")
    files = npz_files(path)
    if not files:
        raise SemgError("no .npz files in the input folder", path=path, fix="convert recordings with make_hht.py")
    return files


def read_inputs(files: list[Path], loaded: LoadedCheckpoint, workers: int, bad_files: str):
    """Matrices as the checkpoint was trained on them (size, channels, normalisation)."""
    if bad_files not in ("error", "skip"):
        raise SemgError(f"unknown bad_files '{bad_files}'", fix="use error or skip")
    hp = loaded.hparams
    x, errors = load_matrices(files, hp["in_channels"], hp["input_size"], loaded.data_hparams["normalize"], workers)
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
        x, files = x[keep], [files[i] for i in keep]
    return torch.from_numpy(x), files


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    check_config(cfg, PREDICT)
    if not cfg.ckpt:
        raise SemgError("predict.py needs a checkpoint", fix="pass ckpt=<train run>/checkpoints/best.ckpt")
    output = Path(cfg.output)
    refuse_overwrite(output, cfg.overwrite)
    device = pick_device(cfg.device)
    loaded = load_classifier(cfg.ckpt)
    svm = load_svm(cfg.svm) if cfg.svm else None
    if svm is not None:
        check_pair(svm[1], loaded, cfg.svm)
    x, files = read_inputs(input_files(cfg.input, loaded), loaded, cfg.load_workers, cfg.bad_files)

    model = loaded.model.to(device)
    features = extract_features(model.encoder, x, cfg.batch_size, device, cfg.bf16)
    probs = torch.softmax(run_batched(model.head, features, cfg.batch_size, device), dim=1).numpy()
    cnn_target = loaded.data_hparams.get("target", "movement")
    names = list(loaded.hparams["class_names"])
    rows = [{"file": f.name} for f in files]
    columns = ["file", cnn_target, f"{cnn_target}_confidence"] + [f"p_{cnn_target}_{c}" for c in names]
    for row, p in zip(rows, probs, strict=True):
        row[cnn_target], row[f"{cnn_target}_confidence"] = names[int(p.argmax())], float(p.max())
        row.update({f"p_{cnn_target}_{c}": float(v) for c, v in zip(names, p, strict=True)})
    if svm is not None:
        pipeline, meta = svm
        target = meta["target"] if meta["target"] != cnn_target else f"svm_{meta['target']}"
        svm_names = [meta["classes"][int(i)] for i in pipeline.classes_]
        svm_probs = pipeline.predict_proba(features.numpy())
        columns += [target, f"{target}_confidence"] + [f"p_{target}_{c}" for c in svm_names]
        for row, p in zip(rows, svm_probs, strict=True):
            row[target], row[f"{target}_confidence"] = svm_names[int(p.argmax())], float(p.max())
            row.update({f"p_{target}_{c}": float(v) for c, v in zip(svm_names, p, strict=True)})

    write_csv(output, rows, columns)
    shown = columns[:3] + ([target, f"{target}_confidence"] if svm is not None else [])
    print(f"\n{output} ({len(rows)} files; first {min(len(rows), cfg.show_rows)}):")
    print(format_table(rows[: cfg.show_rows], shown), flush=True)
    return rows
