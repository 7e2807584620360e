"""The one error type users see: a single line that names the file (or config key) and the fix."""

from __future__ import annotations

from os import PathLike


class SemgError(Exception):
    """A problem with the user's input or configuration, not a bug in semg-hht.

    Entry scripts print it as one line (no traceback unless HYDRA_FULL_ERROR=1 or SEMG_DEBUG=1)
    and exit non-zero. Always say what is wrong, where, and what to do about it.
    """

    def __init__(self, problem: str, *, path: str | PathLike | None = None, fix: str | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{where}{self.problem}{fix}"
