"""The schema of every entry point's config, checked before any work starts (and before torch loads).

As hht/settings.py describes make_hht's keys, each config group here is a typed dataclass whose fields
carry their rules: the annotation is the type (`X | None`: null allowed), the field's metadata the range
or choices. Defaults live in the YAML (conf/), the one place a user reads and overrides them. check_config
walks a composed config against its schema: a key the schema does not have is one line with the closest
keys ("did you mean model.num_layers?"), a value outside its rule one line naming the key and what it
accepts, instead of a traceback from deep inside Lightning, PyTorch or scikit-learn an hour later.
Groups whose other keys go straight to a library (Trainer, torch.optim, callbacks, loggers) accept those
through their EXTRA rule. tests/test_config_fuzz.py sets every scalar key of the shipped configs to a
string, 0 and -1.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from semg_hht.choices import (
    ADAPT_BATCHNORM,
    ADAPT_CHANNEL_ORDER,
    ADAPT_METHODS,
    ADAPT_PROTOTYPE_RULES,
    DEVICES,
    HEADS,
    POOLS,
    SPLITS,
)
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


# ------------------------------------------------------------------ schemas: typed dataclasses, rules as metadata


def key(**rule: Any) -> Any:
    """A field of a schema: ge/gt/le/lt (a range), one_of (choices), empty_ok (a string that may be ''),
    or rule=<Rule> where the type alone cannot say it (int or 'auto'). The annotation gives the type."""
    return field(default=None, metadata=rule)


class Schema:
    """A config group. EXTRA: what keys the schema does not name may be (a Rule, a Schema, or None: no
    other key, so a misspelt one is an error naming the closest)."""

    EXTRA: ClassVar[Rule | type[Schema] | None] = None


def _free(values: Rule) -> type[Schema]:
    """A mapping whose keys are the user's (manifest columns, class names), each value under `values`."""
    return type("FreeMapping", (Schema,), {"EXTRA": values, "__doc__": "a mapping such as {column: [values]}"})


def check_config(cfg: DictConfig, schema: type[Schema]) -> None:
    """Raise a SemgError for the first key the schema does not have or whose value breaks its rule."""
    _check_node(cfg, cfg, schema, "")


def _check_node(root: DictConfig, node: DictConfig, schema: type[Schema], at: str) -> None:
    specs = _specs(schema)
    for k in node:
        name, path = str(k), f"{at}{k}"
        if (not at and name == "hydra") or name.startswith("_"):  # Hydra's own; _target_, _partial_
            continue
        spec = specs.get(name, schema.EXTRA)
        if spec is None:
            raise unknown_key(path, [at + s for s in specs])
        child = node._get_node(name)
        if child._is_interpolation():  # ${other.key}: checked (and named) there
            continue
        if isinstance(child, ListConfig):  # lists are read (and checked) by the code that takes them
            continue
        if isinstance(child, DictConfig):
            if isinstance(spec, Rule):
                raise SemgError(f"config {path} is a mapping, not {spec.describe()}", fix=f"set {path} to one value")
            _check_node(root, child, spec, path + ".")
            continue
        try:
            value = OmegaConf.select(root, path, throw_on_missing=True)
        except OmegaConfBaseException as err:
            raise SemgError(f"config {path}: {_first_line(err)}", fix=f"set {path}=<value>") from None
        rule = _as_rule(spec)
        if not rule(value):
            raise SemgError(f"config {path}={value!r} is not {rule.describe()}", fix=f"set {path} to {rule.describe()}")


_SPECS: dict[type, dict[str, Rule | type[Schema]]] = {}


def _specs(schema: type[Schema]) -> dict[str, Rule | type[Schema]]:
    """name -> Rule (a value) or Schema (a group), from the dataclass's annotations and field metadata."""
    if schema not in _SPECS:
        hints = typing.get_type_hints(schema) if hasattr(schema, "__dataclass_fields__") else {}
        _SPECS[schema] = {f.name: _spec(hints[f.name], dict(f.metadata)) for f in fields(schema)} if hints else {}
    return _SPECS[schema]


