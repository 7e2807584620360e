"""The "every config key is read" checkers shared by the config tests (not a test module): by name
(unread_keys: a parameter of its _target_ / schema, or named in the sources) and by real reads while a
run goes (config_reads, unread_in_run; settings_reads for make_hht's dataclasses)."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from semg_hht.classic.classifiers import METHODS
from semg_hht.classic.features import feature_vector
from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.filename_scheme import FilenameScheme
from semg_hht.hht.settings import FilterSettings
from semg_hht.models.schedule import WarmupCosinePlateau
from tests.helpers import CONF, ROOT

SOURCES = "\n".join(p.read_text() for p in [*ROOT.glob("src/semg_hht/**/*.py"), *ROOT.glob("*.py")])
CONF_TEXT = "\n".join(p.read_text() for p in CONF.rglob("*.yaml"))


def params(target) -> set[str]:
    return set(inspect.signature(target).parameters)


def accepts_any(target) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(target).parameters.values())


# Nodes that are not instantiated by _target_ but unpacked into a known callable.
SCHEMAS = {
    "data.augment": params(TimeFrequencyAugment) | {"enabled"},
    "data.filename_scheme": params(FilenameScheme),
    "data.classes": {"movement", "gender"},
    "scheduler": params(WarmupCosinePlateau) | {"monitor"},
    "scheduler.plateau": {"factor", "patience", "min_lr", "threshold"},
    # conf/evaluate.yaml: filter.* as make_hht's, features.* into feature_vector, classifiers.<m> into sklearn
    "filter": set(FilterSettings.__dataclass_fields__),
    "features": params(feature_vector) - {"signal", "fs"},
    **{f"classifiers.{m}": params(cls) for m, cls in METHODS.items()},
}
# Mappings whose keys are user data (read as a whole), not settings.
FREE_MAPPINGS = {"data.filename_scheme.movement_synonyms"}


def unread_keys(node, path: str = "") -> list[str]:
    """Keys no code reads: not a parameter of the node's _target_ / schema, and (for free-standing
    keys) never named in the sources nor used by an interpolation."""
    unread = []
    if isinstance(node, DictConfig) and path not in FREE_MAPPINGS:
        keys = [k for k in node if k != "_target_" and not str(k).startswith("_")]
        if "_target_" in node:
            target = get_class(node._target_) if not node._target_.endswith(")") else None
            if target is not None and not accepts_any(target):
                unread += [f"{path}.{k}" for k in keys if k not in params(target)]
        elif path == "optimizer":
            optimizer = getattr(torch.optim, node.name)
            unread += [f"optimizer.{k}" for k in keys if k != "name" and k not in params(optimizer)]
        elif path in SCHEMAS:
            unread += [f"{path}.{k}" for k in keys if k not in SCHEMAS[path]]
        elif path not in ("hydra.callbacks", "callbacks", "logger"):
            for k in keys:
                named = re.compile(rf"(\.{re.escape(k)}\b|[\"']{re.escape(k)}[\"']|\b{re.escape(k)}=)")
                used = named.search(SOURCES) or f"{path}.{k}".lstrip(".") in CONF_TEXT.replace("${", "")
                if not used and not isinstance(node.get(k), DictConfig):
                    unread.append(f"{path}.{k}".lstrip("."))
        for k in keys:
            child = node._get_node(k)
            if path == "" and k == "hydra":  # Hydra's own settings: only our callbacks are ours to check
                unread += unread_keys(child.callbacks, "hydra.callbacks")
            elif isinstance(child, DictConfig) and not child._is_none():
                unread += unread_keys(child, f"{path}.{k}".lstrip("."))
            elif isinstance(child, ListConfig) and not child._is_none():
                for i, item in enumerate(child):
                    unread += unread_keys(item, f"{path}.{k}[{i}]".lstrip("."))
    return unread


# ------------------------------------------------------------------ real reads, recorded while a run goes


def _called_from(module: str, depth: int) -> bool:
    """Whether `module` is on the call stack above the frame `depth` levels up."""
    frame = sys._getframe(depth)
    while frame is not None:
        if frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back
    return False


@contextmanager
def config_reads(root: DictConfig) -> Iterator[set[str]]:
    """Records the full key of every node of `root` that code touches (attribute, item, get,
    to_container, instantiate and interpolations all go through DictConfig._get_node), except
    config_check's walk: it checks values, it does not use them. Only nodes under `root` count: a
    config composed during the run (evaluate composes train.yaml) has keys of the same names."""
    seen: set[str] = set()
    original = DictConfig._get_node
    busy = []  # _get_full_key and _get_root walk up through _get_node themselves

    def recording(self, key, *args, **kwargs):
        node = original(self, key, *args, **kwargs)
        if node is not None and not busy and not isinstance(node, list) and not _called_from(CHECKER, 2):
            busy.append(1)
            try:
                if node._get_root() is root:
                    seen.add(node._get_full_key(None))
            finally:
                busy.pop()
        return node

    DictConfig._get_node = recording
    try:
        yield seen
    finally:
        DictConfig._get_node = original


CHECKER = "semg_hht.config_check"


def leaf_keys(node, path: str = "") -> list[str]:
    """Every leaf of a config (a list or an empty mapping is one leaf), outside hydra.*."""
    if isinstance(node, DictConfig) and not node._is_none() and len(node):
        keys = [k for k in node if not (path == "" and k == "hydra")]
        return [leaf for k in keys for leaf in leaf_keys(node._get_node(k), f"{path}.{k}".lstrip("."))]
    return [path]


def unread_in_run(run: Callable[[DictConfig], Any], cfg: DictConfig) -> list[str]:
    """The leaves of cfg (outside hydra.*) that run(cfg) never reads. Hydra itself resolves the run
    folders before the run (their interpolations read paths.log_dir and task_name)."""
    keys = leaf_keys(cfg)
    with config_reads(cfg) as seen:
        for folder in ("hydra.run.dir", "hydra.sweep.dir"):
            OmegaConf.select(cfg, folder)
        run(cfg)
    return [k for k in keys if k not in seen]


@contextmanager
def settings_reads(settings) -> Iterator[set[str]]:
    """make_hht's counterpart: its config becomes frozen dataclasses at once (settings_from_cfg reads
    every node), so the reads that count are of their fields. Records `group.field` for every field
    of `settings` (and of the groups in it) read while the block runs, except by the dataclass
    machinery and by semg_hht.hht.settings itself (its checks and the signature see every field)."""
    seen: set[str] = set()
    prefixes = {type(group): path for path, group in _groups(settings)}
    patched = {cls: cls.__getattribute__ for cls in prefixes}

    def recording(self, name):
        value = object.__getattribute__(self, name)
        if name in type(self).__dataclass_fields__ and not (
            _called_from("semg_hht.hht.settings", 2) or _called_from("dataclasses", 2)
        ):
            seen.add(prefixes[type(self)] + name)
        return value

    for cls in patched:
        cls.__getattribute__ = recording
    try:
        yield seen
    finally:
        for cls, original in patched.items():
            cls.__getattribute__ = original


def settings_leaves(settings, path: str = "") -> list[str]:
    """Every field of the settings that is not itself a group of fields."""
    leaves = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        leaves += settings_leaves(value, f"{path}{f.name}.") if is_dataclass(value) else [path + f.name]
    return leaves


def _groups(settings, path: str = "") -> list[tuple[str, Any]]:
    found = [(path, settings)]
    for f in fields(settings):
        value = getattr(settings, f.name)
        if is_dataclass(value):
            found += _groups(value, f"{path}{f.name}.")
    return found
