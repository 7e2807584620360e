"""fit_svm(cfg) -> metrics: the whole of fit_svm.py, importable and testable."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from semg_hht.config_check import FIT_SVM, check_config
from semg_hht.data.splits import write_split
from semg_hht.io import refuse_overwrite, write_json
from semg_hht.models.inference import extract_features, pick_device
from semg_hht.models.loading import load_classifier, random_encoder
from semg_hht.reporting.report import classification_metrics, write_split_report
from semg_hht.svm.dataset import SvmData, data_from_checkpoint, data_from_config
from semg_hht.svm.persist import save_svm
from semg_hht.svm.pipeline import fit_pipeline

log = logging.getLogger(__name__)

SVM_FILE = "svm.skops"


def _scores(pipeline, features: np.ndarray, data: SvmData, index: np.ndarray) -> dict[str, Any]:
    return classification_metrics(
        data.y[index], pipeline.predict(features[index]), data.class_names, data.subjects(index)
    )


def fit_svm(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg, FIT_SVM)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_overwrite(out_dir / SVM_FILE, cfg.overwrite)
    device = pick_device(cfg.device)

    if cfg.ckpt:
        loaded = load_classifier(cfg.ckpt)
        encoder = loaded.model.encoder
        data = data_from_checkpoint(loaded.path, loaded.data_hparams, cfg.target, cfg.data_dir, loaded.frequency_axis)
        source = {
            "kind": "checkpoint",
            "checkpoint": str(loaded.path.resolve()),
            "checkpoint_sha256": loaded.sha256,
            "checkpoint_target": loaded.data_hparams.get("target"),
            "data_dir": str(data.data_dir),
        }
    else:
        encoder, architecture = random_encoder(OmegaConf.to_container(cfg.model, resolve=True), cfg.seed)
        data = data_from_config(OmegaConf.to_container(cfg.data, resolve=True), cfg.target, cfg.data_dir)
        # what predict.py needs to rebuild the encoder and read new recordings as this SVM saw them
        reading = {
            k: OmegaConf.to_container(cfg.data, resolve=True).get(k) for k in ("scaling", "target", "person_norm")
        } | {"scale_reference": data.scale_reference}
        scheme = OmegaConf.to_container(cfg.data.filename_scheme, resolve=True)
        source = {"kind": "random", "seed": cfg.seed, "architecture": architecture, "filename_scheme": scheme} | reading
        log.info("no checkpoint: features of a random frozen encoder (baseline)")

    started = time.perf_counter()
    features = extract_features(encoder, data.x, cfg.batch_size, device, cfg.bf16).numpy()
    test_features = None
    if data.test_x is not None and len(data.test_y):
        test_features = extract_features(encoder, data.test_x, cfg.batch_size, device, cfg.bf16).numpy()
    extract_seconds = time.perf_counter() - started
    groups = data.subjects(data.train_index)
    svm_cfg = OmegaConf.to_container(cfg.svm, resolve=True)
    started = time.perf_counter()
    pipeline, search = fit_pipeline(svm_cfg, features[data.train_index], data.y[data.train_index], groups, cfg.seed)
    fit_seconds = time.perf_counter() - started

    train = _scores(pipeline, features, data, data.train_index)
    train.pop("report"), train.pop("confusion_matrix")
    scored = {}
    if len(data.val_index):  # data.split=none: every recording fitted, none to validate on
        val = _scores(pipeline, features, data, data.val_index)
        scored["val"] = write_split_report(out_dir, "val", val, data.class_names, f"SVM ({cfg.target})")
    if test_features is not None:
        test = classification_metrics(
            data.test_y,
            pipeline.predict(test_features),
            data.class_names,
            [r.subject for r in data.test_recordings],
            [r.recording for r in data.test_recordings],
        )
        scored["test"] = write_split_report(out_dir, "test", test, data.class_names, f"SVM ({cfg.target})")
        scored["test"]["test/subjects"] = sorted({r.subject for r in data.test_recordings if r.subject})
    write_split(out_dir / "split.csv", data.split_rows())
    expects = {
        "target": cfg.target,
        "classes": data.class_names,
        "feature_dim": int(features.shape[1]),
        "encoder": source,
    }
    save_svm(out_dir / SVM_FILE, pipeline, expects)

    metrics = (
        {f"train/{k}": v for k, v in train.items()}
        | scored.get("val", {})
        | scored.get("test", {})
        | {
            "target": cfg.target,
            "classes": data.class_names,
            "encoder": source["kind"],
            "checkpoint": source.get("checkpoint"),
            "feature_dim": int(features.shape[1]),
            "n_train": len(data.train_index),
            "n_val": len(data.val_index),
            "n_test": 0 if data.test_y is None else len(data.test_y),
            "split_source": data.split_source,
            "svm": svm_cfg,
            "grid_search": search,
            "device": str(device),
            "extract_seconds": round(extract_seconds, 3),
            "fit_seconds": round(fit_seconds, 3),
            "svm_file": str(out_dir / SVM_FILE),
        }
    )
    write_json(out_dir / "metrics.json", metrics)
    for split in scored:
        vote = metrics[f"{split}/subject_vote_acc"]
        log.info(
            "SVM %s on %s features: train acc %.3f, %s acc %.3f (balanced %.3f, chance %.3f%s) -> %s",
            cfg.target, source["kind"], train["acc"], split, metrics[f"{split}/acc"],
            metrics[f"{split}/balanced_acc"], metrics[f"{split}/chance"],
            "" if vote is None else f", per-subject vote {vote:.3f}", out_dir,
        )  # fmt: skip
    return metrics
