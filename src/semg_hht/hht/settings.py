"""conf/hht.yaml -> frozen, picklable settings; every key is consumed, unknown keys are errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from semg_hht.errors import SemgError

NORMALISE_METHODS = ("zscore", "rms", "maxabs", "none")
NORMALISE_SCOPES = ("recording", "window")
EMD_METHODS = ("emd", "eemd", "ceemdan")
WEIGHTINGS = ("amplitude", "energy")
DELIMITERS = ("auto", "comma", "semicolon", "whitespace")
SEGMENT_MODES = ("labels", "marker")


@dataclass(frozen=True)
class ManifestColumns:
    path_col: str = "path"
    fs_col: str = "fs_hz"
    subject_col: str = "subject"
    movement_col: str = "movement"
    gender_col: str = "gender"


@dataclass(frozen=True)
class InputSettings:
    extensions: tuple[str, ...] = (".csv", ".txt", ".npy", ".npz", ".mat")
    recursive: bool = True
    labels_from_names: bool = True
    subject_regex: str | None = None
    manifest: ManifestColumns = field(default_factory=ManifestColumns)


@dataclass(frozen=True)
class ReaderSettings:
    fs: float | None = None
    delimiter: str = "auto"
    time_column: int | str | None = None
    channel_names: tuple[str, ...] | None = None
    channels: tuple[int | str, ...] | None = None
    npz_signal_key: str = "signal"
    npz_fs_key: str = "fs"
    mat_key: str = "signal"
    mat_fs_key: str = "fs"
    names_key: str = "channels"


@dataclass(frozen=True)
class FilterSettings:
    resample_hz: float | None = None
    notch_hz: float | None = None
    notch_harmonics: int = 1
    notch_q: float = 30.0
    bandpass: tuple[float, float] | None = (20.0, 450.0)
    order: int = 4
    max_nyquist_fraction: float = 0.95


@dataclass(frozen=True)
class WindowSettings:
    length_s: float | None = None
    hop_s: float | None = None
    min_samples: int = 64


@dataclass(frozen=True)
class NormaliseSettings:
    method: str = "zscore"
    scope: str = "recording"


@dataclass(frozen=True)
class EMDSettings:
    method: str = "emd"
    max_imf: int = 10
    trials: int = 100
    noise_width: float = 0.05
    epsilon: float = 0.005
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SpectrumSettings:
    size: int = 256
    freq_range: tuple[float, float] | str | None = None  # str: "band" (the band-pass actually applied)
    weighting: str = "amplitude"


@dataclass(frozen=True)
class LayoutSettings:
    stack_channels: bool = False
    stacked_name: str = "EMG"
    min_digits: int = 3


@dataclass(frozen=True)
class SegmentSettings:
    enabled: bool = False
    mode: str = "labels"
    label_key: str = "restimulus"
    repetition_key: str | None = "rerepetition"
    subject_key: str | None = "subject"
    rest_label: float = 0.0
    keep_rest: bool = False
    min_duration_s: float = 0.0
    max_duration_s: float | None = None
    pad_s: float = 0.0
    labels: tuple[str, ...] | None = None
    reps_per_label: int = 1


@dataclass(frozen=True)
class Settings:
    input: str
    output: str
    overwrite: bool = False
    workers: int = 0
    shard: int = 0
    num_shards: int = 1
    progress: bool = True
    seed: int = 0
    inputs: InputSettings = field(default_factory=InputSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    filter: FilterSettings = field(default_factory=FilterSettings)
    window: WindowSettings = field(default_factory=WindowSettings)
    normalise: NormaliseSettings = field(default_factory=NormaliseSettings)
    emd: EMDSettings = field(default_factory=EMDSettings)
    spectrum: SpectrumSettings = field(default_factory=SpectrumSettings)
    layout: LayoutSettings = field(default_factory=LayoutSettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)

    def signature(self) -> str:
        """Hash of everything that changes a matrix: a rerun refuses to mix outputs of other settings."""
        relevant = {k: v for k, v in asdict(self).items() if k not in _RUN_ONLY}
        if not self.segment.enabled:  # outputs made before segmenting existed stay reusable
            relevant.pop("segment")
        blob = json.dumps(relevant, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


_RUN_ONLY = {"input", "output", "overwrite", "workers", "shard", "num_shards", "progress", "inputs"}


def settings_from_cfg(cfg: Any) -> Settings:
    """Build Settings from a Hydra/OmegaConf config or a plain dict, validating every value."""
    data = _to_plain(cfg)
    data.pop("hydra", None)
    data.pop("defaults", None)
    s = Settings(
        input=_req_str(data, "input"),
        output=_req_str(data, "output"),
        overwrite=_bool(data, "overwrite"),
        workers=_int(data, "workers", lo=0),
        shard=_int(data, "shard", lo=0),
        num_shards=_int(data, "num_shards", lo=1),
        progress=_bool(data, "progress"),
        seed=_int(data, "seed"),
        inputs=_inputs(_group(data, "inputs")),
        reader=_reader(_group(data, "reader")),
        filter=_filter(_group(data, "filter")),
        window=_window(_group(data, "window")),
        normalise=_normalise(_group(data, "normalise")),
        emd=_emd(_group(data, "emd")),
        spectrum=_spectrum(_group(data, "spectrum")),
        layout=_layout(_group(data, "layout")),
        segment=_segment(_group(data, "segment")),
    )
    _no_leftovers(data, "")
    if s.shard >= s.num_shards:
        raise SemgError(f"shard={s.shard} is not below num_shards={s.num_shards}", fix="use 0 <= shard < num_shards")
    if s.spectrum.freq_range == "band" and s.filter.bandpass is None:
        raise SemgError(
            "spectrum.freq_range=band needs a band-pass (filter.bandpass is null)", fix="set filter.bandpass"
        )
    return s


def filter_settings(cfg: Any) -> FilterSettings:
    """A filter.* node alone (as in conf/hht.yaml), validated: for code that filters the raw
    recordings as make_hht does (the classic baseline of conf/evaluate.yaml)."""
    return _filter(_to_plain(cfg))


# ---------------------------------------------------------------- groups


def _inputs(d: dict) -> InputSettings:
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in _list(d, "inputs.extensions", str))
    m = _group(d, "manifest", prefix="inputs.")
    cols = ManifestColumns(**{k: _req_str(m, k, prefix="inputs.manifest.") for k in _fields(ManifestColumns)})
    _no_leftovers(m, "inputs.manifest.")
    out = InputSettings(
        extensions=exts,
        recursive=_bool(d, "recursive", prefix="inputs."),
        labels_from_names=_bool(d, "labels_from_names", prefix="inputs."),
        subject_regex=_opt_str(d, "subject_regex", prefix="inputs."),
        manifest=cols,
    )
    _no_leftovers(d, "inputs.")
    return out


def _reader(d: dict) -> ReaderSettings:
    p = "reader."
    names = d.pop("channel_names", None)
    chans = d.pop("channels", None)
    time_col = d.pop("time_column", None)
    out = ReaderSettings(
        fs=_opt_float(d, "fs", prefix=p, positive=True),
        delimiter=_choice(d, "delimiter", DELIMITERS, prefix=p),
        time_column=time_col,
        channel_names=None if names is None else tuple(str(n) for n in _as_list(names, p + "channel_names")),
        channels=None if chans is None else tuple(_as_list(chans, p + "channels")),
        npz_signal_key=_req_str(d, "npz_signal_key", prefix=p),
        npz_fs_key=_req_str(d, "npz_fs_key", prefix=p),
        mat_key=_req_str(d, "mat_key", prefix=p),
        mat_fs_key=_req_str(d, "mat_fs_key", prefix=p),
        names_key=_req_str(d, "names_key", prefix=p),
    )
    _no_leftovers(d, p)
    return out


def _hz_range(d: dict, key: str, prefix: str) -> tuple[float, float] | None:
    """An optional [low, high] Hz pair with 0 <= low < high."""
    value = d.pop(key, None)
    if value is None:
        return None
    pair = tuple(float(v) for v in _as_list(value, prefix + key))
    if len(pair) != 2 or not 0 <= pair[0] < pair[1]:
        raise SemgError(f"{prefix}{key}={list(pair)} is not [low, high] Hz with 0 <= low < high")
    return pair


def _filter(d: dict) -> FilterSettings:
    p = "filter."
    band = _hz_range(d, "bandpass", p)
    out = FilterSettings(
        resample_hz=_opt_float(d, "resample_hz", prefix=p, positive=True),
        notch_hz=_opt_float(d, "notch_hz", prefix=p, positive=True),
        notch_harmonics=_int(d, "notch_harmonics", lo=1, prefix=p),
        notch_q=_float(d, "notch_q", prefix=p, positive=True),
        bandpass=band,
        order=_int(d, "order", lo=1, prefix=p),
        max_nyquist_fraction=_float(d, "max_nyquist_fraction", prefix=p, positive=True),
    )
    if out.max_nyquist_fraction >= 1:
        raise SemgError("filter.max_nyquist_fraction must be below 1", fix="e.g. 0.95")
    _no_leftovers(d, p)
    return out


def _window(d: dict) -> WindowSettings:
    p = "window."
    out = WindowSettings(
        length_s=_opt_float(d, "length_s", prefix=p, positive=True),
        hop_s=_opt_float(d, "hop_s", prefix=p, positive=True),
        min_samples=_int(d, "min_samples", lo=8, prefix=p),
    )
    _no_leftovers(d, p)
    return out


def _normalise(d: dict) -> NormaliseSettings:
    p = "normalise."
    out = NormaliseSettings(
        method=_choice(d, "method", NORMALISE_METHODS, prefix=p),
        scope=_choice(d, "scope", NORMALISE_SCOPES, prefix=p),
    )
    _no_leftovers(d, p)
    return out


def _emd(d: dict) -> EMDSettings:
    p = "emd."
    options = d.pop("options", None) or {}
    if not isinstance(options, dict):
        raise SemgError("emd.options must be a mapping of PyEMD EMD arguments", fix="e.g. emd.options={}")
    out = EMDSettings(
        method=_choice(d, "method", EMD_METHODS, prefix=p),
        max_imf=_int(d, "max_imf", lo=-1, prefix=p),
        trials=_int(d, "trials", lo=1, prefix=p),
        noise_width=_float(d, "noise_width", prefix=p, positive=True),
        epsilon=_float(d, "epsilon", prefix=p, positive=True),
        options=tuple(sorted(options.items())),
    )
    _no_leftovers(d, p)
    return out


def _spectrum(d: dict) -> SpectrumSettings:
    p = "spectrum."
    fr = "band" if d.get("freq_range") == "band" and d.pop("freq_range") else _hz_range(d, "freq_range", p)
    out = SpectrumSettings(
        size=_int(d, "size", lo=2, prefix=p),
        freq_range=fr,
        weighting=_choice(d, "weighting", WEIGHTINGS, prefix=p),
    )
    _no_leftovers(d, p)
    return out


def _layout(d: dict) -> LayoutSettings:
    p = "layout."
    out = LayoutSettings(
        stack_channels=_bool(d, "stack_channels", prefix=p),
        stacked_name=_req_str(d, "stacked_name", prefix=p),
        min_digits=_int(d, "min_digits", lo=1, prefix=p),
    )
    _no_leftovers(d, p)
    return out


def _segment(d: dict) -> SegmentSettings:
    p = "segment."
    labels = d.pop("labels", None)
    out = SegmentSettings(
        enabled=_bool(d, "enabled", prefix=p),
        mode=_choice(d, "mode", SEGMENT_MODES, prefix=p),
        label_key=_req_str(d, "label_key", prefix=p),
        repetition_key=_opt_str(d, "repetition_key", prefix=p),
        subject_key=_opt_str(d, "subject_key", prefix=p),
        rest_label=_float(d, "rest_label", prefix=p),
        keep_rest=_bool(d, "keep_rest", prefix=p),
        min_duration_s=_float(d, "min_duration_s", prefix=p),
        max_duration_s=_opt_float(d, "max_duration_s", prefix=p, positive=True),
        pad_s=_float(d, "pad_s", prefix=p),
        labels=None if labels is None else tuple(str(v) for v in _as_list(labels, p + "labels")),
        reps_per_label=_int(d, "reps_per_label", lo=1, prefix=p),
    )
    if out.min_duration_s < 0 or out.pad_s < 0:
        raise SemgError("segment.min_duration_s and segment.pad_s must be >= 0", fix="e.g. 0.5 and 0.0")
    if out.max_duration_s is not None and out.max_duration_s <= out.min_duration_s:
        raise SemgError("segment.max_duration_s must be above segment.min_duration_s", fix="or null (no limit)")
    if out.enabled and out.mode == "marker" and not out.labels:
        raise SemgError(
            "segment.mode=marker needs segment.labels: the movements in protocol order",
            fix="e.g. segment.labels=[fist,pinch,open] segment.reps_per_label=5",
        )
    _no_leftovers(d, p)
    return out


# ---------------------------------------------------------------- helpers


def _to_plain(cfg: Any) -> dict:
    if isinstance(cfg, dict):
        import copy

        return copy.deepcopy(cfg)
    from omegaconf import OmegaConf

    try:
        raw = OmegaConf.to_container(cfg, resolve=False)
        raw.pop("hydra", None)  # Hydra's own node (run dirs with ${now:...}) is not ours to read
        raw.pop("defaults", None)
        return OmegaConf.to_container(OmegaConf.create(raw), resolve=True, throw_on_missing=True)
    except Exception as err:  # MissingMandatoryValue and friends
        key = getattr(err, "full_key", None) or "?"
        raise SemgError(f"config key '{key}' has no value", fix=f"pass {key}=...") from None


def _fields(cls: type) -> list[str]:
    return list(cls.__dataclass_fields__)


def _missing(key: str) -> SemgError:
    return SemgError(f"config key '{key}' is missing", fix=f"add {key} (see conf/hht.yaml)")


def _group(d: dict, key: str, prefix: str = "") -> dict:
    if key not in d:
        raise _missing(prefix + key)
    g = d.pop(key)
    if not isinstance(g, dict):
        raise SemgError(f"config key '{prefix}{key}' must be a group of keys, got {g!r}")
    return g


def _no_leftovers(d: dict, prefix: str) -> None:
    if d:
        keys = ", ".join(prefix + k for k in d)
        raise SemgError(f"unknown config key(s): {keys}", fix="check the spelling against conf/hht.yaml")


def _pop(d: dict, key: str, prefix: str) -> Any:
    if key not in d:
        raise _missing(prefix + key)
    return d.pop(key)


def _req_str(d: dict, key: str, prefix: str = "") -> str:
    v = _pop(d, key, prefix)
    if v is None or str(v) in ("", "???"):
        raise SemgError(f"config key '{prefix}{key}' has no value", fix=f"pass {prefix}{key}=...")
    return str(v)


def _opt_str(d: dict, key: str, prefix: str = "") -> str | None:
    v = _pop(d, key, prefix)
    return None if v is None else str(v)


def _bool(d: dict, key: str, prefix: str = "") -> bool:
    v = _pop(d, key, prefix)
    if not isinstance(v, bool):
        raise SemgError(f"config key '{prefix}{key}' must be true or false, got {v!r}")
    return v


def _int(d: dict, key: str, lo: int | None = None, prefix: str = "") -> int:
    v = _pop(d, key, prefix)
    if isinstance(v, bool) or not isinstance(v, int):
        raise SemgError(f"config key '{prefix}{key}' must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise SemgError(f"config key '{prefix}{key}'={v} must be >= {lo}")
    return v


def _float(d: dict, key: str, prefix: str = "", positive: bool = False) -> float:
    v = _pop(d, key, prefix)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SemgError(f"config key '{prefix}{key}' must be a number, got {v!r}")
    if positive and not v > 0:
        raise SemgError(f"config key '{prefix}{key}'={v} must be > 0")
    return float(v)


def _opt_float(d: dict, key: str, prefix: str = "", positive: bool = False) -> float | None:
    if key in d and d[key] is None:
        d.pop(key)
        return None
    return _float(d, key, prefix, positive)


def _choice(d: dict, key: str, choices: tuple[str, ...], prefix: str = "") -> str:
    v = str(_pop(d, key, prefix))
    if v not in choices:
        raise SemgError(f"config key '{prefix}{key}'={v!r} is not one of {', '.join(choices)}")
    return v


def _as_list(v: Any, key: str) -> list:
    if isinstance(v, list | tuple):
        return list(v)
    raise SemgError(f"config key '{key}' must be a list, got {v!r}")


def _list(d: dict, key: str, kind: type) -> list:
    name = key.rsplit(".", 1)[-1]
    prefix = key[: -len(name)]
    return [kind(x) for x in _as_list(_pop(d, name, prefix), key)]
