"""conf/hht.yaml -> frozen, picklable settings. The dataclasses are the schema (OmegaConf checks types and
refuses unknown keys), their fields' rules and check() the ranges; every error is one line naming the key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from semg_hht.errors import SemgError
from semg_hht.filename_scheme import FilenameScheme
from semg_hht.hht.naming import check_scheme


def _rule(default: Any, **rule: Any) -> Any:
    """A field with a rule: ge=lowest, below=bound, gt0=True (None passes), one_of=choices, hz=True ([lo, hi])."""
    return field(default=default, metadata=rule)


class _Group:
    """A group of keys, `at` its prefix: lists become tuples, then each field's rule and check() run."""

    at: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            key, value, rule = self.at + f.name, getattr(self, f.name), f.metadata
            if isinstance(value, list):  # OmegaConf hands over lists; settings keep tuples
                object.__setattr__(self, f.name, value := tuple(value))
            if "ge" in rule and value < rule["ge"]:
                raise SemgError(f"config key '{key}'={value} must be >= {rule['ge']}")
            if rule.get("gt0") and value is not None and not value > 0:
                raise SemgError(f"config key '{key}'={value} must be > 0")
            if "below" in rule and not value < rule["below"]:
                raise SemgError(f"config key '{key}'={value} must be below {rule['below']}")
            if "one_of" in rule and value is not None and value not in rule["one_of"]:  # None: typed Optional
                choices = ", ".join("null" if c is None else str(c) for c in rule["one_of"])
                raise SemgError(f"config key '{key}'={value!r} is not one of {choices}")
            if rule.get("hz") and value not in (None, "band"):  # band: spectrum.freq_range only
                pair = isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
                if not pair or not 0 <= value[0] < value[1]:
                    raise SemgError(f"config key '{key}'={value!r} is not [low, high] Hz with 0 <= low < high")
                object.__setattr__(self, f.name, tuple(float(v) for v in value))
            if f.type == "str" and value == "":
                raise SemgError(f"config key '{key}' has no value", fix=f"pass {key}=...")
        self.check()

    def check(self) -> None: ...  # rules across keys, where a group has them


@dataclass(frozen=True)
class ManifestColumns(_Group):
    path_col: str = "path"
    fs_col: str = "fs_hz"
    subject_col: str = "subject"
    movement_col: str = "movement"
    gender_col: str = "gender"


@dataclass(frozen=True)
class InputSettings(_Group):
    extensions: tuple[str, ...] = (".csv", ".txt", ".npy", ".npz", ".mat")
    recursive: bool = True
    labels_from_names: bool = True
    subject_regex: str | None = None
    manifest: ManifestColumns = field(default_factory=ManifestColumns)

    def check(self) -> None:
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in self.extensions)
        object.__setattr__(self, "extensions", exts)


@dataclass(frozen=True)
class ReaderSettings(_Group):
    fs: float | None = _rule(None, gt0=True)
    delimiter: str = _rule("auto", one_of=("auto", "comma", "semicolon", "whitespace"))
    time_column: int | str | None = None
    channel_names: tuple[str, ...] | None = None
    channels: tuple[Any, ...] | None = None  # indices or names
    npz_signal_key: str = "signal"
    npz_fs_key: str = "fs"
    mat_key: str = "signal"
    mat_fs_key: str = "fs"
    names_key: str = "channels"


@dataclass(frozen=True)
class FilterSettings(_Group):
    resample_hz: float | None = _rule(None, gt0=True)
    notch_hz: float | None = _rule(None, gt0=True)
    notch_harmonics: int = _rule(1, ge=1)
    notch_q: float = _rule(30.0, gt0=True)
    bandpass: tuple[float, float] | None = _rule((20.0, 450.0), hz=True)
    order: int = _rule(4, ge=1)
    max_nyquist_fraction: float = _rule(0.95, gt0=True, below=1)


@dataclass(frozen=True)
class WindowSettings(_Group):
    length_s: float | None = _rule(None, gt0=True)
    hop_s: float | None = _rule(None, gt0=True)
    min_samples: int = _rule(64, ge=8)


@dataclass(frozen=True)
class NormaliseSettings(_Group):
    method: str = _rule("zscore", one_of=("zscore", "rms", "maxabs", "none"))
    scope: str = _rule("recording", one_of=("recording", "window"))


SPLINES = ("cubic", "akima", "pchip", "cubic_hermite", "slinear", "quadratic", "linear")  # PyEMD's spline kinds


@dataclass(frozen=True)
class EMDOptions(_Group):
    """PyEMD EMD(...)'s own settings (null: PyEMD's default). EMD takes **kwargs and ignores a name it does
    not know, so they are spelled out here: a misspelt one is refused, not silently without effect."""

    spline_kind: str | None = _rule(None, one_of=(*SPLINES, None))
    nbsym: int | None = _rule(None, gt0=True)  # mirrored extrema at each boundary
    extrema_detection: str | None = _rule(None, one_of=("simple", "parabol", None))
    energy_ratio_thr: float | None = _rule(None, gt0=True)
    std_thr: float | None = _rule(None, gt0=True)
    svar_thr: float | None = _rule(None, gt0=True)
    total_power_thr: float | None = _rule(None, gt0=True)
    range_thr: float | None = _rule(None, gt0=True)
    scale_factor: float | None = _rule(None, gt0=True)
    MAX_ITERATION: int | None = _rule(None, gt0=True)
    FIXE: int | None = _rule(None, gt0=True)  # a fixed number of sifting iterations (0/null: by the thresholds)
    FIXE_H: int | None = _rule(None, gt0=True)