def _spec(annotation: Any, meta: dict[str, Any]) -> Rule | type[Schema]:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), annotation)
    if isinstance(base, type) and issubclass(base, Schema):
        return base
    if "rule" in meta:
        return meta["rule"]
    if "one_of" in meta:
        return OneOf(*meta["one_of"], optional=optional)
    if base is bool:
        return Bool(optional)
    if base is int:
        return Int(meta.get("ge"), meta.get("le"), optional)
    if base is float:
        lo, hi = meta.get("ge", meta.get("gt")), meta.get("le", meta.get("lt"))
        return Float(lo, hi, "gt" in meta, "lt" in meta, optional)
    if base is str:
        return AnyStr(optional) if meta.get("empty_ok") else Str(optional)
    if base is list:  # its items are checked by the code that reads it; one value in its place is not
        return Rule("a list [...]", lambda v: False, optional)
    raise TypeError(f"no rule for the annotation {annotation!r}")  # pragma: no cover - a schema bug


def _as_rule(spec: Rule | type[Schema]) -> Rule:
    """A group given one value: only null (no group) passes."""
    return spec if isinstance(spec, Rule) else Rule(spec.__doc__ or "a mapping", lambda v: False, optional=True)


def rule_for(dotted: str, schema: type[Schema]) -> Rule | None:
    """The rule of one key given a single value (None: the schema has no such key)."""
    spec: Rule | type[Schema] | None = schema
    for part in dotted.split("."):
        if not (isinstance(spec, type) and issubclass(spec, Schema)):
            return None
        spec = _specs(spec).get(part, spec.EXTRA)
    return None if spec is None else _as_rule(spec)


def scalar_keys(cfg: DictConfig) -> list[str]:
    return list(_scalar_leaves(cfg))


def _scalar_leaves(node: DictConfig, prefix: str = ""):
    for k in node:
        key_ = f"{prefix}{k}"
        if key_ == "hydra" or str(k).endswith("_target_"):
            continue
        child = node._get_node(k)
        if isinstance(child, DictConfig):
            yield from _scalar_leaves(child, key_ + ".")
        elif not isinstance(child, ListConfig):
            yield key_


