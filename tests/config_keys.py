"""The "every config key is read" checker shared by the config tests (not a test module)."""

from __future__ import annotations

import inspect
import re

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig

from semg_hht.data.augment import TimeFrequencyAugment
from semg_hht.evaluation.classic import METHODS
from semg_hht.evaluation.features import feature_vector
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
