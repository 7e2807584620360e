"""What every entry script does before its work, importing nothing heavy (no torch, no Lightning):

- `check_overrides`: a misspelt key (`model.num_layer=5`) or group option (`experiment=dmo`) becomes one
  line with the closest valid names, instead of Hydra's "To append to your config use +model.num_layer=5"
  (which, followed, loaded every matrix and then failed inside the model).
- `run`: config values (config_check), then the files the command names (data folder, checkpoint,
  input), then the import of the work itself, so a typo or a missing checkpoint answers in about a second
  rather than after the imports and the data load; an error line also lands in the run's log file when
  Hydra made the folder for this command (never in a folder that was there before: run_folder.checking).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from semg_hht import config_check, run_folder
from semg_hht.config_check import closest, unknown_key
from semg_hht.errors import SemgError, run_guarded
from semg_hht.io import refuse_overwrite

# Hydra's own command-line flags: with these there is no job to check (or the check is Hydra's)
_HYDRA_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}
_FLAGS_WITH_VALUE = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--cfg", "-c"}
_FLAGS_WITH_VALUE |= {"--package", "-p", "--experimental-rerun"}


def check_overrides(script: str, config_name: str, argv: Sequence[str] | None = None) -> None:
    """Compose the config as Hydra will (sweeps at their first value); an unknown key or option exits 1
    with one line naming the closest valid ones. Anything else is left for Hydra to report."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.split("=")[0] in _HYDRA_INFO_FLAGS for a in args):
        return
    overrides, config_dir = _job_overrides(args), Path(script).resolve().parent / "conf"
    for a in args:
        if a.split("=")[0] in ("--config-name", "-cn"):
            config_name = a.split("=", 1)[1] if "=" in a else args[args.index(a) + 1]
    if overrides is None or not config_dir.is_dir():
        return
    line = null_group_line(config_dir, overrides) or unknown_override_line(config_dir, config_name, overrides)
    if line is not None:
        print(f"error: {line}", file=sys.stderr, flush=True)
        raise SystemExit(1)


def _job_overrides(args: list[str]) -> list[str] | None:
    """The key=value arguments, each sweep at its first value; None where one cannot be enumerated."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    plain, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in _FLAGS_WITH_VALUE:
            skip = True
        elif not a.startswith("-"):
            plain.append(a)
    try:
        parsed = OverridesParser.create().parse_overrides(plain)
    except Exception:  # Hydra says what is wrong with the syntax
        return None
    out = []
    for o in parsed:
        if o.key_or_group.startswith(("hydra.", "hydra/")) or o.key_or_group == "hydra":
            continue
        if not o.is_sweep_override():
            out.append(o.input_line)
            continue
        try:
            first = next(iter(o.sweep_string_iterator()))
        except Exception:  # glob() and interval(): enumerated by the sweeper, not here
            return None
        out.append(f"{o.get_key_element()}={first}")
    return out


def null_group_line(config_dir: Path, overrides: list[str]) -> str | None:
    """`logger=null` (how Hydra 1.0 dropped a default group) is a ValueError traceback in Hydra 1.3's
    composition: one line naming the ~ form instead."""
    for o in overrides:
        key, sep, value = o.partition("=")
        group = key.lstrip("+")
        if sep and value.strip() == "null" and (config_dir / group).is_dir():
            return f"'{o}': a config group is dropped with ~{group}, not {group}=null -> pass ~{group}"
    return None


def unknown_override_line(config_dir: Path, config_name: str, overrides: list[str]) -> str | None:
    """One line for the first override that names no key or option, or None when every one does."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        try:
            compose(config_name, overrides=overrides)
            return None
        except ConfigCompositionException as err:
            message = str(err)
        except Exception:  # values and interpolations: checked (and named) by the command itself
            return None
        if match := re.search(r"Could not override '([^']+)'", message):
            key = match.group(1)
            rest = [o for o in overrides if o.split("=")[0].lstrip("+~") != key]
            return _unknown_key_line(key, _composed_or_none(compose, config_name, rest), overrides)
        if match := re.search(r"Could not find '([^']+)/([^'/]+)'", message):
            group, option = match.groups()
            return _unknown_option_line(group, option, config_dir)
    return None


def _composed_or_none(compose: Callable[..., DictConfig], config_name: str, overrides: list[str]) -> DictConfig | None:
    try:
        return compose(config_name, overrides=overrides)
    except Exception:
        return None


def _unknown_key_line(key: str, cfg: DictConfig | None, overrides: list[str]) -> str:
    given = next(o for o in overrides if o.split("=")[0].lstrip("+~") == key)
    value = given.split("=", 1)[1] if "=" in given else "..."
    parent = OmegaConf.select(cfg, key.rsplit(".", 1)[0]) if cfg is not None and "." in key else None
    if isinstance(parent, DictConfig) and len(parent) == 0:  # a free-form mapping such as data.filter
        return f"config key '{key}' is new inside the mapping {key.rsplit('.', 1)[0]} -> pass +{key}={value}"
    keys = sorted(k for k in _all_keys(cfg) if not key.startswith(k + ".")) if cfg is not None else []
    return str(unknown_key(key, keys))


def _unknown_option_line(group: str, option: str, config_dir: Path) -> str:
    options = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
    close = closest(option, options)
    hint = f"did you mean {group}={' or '.join(close)}? " if close else ""
    return f"no option '{option}' in config group {group}: {hint}-> choose one of {', '.join(options)}"