def unknown_key(key: str, candidates: Iterable[str]) -> SemgError:
    """One line for a key no schema or config has, naming the closest ones."""
    close = closest(key, candidates)
    hint = f": did you mean {' or '.join(close)}?" if close else ""
    return SemgError(f"unknown config key '{key}'{hint}", fix="see every key with --cfg job")


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Candidates close to the whole dotted name, then those whose last part is close to its last part
    (`lr` -> optimizer.lr, `num_layer` -> model.num_layers)."""
    candidates = list(candidates)
    whole = difflib.get_close_matches(name, candidates, n=n, cutoff=0.75)
    leaf = name.rsplit(".", 1)[-1]
    leaves = {c: c.rsplit(".", 1)[-1] for c in candidates}
    for match in difflib.get_close_matches(leaf, sorted(set(leaves.values())), n=n, cutoff=0.75):
        whole += [c for c, last in leaves.items() if last == match and c not in whole]
    return whole[:n]


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


# ------------------------------------------------------------------ the schemas
# Choices come from the modules that use them (semg_hht.choices and friends), so a new option needs no
# second edit here.

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
LDA_SOLVERS = ("svd", "lsqr", "eigen")  # sklearn's LinearDiscriminantAnalysis
CLASSIC_SIDES = ("lda", "svm")  # adapt.py mixture.method: the classic classifiers a person-alone side can be
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")
ROW_FILTER = _free(Either(AnyStr(), Float()))  # {column: value or [values]}: data.filter, predict's filter= ...
OTHER_ARGUMENT = Either(Float(), AnyStr(), Bool(), optional=True)  # passed on to the library as given
SYNONYMS = _free(Str())  # data.filename_scheme.movement_synonyms: substring of a file name -> class
COMPARE = _free(_free(Either(AnyStr(), Float(), Bool())))  # evaluate's adaptation.compare


@dataclass(frozen=True)
class Paths(Schema):
    EXTRA: ClassVar[Rule] = AnyStr(optional=True)
    root_dir: str | None = key(empty_ok=True)
    log_dir: str | None = key(empty_ok=True)
    output_dir: str | None = key(empty_ok=True)
    data_dir: str | None = key(empty_ok=True)


@dataclass(frozen=True)
class FilenameScheme(Schema):
    movement_synonyms: SYNONYMS = field(default=None)  # lower-case substring of a file name -> class
    gender_pattern: str = key()
    unlabeled_prefix: str = key(empty_ok=True)


@dataclass(frozen=True)
class PersonNorm(Schema):
    enabled: bool = key()
    log_ref: float | None = key(gt=0)
    calibrate_on: str | None = key(rule=Rule("a list of class names", lambda v: False, optional=True))


@dataclass(frozen=True)
class Augment(Schema):
    enabled: bool = key()
    p: float = key(ge=0, le=1)
    time_crop: float = key(ge=0, lt=1)
    time_shift: float = key(ge=0, le=1)
    time_mask: float = key(ge=0, le=1)
    n_time_masks: int = key(ge=0)
    freq_mask: float = key(ge=0, le=1)
    n_freq_masks: int = key(ge=0)
    scale: float = key(ge=0, lt=1)
    noise: float = key(ge=0)
    channel_gain: float = key(ge=0)
    level_gain: float = key(ge=0)
    channel_turn: float = key(ge=0)
    freq_warp: float = key(ge=0, lt=1)
    seed: int = key()


@dataclass(frozen=True)
class Episodes(Schema):
    people: int = key(ge=0)
    classes: int = key(ge=1)
    rows: int = key(ge=1)


@dataclass(frozen=True)
class Classes(Schema):
    EXTRA: ClassVar[Rule] = Rule("a list of class names", lambda v: False, optional=True)


@dataclass(frozen=True)
class Data(Schema):
    data_dir: str = key()
    filename_scheme: FilenameScheme = field(default=None)
    label_source: str = key(one_of=("filename", "manifest"))
    manifest: str | None = key()
    filter: ROW_FILTER = field(default=None)
    allow_outside_paths: bool = key()
    target: str = key(one_of=TARGETS)
    classes: Classes = field(default=None)
    input_size: int = key(ge=8)
    in_channels: int = key(ge=1)
    scaling: str = key(one_of=SCALINGS)
    scale_reference: float | None = key(gt=0)
    split: str = key(one_of=SPLITS)
    val_fraction: float = key(gt=0, lt=1)
    split_seed: int = key()
    fold: int = key(ge=0)
    n_folds: int = key(ge=2)
    test_dir: str | None = key()
    test_manifest: str | None = key()
    test_filter: ROW_FILTER = field(default=None)
    extra_train: ROW_FILTER = field(default=None)
    batch_size: int = key(ge=1)
    episodes: Episodes = field(default=None)
    eval_batch_size: int = key(ge=1)
    shuffle_seed: int = key()
    person_norm: PersonNorm = field(default=None)
    load_workers: int = key(ge=0)
    bad_files: str = key(one_of=("error", "skip"))
    pin_memory: bool = key()
    cache_dir: str | None = key()
    on_device: bool = key()
    augment: Augment = field(default=None)


@dataclass(frozen=True)
class Model(Schema):
    in_channels: int = key(ge=1)
    input_size: int = key(ge=8)
    base_channels: int = key(ge=1)
    num_layers: int = key(ge=1)
    norm: str = key(one_of=("batch", "instance"))
    pool: str = key(one_of=POOLS)
    residual: bool = key()
    residual_from: int = key(ge=0)
    leaky_slope: float = key(ge=0)
    input_log_ref: float | None = key(gt=0)
    head: str = key(one_of=HEADS)
    head_hidden: int = key(ge=1)
    dropout: float = key(ge=0, lt=1)
    label_smoothing: float = key(ge=0, lt=1)
    mixup_alpha: float = key(ge=0)
    prototype_loss: float = key(ge=0)
    level_free_copy: bool = key()
    linear_path: int = key(ge=0)
    channel_order: list | None = field(default=None)  # checked by the encoder (an order of in_channels)


@dataclass(frozen=True)
class Optimizer(Schema):
    EXTRA: ClassVar[Rule] = OTHER_ARGUMENT  # other torch.optim arguments (betas, eps, ...)
    name: str = key()
    lr: float = key(gt=0)
    weight_decay: float = key(ge=0)


@dataclass(frozen=True)
class Plateau(Schema):
    factor: float = key(gt=0, lt=1)
    patience: int = key(ge=0)
    min_lr: float = key(ge=0)
    threshold: float = key(ge=0)


@dataclass(frozen=True)
class Scheduler(Schema):
    warmup_epochs: int = key(ge=0)
    cosine: bool = key()
    plateau: Plateau = field(default=None)
    mode: str = key(one_of=("min", "max"))
    monitor: str = key()


@dataclass(frozen=True)
class Trainer(Schema):
    EXTRA: ClassVar[Rule] = OTHER_ARGUMENT  # other lightning.Trainer arguments
    default_root_dir: str = key()
    accelerator: str = key(one_of=("auto", "cpu", "gpu", "cuda", "mps", "tpu"))
    devices: int = key(rule=Either(Int(lo=-1), OneOf("auto")))
    num_nodes: int = key(ge=1)
    strategy: str = key()
    sync_batchnorm: bool = key()
    precision: str = key(rule=Either(OneOf(*PRECISIONS), OneOf(16, 32, 64)))
    min_epochs: int = key(ge=0)
    max_epochs: int = key(ge=1)
    gradient_clip_val: float | None = key(ge=0)
    check_val_every_n_epoch: int = key(ge=1)
    log_every_n_steps: int = key(ge=1)
    deterministic: bool = key(rule=Either(Bool(), OneOf("warn")))
    enable_progress_bar: bool = key()
    enable_model_summary: bool = key()
    fast_dev_run: int = key(rule=Either(Bool(), Int(lo=1)))


@dataclass(frozen=True)
class Callback(Schema):
    """One callback's arguments: the common ones checked here, the others passed on as given."""

    EXTRA: ClassVar[Rule] = OTHER_ARGUMENT
    dirpath: str = key()
    filename: str = key()
    monitor: str | None = key()
    mode: str = key(one_of=("min", "max"))
    save_top_k: int = key(ge=-1)
    every_n_epochs: int = key(ge=1)
    auto_insert_metric_name: bool = key()
    enable_version_counter: bool = key()
    logging_interval: str | None = key(one_of=("step", "epoch", None))
    tag: str = key()
    seed: int = key()
    patience: int = key(ge=0)
    min_delta: float = key(ge=0)
    out_dir: str = key()
    batch_size: int = key(ge=1)
    max_per_class: int = key(ge=1)
    start_fraction: float = key(ge=0, lt=1)
    checkpoint: str | None = key()


