"""Instantiating config nodes with errors a user can act on."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from semg_hht.errors import SemgError


def build(node: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, except that our own SemgError comes out as itself (Hydra wraps it)
    and a misspelt or unknown key becomes a one-line config error."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, SemgError):
            raise cause from None
        if type(cause).__name__ == "MisconfigurationException":  # Lightning: settings that contradict
            raise SemgError(f"conflicting settings: {cause}", fix="change one of the named settings") from None
        if isinstance(cause, TypeError) and "keyword argument" in str(cause):
            target = node.get("_target_", "?") if hasattr(node, "get") else "?"
            raise SemgError(f"config for {target}: {cause}", fix="remove or rename that key") from None
        raise