@dataclass(frozen=True)
class EMDSettings(_Group):
    method: str = _rule("emd", one_of=("emd", "eemd", "ceemdan"))
    max_imf: int = _rule(10, ge=-1)
    trials: int = _rule(100, ge=1)
    noise_width: float = _rule(0.05, gt0=True)
    epsilon: float = _rule(0.005, gt0=True)
    options: EMDOptions = field(default_factory=EMDOptions)


@dataclass(frozen=True)
class SpectrumSettings(_Group):
    size: int = _rule(256, ge=2)
    # null | [lo, hi] Hz | band (the band-pass actually applied)
    freq_range: Any = field(default=None, metadata={"hz": True})
    weighting: str = _rule("amplitude", one_of=("amplitude", "energy"))
    # log: rows evenly spaced in log frequency (a factor between two people's spectra is then a shift)
    freq_scale: str = _rule("linear", one_of=("linear", "log"))
    # instantaneous frequencies off the axis: clip (into its first/last row) | drop (their amplitude left out);
    # null: what each axis always did, clip on the full 0..fs/2 axis (the seed), drop outside a freq_range
    out_of_range: str | None = _rule(None, one_of=("clip", "drop"))

    @property
    def edges(self) -> str:
        """out_of_range in force: clip or drop."""
        return self.out_of_range or ("clip" if self.freq_range is None else "drop")


@dataclass(frozen=True)
class LayoutSettings(_Group):
    stack_channels: bool = False
    stacked_name: str = "EMG"
    min_digits: int = _rule(3, ge=1)


@dataclass(frozen=True)
class SegmentSettings(_Group):
    enabled: bool = False
    mode: str = _rule("labels", one_of=("labels", "marker"))
    label_key: str = "restimulus"
    repetition_key: str | None = "rerepetition"
    subject_key: str | None = "subject"
    rest_label: float = 0.0
    keep_rest: bool = False
    min_duration_s: float = _rule(0.0, ge=0)
    max_duration_s: float | None = _rule(None, gt0=True)
    pad_s: float = _rule(0.0, ge=0)
    labels: tuple[str, ...] | None = None
    reps_per_label: int = _rule(1, ge=1)
    # shipped data: a marker on the protocol's timeline, a last repetition cut by the end of the recording
    label_length: str = _rule("fit", one_of=("strict", "fit"))
    open_end: str = _rule("skip", one_of=("refuse", "close", "skip"))
    meta_keys: dict[str, str] | None = None  # manifest column -> session variable

    def check(self) -> None:
        for column, variable in (self.meta_keys or {}).items():
            if not str(column).strip() or not str(variable).strip():
                problem = f"config key 'segment.meta_keys' maps {column!r} to {variable!r}: both need a name"
                raise SemgError(problem, fix="e.g. segment.meta_keys={gender:gender,age:age}")
        if self.max_duration_s is not None and self.max_duration_s <= self.min_duration_s:
            raise SemgError("segment.max_duration_s must be above segment.min_duration_s", fix="or null (no limit)")
        if self.enabled and self.mode == "marker" and not self.labels:
            fix = "e.g. segment.labels=[fist,pinch,open] segment.reps_per_label=5"
            raise SemgError("segment.mode=marker needs segment.labels: the movements in protocol order", fix=fix)


@dataclass(frozen=True)
class PreviewSettings(_Group):  # preview.png, drawn after the conversion (semg_hht.conversion)
    enabled: bool = True
    per_class: int = _rule(3, ge=1)
    max_classes: int = _rule(8, ge=1)
    max_channels: int = _rule(8, ge=1)