@dataclass(frozen=True)
class Compile(Callback):
    mode: str | None = key(one_of=(*COMPILE_MODES, None))


@dataclass(frozen=True)
class Callbacks(Schema):
    EXTRA: ClassVar[type[Schema]] = Callback  # any callback by name
    compile: Compile = field(default=None)


@dataclass(frozen=True)
class Logger(Schema):
    EXTRA: ClassVar[Rule] = OTHER_ARGUMENT
    save_dir: str = key()
    name: str | None = key(empty_ok=True)
    version: int | None = key(rule=Either(AnyStr(), Int(lo=0), optional=True))
    default_hp_metric: bool = key()


@dataclass(frozen=True)
class Loggers(Schema):
    EXTRA: ClassVar[type[Schema]] = Logger  # any logger by name


@dataclass(frozen=True)
class Calibration(Schema):
    enabled: bool = key()
    temperature: float | None = key(gt=0)
    bins: int = key(ge=1)
    min_temperature: float = key(gt=0)
    max_temperature: float = key(gt=0)


@dataclass(frozen=True)
class TrainConfig(Schema):
    """conf/train.yaml: train.py."""

    paths: Paths = field(default=None)
    task_name: str = key()
    seed: int = key()
    ckpt_path: str | None = key()
    optimized_metric: str = key()
    test: bool | None = key()
    report_on: str = key(one_of=("best", "last"))  # metrics.json: the best checkpoint or the final weights
    overwrite: bool = key()
    calibration: Calibration = field(default=None)
    data: Data = field(default=None)
    model: Model = field(default=None)
    optimizer: Optimizer = field(default=None)
    scheduler: Scheduler = field(default=None)
    trainer: Trainer = field(default=None)
    callbacks: Callbacks = field(default=None)
    logger: Loggers | None = field(default=None)