def _all_keys(node: DictConfig, prefix: str = "") -> Iterable[str]:
    for k in node:
        key = f"{prefix}{k}"
        if key == "hydra":
            continue
        yield key
        child = node._get_node(k)
        if isinstance(child, DictConfig):
            yield from _all_keys(child, key + ".")


# ------------------------------------------------------------------ run: cheap checks, then the work


def run(
    work: str, cfg: DictConfig, rules: dict[str, Any] | None = None, files: Callable[[DictConfig], None] | None = None
) -> Any:
    """`work` is 'module:function'. Config values and named files are checked before it is imported."""

    def checked_then_run() -> Any:
        folder = _hydra_run_folder()
        with run_folder.checking(folder):  # held first: a second run stops; refused, nothing lands in the folder
            if rules is not None:
                config_check.check_config(cfg, rules)
            if files is not None:
                files(cfg)
            if folder is not None:
                run_folder.write_record(folder, cfg, HydraConfig.get())
        module, function = work.split(":")
        try:
            return getattr(importlib.import_module(module), function)(cfg)
        finally:
            if folder is not None:
                run_folder.release(folder)

    return run_guarded(checked_then_run)


def _hydra_run_folder() -> Path | None:
    """This job's run folder: None outside a Hydra app (a test calling run()), and in the processes
    Lightning's DDP launcher starts for the other ranks (rank 0 holds the folder and writes its record)."""
    if _later_rank():
        return None
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _later_rank() -> bool:
    return any(os.environ.get(v, "0") not in ("", "0") for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def must_exist(path: Any, what: str, fix: str, folder: bool = False) -> None:
    """A path the command names (one or a list): missing -> one line before anything heavy starts."""
    paths = list(path) if isinstance(path, ListConfig | list | tuple) else [path]
    for p in paths:
        if p is None:
            continue
        found = Path(str(p)).is_dir() if folder else Path(str(p)).exists()
        if not found:
            raise SemgError(f"{what} not found", path=p, fix=fix)


def data_folder(path: Any, script: str, key: str = "paths.data_dir") -> None:
    """The training matrices' folder. Right after `make train` the only matrices are the demo's: then the
    line is the user's own command with experiment=demo added, ready to paste."""
    folder = Path(str(path))
    if folder.is_dir():
        return
    demo = folder.parent / "demo" / "hht"
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    args = [a for a in sys.argv[1:] if not a.startswith(("-", "experiment="))]
    if folder.name == "hht" and demo.is_dir():
        command = " ".join(["python", script, *flags, "experiment=demo", *args])
        fix = f"the demo matrices (make train) are in {demo}: {command}"
    else:
        fix = f"set {key}=<folder of .npz matrices> (make_hht.py output=...), or experiment=demo after make train"
    raise SemgError("data folder not found", path=folder, fix=fix)


def train_files(cfg: DictConfig) -> None:
    data_folder(cfg.data.data_dir, "train.py")
    if cfg.data.label_source == "manifest" and cfg.data.manifest:
        must_exist(Path(str(cfg.data.data_dir)) / str(cfg.data.manifest), "manifest", "set data.manifest")
    must_exist(cfg.data.test_dir, "test folder", "set data.test_dir=<folder of .npz>", folder=True)
    must_exist(cfg.ckpt_path, "checkpoint to resume", "pass ckpt_path=<run>/checkpoints/last.ckpt")
    if not _later_rank():  # DDP: the other ranks run in rank 0's folder
        run_folder.refuse_earlier_run(Path(str(cfg.paths.output_dir)), bool(cfg.ckpt_path), cfg.overwrite)


def fit_svm_files(cfg: DictConfig) -> None:
    must_exist(cfg.ckpt, "checkpoint", "pass ckpt=<train run>/checkpoints/best.ckpt (or ckpt=null: random encoder)")
    if cfg.data_dir is not None:
        data_folder(cfg.data_dir, "fit_svm.py", key="data_dir")
    elif cfg.ckpt is None:
        data_folder(cfg.data.data_dir, "fit_svm.py")
    refuse_overwrite(Path(str(cfg.paths.output_dir)) / "svm.skops", cfg.overwrite)


def predict_files(cfg: DictConfig) -> None:
    must_exist(cfg.ckpt, "checkpoint", "pass ckpt=<train run>/checkpoints/best.ckpt")
    must_exist(cfg.svm, "SVM", "pass svm=<fit_svm run>/svm.skops")
    must_exist(cfg.input, "input", "pass input=<folder of .npz, one .npz, or manifest.csv>")
    refuse_overwrite(cfg.output, cfg.overwrite)


def adapt_files(cfg: DictConfig) -> None:
    must_exist(cfg.ckpt, "checkpoint", "pass ckpt=<train run>/checkpoints/last.ckpt")
    must_exist(cfg.input, "input", "pass input=<manifest.csv of the new people's labelled matrices>")
    refuse_overwrite(Path(str(cfg.out)) / "metrics.json", cfg.overwrite)


def evaluate_files(cfg: DictConfig) -> None:
    must_exist(cfg.raw, "raw input manifest", "pass raw=<make_hht's input manifest.csv>")
    must_exist(cfg.test_raw, "test input manifest", "pass test_raw=<manifest.csv>")
    must_exist(cfg.hht_dir, "matrix folder", "pass hht_dir=<make_hht output of raw>", folder=True)