@dataclass(frozen=True)
class Settings(_Group):
    input: str
    output: str
    filename_scheme: FilenameScheme  # conf/filename_scheme/ (no default here: the YAML is its one home)
    overwrite: bool = False
    workers: int = _rule(0, ge=0)
    shard: int = _rule(0, ge=0)
    num_shards: int = _rule(1, ge=1)
    progress: bool = True
    seed: int = 0
    max_memory_fraction: float = _rule(0.5, gt0=True)
    inputs: InputSettings = field(default_factory=InputSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    filter: FilterSettings = field(default_factory=FilterSettings)
    window: WindowSettings = field(default_factory=WindowSettings)
    normalise: NormaliseSettings = field(default_factory=NormaliseSettings)
    emd: EMDSettings = field(default_factory=EMDSettings)
    spectrum: SpectrumSettings = field(default_factory=SpectrumSettings)
    layout: LayoutSettings = field(default_factory=LayoutSettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    preview: PreviewSettings = field(default_factory=PreviewSettings)

    def check(self) -> None:
        if self.max_memory_fraction > 1:
            fix = "use a share of the available memory, e.g. 0.5"
            raise SemgError(f"config key 'max_memory_fraction'={self.max_memory_fraction} must be <= 1", fix=fix)
        if self.shard >= self.num_shards:
            fix = "use 0 <= shard < num_shards"
            raise SemgError(f"shard={self.shard} is not below num_shards={self.num_shards}", fix=fix)
        if self.spectrum.freq_range == "band" and self.filter.bandpass is None:
            fix = "set filter.bandpass"
            raise SemgError("spectrum.freq_range=band needs a band-pass (filter.bandpass is null)", fix=fix)
        span = self.filter.bandpass if self.spectrum.freq_range == "band" else self.spectrum.freq_range
        if self.spectrum.freq_scale == "log" and not (span and span[0] > 0):
            fix = "set spectrum.freq_range=band or e.g. spectrum.freq_range=[20,450]"
            raise SemgError("spectrum.freq_scale=log needs a frequency range starting above 0 Hz", fix=fix)
        check_scheme(self.filename_scheme)

    def signature(self) -> str:
        """Hash of everything that changes a matrix: a rerun refuses to mix outputs of other settings."""
        relevant = {k: v for k, v in asdict(self).items() if k not in _NOT_HASHED}
        if not self.segment.enabled:  # outputs made before segmenting existed stay reusable
            relevant.pop("segment")
        else:  # what never changes a matrix's values, so outputs made before these keys existed stay reusable:
            # names and labels (meta_keys); labels fitted to the signal (label_length) are the labels a hand-fixed
            # file holds; refuse and skip make no matrix of an open segment, only close does
            for key in ("label_length", "meta_keys", *(("open_end",) if self.segment.open_end != "close" else ())):
                relevant["segment"].pop(key)
        if self.spectrum.freq_scale == "linear":  # outputs made before the log axis existed stay reusable
            relevant["spectrum"].pop("freq_scale")
        # out_of_range only where it changes what the axis always did (null, or the value null means), so
        # outputs made before it existed stay reusable and a changed value is refused like any spectrum key
        relevant["spectrum"].pop("out_of_range")
        if self.spectrum.edges != ("clip" if self.spectrum.freq_range is None else "drop"):
            relevant["spectrum"]["out_of_range"] = self.spectrum.edges
        relevant.pop("preview")  # a picture of the outputs, not part of them: changing it reuses every matrix
        # the options set, as (key, value) pairs: as when options was a free mapping, so older outputs match
        relevant["emd"]["options"] = sorted((k, v) for k, v in relevant["emd"]["options"].items() if v is not None)
        return hashlib.sha1(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


ManifestColumns.at = "inputs.manifest."
EMDOptions.at = "emd.options."
for _group in fields(Settings):
    if isinstance(_group.default_factory, type):
        _group.default_factory.at = _group.name + "."
# Left out of the signature: how a run goes, and what decides names and labels but not a matrix's values.
# The file-name scheme is left out whatever it is (not only when it is the default): a matrix converted
# under another scheme holds the same numbers, its name and its manifest.csv row are made afresh from the
# scheme in force, and every matrix already on disk keeps the signature it was written with.
RUN_KEYS = {"input", "output", "overwrite", "workers", "shard", "num_shards", "progress"}  # the run
RUN_KEYS |= {"max_memory_fraction"}  # a bound on the run's memory (also left out of conversion.yaml: hht/record.py)
_NOT_HASHED = RUN_KEYS | {"inputs", "filename_scheme"}  # names and labels


def settings_from_cfg(cfg: Any, cls: type = Settings) -> Any:
    """Settings (or one group of them, e.g. cls=FilterSettings for a filter.* node) from a Hydra/OmegaConf
    config or a plain dict, checked against the schema."""
    raw = dict(cfg) if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=False)
    raw = {k: v for k, v in raw.items() if k not in ("hydra", "defaults")}  # Hydra's own nodes are not ours
    _unlock(schema := OmegaConf.structured(cls))  # frozen dataclasses make read-only nodes; the merge writes
    try:
        return OmegaConf.to_object(OmegaConf.merge(schema, raw))
    except OmegaConfBaseException as err:
        key = cls.at + str(getattr(err, "full_key", "") or "?")
        if isinstance(err, ConfigKeyError):
            raise SemgError(f"unknown config key(s): {key}", fix="check the spelling against conf/hht.yaml") from None
        missing = isinstance(err, MissingMandatoryValue)
        problem = "has no value" if missing else f"has a wrong value ({str(err).splitlines()[0]})"
        fix = f"pass {key}=..." if missing else "see conf/hht.yaml"
        raise SemgError(f"config key '{key}' {problem}", fix=fix) from None


def _unlock(node: DictConfig) -> None:
    OmegaConf.set_readonly(node, False)
    for key in node:
        if isinstance(child := node._get_node(key), DictConfig):
            _unlock(child)
