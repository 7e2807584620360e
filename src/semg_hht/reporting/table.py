"""The one console table of the project (sweep summaries, predictions, the results table, benchmarks)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.box import Box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# a dashed line under the header, nothing else: plain ASCII, so any terminal or log file shows it
HEADER_RULE = Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def cell(value: Any, digits: int = 4) -> str:
    """A float to ``digits`` decimals, None as '-', anything else as its text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    fmt: Callable[[Any], str] = cell,
) -> str:
    """rows as a plain-text table at its natural width (never wrapped or cut, no colour codes)."""
    table = Table(*columns, box=HEADER_RULE, title=title, title_justify="left", pad_edge=False, show_edge=False)
    for row in rows:
        table.add_row(*(Text(fmt(row.get(c))) for c in columns))  # Text: brackets in values are not markup
    console = Console(file=io.StringIO(), width=100_000, color_system=None, highlight=False, emoji=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    fmt: Callable[[Any], str] = cell,
) -> None:
    print(format_table(rows, columns, title, fmt), flush=True)