@dataclass(frozen=True)
class SvmCalibration(Schema):
    method: str = key(one_of=("sigmoid", "isotonic"))
    cv: int = key(ge=2)


@dataclass(frozen=True)
class GridSearch(Schema):
    enabled: bool = key()
    C: list = field(default=None)
    gamma: list = field(default=None)
    cv: int = key(ge=2)
    scoring: str = key()
    n_jobs: int = key(rule=Either(Int(lo=1), OneOf(-1)))


@dataclass(frozen=True)
class SvmParams(Schema):
    """sklearn SVC's arguments: fit_svm.py's svm.* and evaluate.py's classifiers.svm.*."""

    kernel: str = key(one_of=("rbf", "linear", "poly", "sigmoid"))
    C: float = key(gt=0)
    gamma: str = key(rule=Either(OneOf("scale", "auto"), Float(lo=0, lo_open=True)))
    class_weight: str | None = key(one_of=("balanced", None))


@dataclass(frozen=True)
class Svm(SvmParams):
    calibration: SvmCalibration = field(default=None)
    grid_search: GridSearch = field(default=None)


@dataclass(frozen=True)
class FitSvmConfig(Schema):
    """conf/fit_svm.yaml: fit_svm.py (data and model: read only for ckpt=null)."""

    paths: Paths = field(default=None)
    task_name: str = key()
    data: Data = field(default=None)
    model: Model = field(default=None)
    seed: int = key()
    ckpt: str | None = key()
    target: str = key(one_of=TARGETS)
    data_dir: str | None = key()
    device: str = key(one_of=DEVICES)
    bf16: bool = key()
    batch_size: int = key(ge=1)
    overwrite: bool = key()
    svm: Svm = field(default=None)


@dataclass(frozen=True)
class PredictConfig(Schema):
    """conf/predict.yaml: predict.py."""

    paths: Paths = field(default=None)
    task_name: str = key()
    ckpt: str | None = key()
    svm: str | None = key()
    input: str | None = key()
    filter: ROW_FILTER = field(default=None)
    output: str = key()
    overwrite: bool = key()
    device: str = key(one_of=DEVICES)
    bf16: bool = key()
    batch_size: int = key(ge=1)
    load_workers: int = key(ge=0)
    bad_files: str = key(one_of=("error", "skip"))
    show_rows: int = key(ge=0)
    raw: str | None = key()


@dataclass(frozen=True)
class AdaptSettings(Schema):
    """conf/adaptation/default.yaml (adapt.py's and evaluate.py's `adapt`)."""

    method: str = key(one_of=ADAPT_METHODS)
    steps: int = key(ge=0)
    lr: float = key(gt=0)
    weight_decay: float = key(ge=0)
    batch_size: int = key(ge=1)
    last_blocks: int = key(ge=1)
    augment: bool = key()
    prototype_weight: float = key(ge=0, le=1)
    prototype_init: bool = key()
    prototype_rule: str = key(one_of=ADAPT_PROTOTYPE_RULES)
    prototype_windows: float = key(ge=0, lt=1)
    batchnorm: str = key(one_of=ADAPT_BATCHNORM)
    channel_order: str = key(one_of=ADAPT_CHANNEL_ORDER)
    time_crop: float = key(ge=0, lt=1)


@dataclass(frozen=True)
class Features(Schema):
    ar_order: int = key(ge=1)
    threshold: float = key(ge=0)
    nperseg: int = key(ge=8)


@dataclass(frozen=True)
class Lda(Schema):
    solver: str = key(one_of=LDA_SOLVERS)
    shrinkage: float | None = key(rule=Either(OneOf("auto"), Float(lo=0, hi=1), optional=True))


@dataclass(frozen=True)
class ClassicWindow(Schema):
    length_s: float = key(gt=0)
    hop_s: float = key(gt=0)


@dataclass(frozen=True)
class ClassicClassifiers(Schema):
    """conf/classic/default.yaml's classifiers (evaluate.py adds pca_lda)."""

    lda: Lda = field(default=None)
    svm: SvmParams = field(default=None)


