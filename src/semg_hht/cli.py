"""Shared behaviour of the entry scripts (train.py, fit_svm.py, make_hht.py, predict.py)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from semg_hht.errors import SemgError

T = TypeVar("T")
log = logging.getLogger("semg_hht")


def debug_enabled() -> bool:
    """Full tracebacks on request: Hydra's own switch, or ours."""
    return any(os.environ.get(var, "") not in ("", "0") for var in ("HYDRA_FULL_ERROR", "SEMG_DEBUG"))


def run_guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call an entry-point function; a SemgError becomes one line on stderr and exit status 1.

    Anything else is a bug and keeps its traceback. SystemExit leaves Hydra's exception handler
    alone, so the user sees exactly one line rather than Hydra's report.
    """
    _quiet_failing_log_files()
    try:
        return fn(*args, **kwargs)
    except SemgError as err:
        if debug_enabled():
            raise
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except Exception as err:
        line = _outside_error(err)
        if line is None or debug_enabled():
            raise
        print(f"error: {line}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _outside_error(err: Exception) -> str | None:
    """Errors that are the user's setup, not a bug, raised where no SemgError could name them:
    a file that cannot be written or read (disk full, permissions), a config value OmegaConf
    cannot resolve, settings Lightning finds contradictory. None: a bug, keep the traceback."""
    from omegaconf.errors import OmegaConfBaseException

    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if isinstance(err, OSError) and err.filename is not None:
        why = err.strerror or first
        return f"{err.filename}: {why} -> check the path, its permissions and the free disk space"
    if isinstance(err, OmegaConfBaseException):
        key = getattr(err, "full_key", None)
        return f"config {key}: {first} -> fix that key" if key else f"config: {first}"
    if type(err).__name__ == "MisconfigurationException":  # Lightning, raised during fit
        return f"conflicting settings: {first} -> change one of the named settings"
    return None


def _quiet_failing_log_files() -> None:
    """A log file that cannot be written (full disk) warns once and is dropped, instead of
    logging's "--- Logging error ---" traceback for every later line, which buried the one line
    that says what happened."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handleError = _drop_handler(root, handler)  # type: ignore[method-assign]


def _drop_handler(root: logging.Logger, handler: logging.FileHandler) -> Callable[[logging.LogRecord], None]:
    def handle_error(record: logging.LogRecord) -> None:
        root.removeHandler(handler)
        err = sys.exc_info()[1]
        why = getattr(err, "strerror", None) or err
        print(f"warning: cannot write {handler.baseFilename} ({why}); logging there stopped", file=sys.stderr)

    return handle_error
