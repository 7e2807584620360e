"""Types and ranges of every scalar config key, checked before any work starts.

One table per entry point (make_hht validates its own keys in hht/settings.py). A wrong value
becomes one line naming the key and what it accepts, instead of a traceback from deep inside
Lightning, PyTorch or scikit-learn an hour later. tests/test_config_fuzz.py sets every scalar key
of the shipped configs to a string, 0 and -1, and checks each table covers every key.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from semg_hht.choices import ADAPT_BATCHNORM, ADAPT_METHODS, DEVICES, HEADS, POOLS, SPLITS
from semg_hht.data.labels import TARGETS
from semg_hht.data.matrices import SCALINGS
from semg_hht.errors import SemgError

Check = Callable[[Any], bool]


class Rule:
    def __init__(self, what: str, ok: Check, optional: bool = False):
        self.what, self.ok, self.optional = what, ok, optional

    def __call__(self, value: Any) -> bool:
        return (value is None and self.optional) or (value is not None and self.ok(value))

    def describe(self) -> str:
        return self.what + (" or null" if self.optional else "")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> tuple[str, Check]:
    def inside(v: float) -> bool:
        above = lo is None or (v > lo if lo_open else v >= lo)
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below

    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts), inside


def Int(lo: int | None = None, hi: int | None = None, optional: bool = False) -> Rule:
    words, inside = _range(lo, hi, False, False)
    return Rule(f"an integer {words}".strip(), lambda v: _is_int(v) and inside(v), optional)


def Float(
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
) -> Rule:
    words, inside = _range(lo, hi, lo_open, hi_open)
    return Rule(f"a number {words}".strip(), lambda v: _is_num(v) and inside(v), optional)


def Bool(optional: bool = False) -> Rule:
    return Rule("true or false", lambda v: isinstance(v, bool), optional)


def Str(optional: bool = False) -> Rule:
    return Rule("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "", optional)


def AnyStr(optional: bool = False) -> Rule:
    return Rule("a string", lambda v: isinstance(v, str), optional)


def OneOf(*choices: Any, optional: bool = False) -> Rule:
    return Rule(f"one of {', '.join(map(str, choices))}", lambda v: v in choices and not isinstance(v, bool), optional)


def Either(*rules: Rule, optional: bool = False) -> Rule:
    return Rule(" or ".join(r.what for r in rules), lambda v: any(r(v) for r in rules), optional)


def Mapping_(optional: bool = True) -> Rule:
    """A mapping given as a whole (e.g. data.test_filter={subject: [a, b]}); its entries have rules of their own."""
    return Rule("a mapping such as {column: [values]}", lambda v: False, optional)


def check_config(cfg: DictConfig, rules: Mapping[str, Rule]) -> None:
    """Raise a SemgError for the first scalar key whose value breaks its rule. Keys are dotted
    paths; '*' matches one level (callbacks.*.dirpath). Keys without a rule are not checked here."""
    for key in _scalar_leaves(cfg, skip_links=True):  # ${other.key}: checked (and named) there
        rule = rule_for(key, rules)
        if rule is None:
            continue
        try:
            value = OmegaConf.select(cfg, key, throw_on_missing=True)
        except OmegaConfBaseException as err:
            raise SemgError(f"config {key}: {_first_line(err)}", fix=f"set {key}=<value>") from None
        if not rule(value):
            raise SemgError(f"config {key}={value!r} is not {rule.describe()}", fix=f"set {key} to {rule.describe()}")


def rule_for(key: str, rules: Mapping[str, Rule]) -> Rule | None:
    if key in rules:
        return rules[key]
    return next((r for pattern, r in rules.items() if "*" in pattern and fnmatch.fnmatchcase(key, pattern)), None)


def scalar_keys(cfg: DictConfig) -> list[str]:
    return list(_scalar_leaves(cfg))


def _scalar_leaves(node: DictConfig, prefix: str = "", skip_links: bool = False):
    for k in node:
        key = f"{prefix}{k}"
        if key == "hydra" or str(k).endswith("_target_"):
            continue
        child = node._get_node(k)
        if isinstance(child, DictConfig):
            yield from _scalar_leaves(child, key + ".", skip_links)
        elif not isinstance(child, ListConfig) and not (skip_links and child._is_interpolation()):
            yield key


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


# ------------------------------------------------------------------ the tables
# Choices come from the modules that use them, so a new option needs no second edit here.

PATHS = {"paths.*": AnyStr(optional=True), "task_name": Str()}
DEVICE = OneOf(*DEVICES)

DATA = {
    "data.data_dir": Str(),
    "data.label_source": OneOf("filename", "manifest"),
    "data.manifest": Str(optional=True),
    "data.allow_outside_paths": Bool(),
    "data.target": OneOf(*TARGETS),
    "data.filename_scheme.movement_synonyms.*": Str(),
    "data.filename_scheme.gender_pattern": Str(),
    "data.filename_scheme.unlabeled_prefix": AnyStr(),
    "data.filter.*": Either(AnyStr(), Float()),
    "data.test_dir": Str(optional=True),
    "data.test_manifest": Str(optional=True),
    "data.test_filter": Mapping_(),
    "data.test_filter.*": Either(AnyStr(), Float()),
    "data.extra_train": Mapping_(),
    "data.extra_train.*": Either(AnyStr(), Float()),
    "data.person_norm.enabled": Bool(),
    "data.person_norm.log_ref": Float(lo=0, lo_open=True, optional=True),
    "data.person_norm.calibrate_on": Rule("a list of class names", lambda v: False, optional=True),
    "data.input_size": Int(lo=8),
    "data.in_channels": Int(lo=1),
    "data.scaling": OneOf(*SCALINGS),
    "data.scale_reference": Float(lo=0, lo_open=True, optional=True),
    "data.split": OneOf(*SPLITS),
    "data.val_fraction": Float(lo=0, hi=1, lo_open=True, hi_open=True),
    "data.split_seed": Int(),
    "data.fold": Int(lo=0),
    "data.n_folds": Int(lo=2),
    "data.batch_size": Int(lo=1),
    "data.eval_batch_size": Int(lo=1),
    "data.shuffle_seed": Int(),
    "data.load_workers": Int(lo=0),
    "data.bad_files": OneOf("error", "skip"),
    "data.pin_memory": Bool(),
    "data.cache_dir": Str(optional=True),
    "data.on_device": Bool(),
    "data.augment.enabled": Bool(),
    "data.augment.p": Float(lo=0, hi=1),
    "data.augment.time_crop": Float(lo=0, hi=1, hi_open=True),
    "data.augment.time_shift": Float(lo=0, hi=1),
    "data.augment.time_mask": Float(lo=0, hi=1),
    "data.augment.n_time_masks": Int(lo=0),
    "data.augment.freq_mask": Float(lo=0, hi=1),
    "data.augment.n_freq_masks": Int(lo=0),
    "data.augment.scale": Float(lo=0, hi=1, hi_open=True),
    "data.augment.noise": Float(lo=0),
    "data.augment.channel_gain": Float(lo=0),
    "data.augment.level_gain": Float(lo=0),
    "data.augment.freq_warp": Float(lo=0, hi=1, hi_open=True),
    "data.augment.seed": Int(),
}
MODEL = {
    "model.in_channels": Int(lo=1),
    "model.input_size": Int(lo=8),
    "model.base_channels": Int(lo=1),
    "model.num_layers": Int(lo=1),
    "model.norm": OneOf("batch", "instance"),
    "model.pool": OneOf(*POOLS),
    "model.residual": Bool(),
    "model.residual_from": Int(lo=0),
    "model.leaky_slope": Float(lo=0),
    "model.input_log_ref": Float(lo=0, lo_open=True, optional=True),
    "model.head": OneOf(*HEADS),
    "model.head_hidden": Int(lo=1),
    "model.dropout": Float(lo=0, hi=1, hi_open=True),
    "model.label_smoothing": Float(lo=0, hi=1, hi_open=True),
    "model.mixup_alpha": Float(lo=0),
    "model.level_free_copy": Bool(),
    "model.linear_path": Int(lo=0),
}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
TRAIN = {
    **PATHS,
    **DATA,
    **MODEL,
    "seed": Int(),
    "test": Bool(optional=True),
    "ckpt_path": Str(optional=True),
    "optimized_metric": Str(),
    "report_on": OneOf("best", "last"),  # train(): the best checkpoint (ckpt_path) or the final weights
    "calibration.enabled": Bool(),
    "calibration.temperature": Float(lo=0, lo_open=True, optional=True),
    "calibration.bins": Int(lo=1),
    "calibration.min_temperature": Float(lo=0, lo_open=True),
    "calibration.max_temperature": Float(lo=0, lo_open=True),
    "optimizer.name": Str(),
    "optimizer.lr": Float(lo=0, lo_open=True),
    "optimizer.weight_decay": Float(lo=0),
    "optimizer.*": Either(Float(), AnyStr(), Bool(), optional=True),  # other torch.optim arguments
    "scheduler.warmup_epochs": Int(lo=0),
    "scheduler.cosine": Bool(),
    "scheduler.plateau.factor": Float(lo=0, hi=1, lo_open=True, hi_open=True),
    "scheduler.plateau.patience": Int(lo=0),
    "scheduler.plateau.min_lr": Float(lo=0),
    "scheduler.plateau.threshold": Float(lo=0),
    "scheduler.mode": OneOf("min", "max"),
    "scheduler.monitor": Str(),
    "trainer.default_root_dir": Str(),
    "trainer.accelerator": OneOf("auto", "cpu", "gpu", "cuda", "mps", "tpu"),
    "trainer.devices": Either(Int(lo=-1), OneOf("auto")),
    "trainer.num_nodes": Int(lo=1),
    "trainer.strategy": Str(),
    "trainer.sync_batchnorm": Bool(),
    "trainer.precision": Either(
        OneOf("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true"), OneOf(16, 32, 64)
    ),
    "trainer.min_epochs": Int(lo=0),
    "trainer.max_epochs": Int(lo=1),
    "trainer.gradient_clip_val": Float(lo=0, optional=True),
    "trainer.check_val_every_n_epoch": Int(lo=1),
    "trainer.log_every_n_steps": Int(lo=1),
    "trainer.deterministic": Either(Bool(), OneOf("warn")),
    "trainer.enable_progress_bar": Bool(),
    "trainer.enable_model_summary": Bool(),
    "trainer.fast_dev_run": Either(Bool(), Int(lo=1)),
    "trainer.*": Either(Float(), AnyStr(), Bool(), optional=True),  # other Trainer arguments
    "callbacks.*.dirpath": Str(),
    "callbacks.*.filename": Str(),
    "callbacks.*.monitor": Str(optional=True),
    "callbacks.*.mode": OneOf("min", "max"),
    "callbacks.compile.mode": OneOf(*COMPILE_MODES, optional=True),
    "callbacks.*.save_top_k": Int(lo=-1),
    "callbacks.*.every_n_epochs": Int(lo=1),
    "callbacks.*.auto_insert_metric_name": Bool(),
    "callbacks.*.enable_version_counter": Bool(),
    "callbacks.*.logging_interval": OneOf("step", "epoch", optional=True),
    "callbacks.*.tag": Str(),
    "callbacks.*.seed": Int(),
    "callbacks.*.patience": Int(lo=0),
    "callbacks.*.min_delta": Float(lo=0),
    "callbacks.*.out_dir": Str(),
    "callbacks.*.batch_size": Int(lo=1),
    "callbacks.*.max_per_class": Int(lo=1),
    "callbacks.*.start_fraction": Float(lo=0, hi=1, hi_open=True),
    "callbacks.*.checkpoint": Str(optional=True),
    "callbacks.*.*": Either(Float(), AnyStr(), Bool(), optional=True),
    "logger.*.save_dir": Str(),
    "logger.*.name": AnyStr(optional=True),
    "logger.*.version": Either(AnyStr(), Int(lo=0), optional=True),
    "logger.*.default_hp_metric": Bool(),
    "logger.*.*": Either(Float(), AnyStr(), Bool(), optional=True),
}
SVM = {
    "svm.kernel": OneOf("rbf", "linear", "poly", "sigmoid"),
    "svm.C": Float(lo=0, lo_open=True),
    "svm.gamma": Either(OneOf("scale", "auto"), Float(lo=0, lo_open=True)),
    "svm.class_weight": OneOf("balanced", optional=True),
    "svm.calibration.method": OneOf("sigmoid", "isotonic"),
    "svm.calibration.cv": Int(lo=2),
    "svm.grid_search.enabled": Bool(),
    "svm.grid_search.cv": Int(lo=2),
    "svm.grid_search.scoring": Str(),
    "svm.grid_search.n_jobs": Either(Int(lo=1), OneOf(-1)),
}
FIT_SVM = {
    **PATHS,
    **DATA,
    **MODEL,
    **SVM,
    "seed": Int(),
    "ckpt": Str(optional=True),
    "target": OneOf(*TARGETS),
    "data_dir": Str(optional=True),
    "device": DEVICE,
    "bf16": Bool(),
    "batch_size": Int(lo=1),
    "overwrite": Bool(),
}
PREDICT = {
    **PATHS,
    "ckpt": Str(optional=True),
    "svm": Str(optional=True),
    "input": Str(optional=True),
    "filter": Mapping_(),
    "filter.*": Either(AnyStr(), Float()),
    "output": Str(),
    "overwrite": Bool(),
    "device": DEVICE,
    "bf16": Bool(),
    "batch_size": Int(lo=1),
    "load_workers": Int(lo=0),
    "bad_files": OneOf("error", "skip"),
    "show_rows": Int(lo=0),
}
ADAPT_SETTINGS = {
    "adapt.method": OneOf(*ADAPT_METHODS),
    "adapt.steps": Int(lo=0),
    "adapt.lr": Float(lo=0, lo_open=True),
    "adapt.weight_decay": Float(lo=0),
    "adapt.batch_size": Int(lo=1),
    "adapt.last_blocks": Int(lo=1),
    "adapt.augment": Bool(),
    "adapt.prototype_weight": Float(lo=0, hi=1),
    "adapt.prototype_init": Bool(),
    "adapt.batchnorm": OneOf(*ADAPT_BATCHNORM),
}
ADAPT = {
    **PATHS,
    **ADAPT_SETTINGS,
    "ckpt": Str(optional=True),
    "input": Str(optional=True),
    "filter": Mapping_(),
    "filter.*": Either(AnyStr(), Float()),
    "support": Mapping_(),
    "support.*": Either(AnyStr(), Float()),
    "seed": Int(),
    "out": Str(),
    "overwrite": Bool(),
    "batch_size": Int(lo=1),
    "load_workers": Int(lo=0),
}
EVALUATE = {
    **PATHS,
    **ADAPT_SETTINGS,
    "adaptation.column": Str(),
    "adaptation.batch_size": Int(lo=1),
    "adaptation.n_jobs": Int(lo=-1),
    "adaptation.compare": Mapping_(),
    "adaptation.compare.*": Either(AnyStr(), Float(), Bool()),
    "raw": Str(optional=True),
    "out": Str(),
    "hardware": Str(),
    "seed": Int(),
    "leakage_tolerance": Float(lo=0, hi=1),
    "limit_subjects": Int(lo=1, optional=True),
    "test_filter": Mapping_(),
    "test_filter.*": Either(AnyStr(), Float()),
    "test_raw": Str(optional=True),
    "hht_dir": Str(optional=True),
    "person_norm.enabled": Bool(),
    "person_norm.log_ref": Float(lo=0, lo_open=True),
    "window.enabled": Bool(),
    "window.length_s": Float(lo=0, lo_open=True),
    "window.hop_s": Float(lo=0, lo_open=True),
    "ensemble.method": Str(),
    "ensemble.window": Bool(),
    "ensemble.cnn_weight": Float(lo=0, hi=1),
    "ensemble.calibration_cv": Int(lo=2),
    "ensemble.n_jobs": Int(lo=-1),
    "classifiers.pca_lda.n_components": Int(lo=1),
    "classifiers.pca_lda.solver": OneOf("svd", "lsqr", "eigen"),
    "inputs.manifest.*": Str(),
    "filter.resample_hz": Float(lo=0, lo_open=True, optional=True),
    "filter.notch_hz": Float(lo=0, lo_open=True, optional=True),
    "filter.notch_harmonics": Int(lo=1),
    "filter.notch_q": Float(lo=0, lo_open=True),
    "filter.order": Int(lo=1),
    "filter.max_nyquist_fraction": Float(lo=0, hi=1, lo_open=True, hi_open=True),
    "features.ar_order": Int(lo=1),
    "features.threshold": Float(lo=0),
    "features.nperseg": Int(lo=8),
    "classifiers.lda.solver": OneOf("svd", "lsqr", "eigen"),
    "classifiers.lda.shrinkage": Either(OneOf("auto"), Float(lo=0, hi=1), optional=True),
    "classifiers.svm.kernel": OneOf("rbf", "linear", "poly", "sigmoid"),
    "classifiers.svm.C": Float(lo=0, lo_open=True),
    "classifiers.svm.gamma": Either(OneOf("scale", "auto"), Float(lo=0, lo_open=True)),
    "classifiers.svm.class_weight": OneOf("balanced", optional=True),
}