@dataclass(frozen=True)
class ServedMixture(Schema):
    """conf/adapt.yaml's mixture: the person-alone classic side adapt.py fits (with raw=) and predict.py serves."""

    method: str | None = key(one_of=CLASSIC_SIDES)
    cnn_weight: float = key(ge=0, le=1)
    calibration_cv: int = key(ge=2)
    window: ClassicWindow = field(default=None)
    features: Features = field(default=None)
    classifiers: ClassicClassifiers = field(default=None)


@dataclass(frozen=True)
class AdaptConfig(Schema):
    """conf/adapt.yaml: adapt.py."""

    paths: Paths = field(default=None)
    adapt: AdaptSettings = field(default=None)
    task_name: str = key()
    ckpt: str | None = key()
    input: str | None = key()
    filter: ROW_FILTER = field(default=None)
    support: ROW_FILTER = field(default=None)
    seed: int = key()
    out: str = key()
    overwrite: bool = key()
    batch_size: int = key(ge=1)
    load_workers: int = key(ge=0)
    raw: str | None = key()
    mixture: ServedMixture = field(default=None)


@dataclass(frozen=True)
class EvalPersonNorm(Schema):
    enabled: bool = key()
    log_ref: float = key(gt=0)


@dataclass(frozen=True)
class Window(ClassicWindow):
    enabled: bool = key()
    methods: list = field(default=None)


@dataclass(frozen=True)
class Ensemble(Schema):
    method: str = key()
    window: bool = key()
    cnn_weight: float = key(ge=0, le=1)
    n_jobs: int = key(ge=-1)


@dataclass(frozen=True)
class AdaptMixture(Schema):
    methods: list = field(default=None)  # keys of classifiers (checked when the rows are read)
    cnn_weight: float = key(ge=0, le=1)
    ceiling: bool = key()


@dataclass(frozen=True)
class AdaptiveLda(Schema):
    enabled: bool = key()
    own_weight: float = key(ge=0, le=1)
    log_amplitude: bool = key()
    ridge: float = key(ge=0)


@dataclass(frozen=True)
class Adaptation(Schema):
    ks: list = field(default=None)
    methods: list = field(default=None)
    pooled_methods: list = field(default=None)
    column: str = key()
    batch_size: int = key(ge=1)
    n_jobs: int = key(ge=-1)
    compare: COMPARE = field(default=None)  # {name: {adapt key: value}}: more recipes on the same splits
    channel_order: list | None = field(default=None)  # a permutation of the input channels (checked when read)
    adaptive_lda: AdaptiveLda = field(default=None)
    mixture: AdaptMixture = field(default=None)


@dataclass(frozen=True)
class PcaLda(Schema):
    n_components: int = key(ge=1)
    solver: str = key(one_of=LDA_SOLVERS)


@dataclass(frozen=True)
class Classifiers(ClassicClassifiers):
    pca_lda: PcaLda = field(default=None)


@dataclass(frozen=True)
class EvaluateConfig(Schema):
    """conf/evaluate.yaml: evaluate.py."""

    paths: Paths = field(default=None)
    adapt: AdaptSettings = field(default=None)
    task_name: str = key()
    raw: str | None = key()
    make_hht: list = field(default=None)  # make_hht.py's overrides: checked by its own schema (hht/settings.py)
    out: str = key()
    overwrite: bool = key()
    hardware: str = key()
    experiments: list = field(default=None)
    overrides: list = field(default=None)
    sweeps: list = field(default=None)
    methods: list = field(default=None)
    seed: int = key()
    leakage_tolerance: float = key(ge=0, le=1)
    limit_subjects: int | None = key(ge=1)
    test_filter: ROW_FILTER = field(default=None)
    test_raw: str | None = key()
    hht_dir: str | None = key()
    person_norm: EvalPersonNorm = field(default=None)
    window: Window = field(default=None)
    ensemble: Ensemble = field(default=None)
    adaptation: Adaptation = field(default=None)
    features: Features = field(default=None)
    calibration_cv: int = key(ge=2)
    classifiers: Classifiers = field(default=None)


# the names the entry points and their work functions check against
TRAIN, FIT_SVM, PREDICT, ADAPT, EVALUATE = TrainConfig, FitSvmConfig, PredictConfig, AdaptConfig, EvaluateConfig
