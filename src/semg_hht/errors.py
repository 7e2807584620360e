"""The one error type users see (a single line that names the file or config key, and the fix), and how
entry points turn errors into that line: run_guarded, and the debug switch that keeps tracebacks."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from os import PathLike
from typing import Any, TypeVar


class SemgError(Exception):
    """A problem with the user's input or configuration, not a bug in semg-hht.

    Entry scripts print it as one line (no traceback unless HYDRA_FULL_ERROR=1 or SEMG_DEBUG=1)
    and exit non-zero (``status``: 1, or 130 for a run stopped by Ctrl-C, as a shell reports SIGINT).
    Always say what is wrong, where, and what to do about it.
    """

    def __init__(
        self, problem: str, *, path: str | PathLike | None = None, fix: str | None = None, status: int = 1
    ):  # fmt: skip
        self.problem = problem
        self.path = None if path is None else str(path)
        self.fix = fix
        self.status = status
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{where}{self.problem}{fix}"


T = TypeVar("T")


def debug_enabled() -> bool:
    """Full tracebacks on request: Hydra's own switch, or ours."""
    return any(os.environ.get(var, "") not in ("", "0") for var in ("HYDRA_FULL_ERROR", "SEMG_DEBUG"))


def run_guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call an entry-point function; a SemgError becomes one line on stderr and exit status 1 (its status).

    Anything else is a bug and keeps its traceback. SystemExit leaves Hydra's exception handler
    alone, so the user sees exactly one line rather than Hydra's report.
    """
    _quiet_failing_log_files()
    try:
        return fn(*args, **kwargs)
    except SemgError as err:
        if debug_enabled():
            raise
        _say(f"error: {err}")
        raise SystemExit(err.status) from None
    except Exception as err:
        line = _outside_error(err)
        if line is None or debug_enabled():
            raise
        _say(f"error: {line}")
        raise SystemExit(1) from None


def _say(line: str) -> None:
    """The line on stderr, and in the run's log file (Hydra's <task>.log), which would otherwise end
    without a word on why the run stopped."""
    print(line, file=sys.stderr, flush=True)
    to_log_files(line, logging.ERROR)


def say(text: str) -> None:
    """Results printed plainly on the terminal (a table, one line per person) and kept in the run's log
    file too: a log that ends before the results says nothing about what the run gave."""
    print(text, flush=True)
    to_log_files(text)


def to_log_files(text: str, level: int = logging.INFO) -> None:
    record = logging.LogRecord("semg_hht", level, __file__, 0, text, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


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
