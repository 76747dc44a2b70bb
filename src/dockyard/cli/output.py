"""Printing results: rich tables for people, ``--json`` for scripts, errors on stderr.

User-supplied text (descriptions, messages, names) is never read as rich markup.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dockyard.cli.errors import CliError

PANEL = "Users, workspaces and access (over HTTP)"
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer (for scripts).")]


def _stdout_width() -> int | None:
    # Rich assumes 80 columns when stdout is not a terminal; piped tables should not wrap names.
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isascii() and columns.isdigit() and len(columns) < 6 else 200


out = Console(highlight=False, width=_stdout_width())
err = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def say(message: str) -> None:
    """One plain line on stdout (no markup)."""
    out.print(Text(message))


def note(message: str) -> None:
    """A remark for the person at the terminal, on stderr."""
    err.print(Text(message, style="dim"))


def report(error: CliError) -> None:
    err.print(f"[red]error:[/red] {escape(error.message)}")
    if error.hint:
        err.print(f"[dim]hint:[/dim] {escape(error.hint)}")


def cell(value: object) -> Text:
    if value is None or value == "":
        return Text("-")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value) or "-")
    return Text(str(value))


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str) -> None:
    """A table, or ``empty`` when there are no rows."""
    grid = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for column in grid.columns:
        column.overflow = "fold"
    count = 0
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
        count += 1
    if count:
        out.print(grid)
    else:
        say(empty)


def fields(pairs: Sequence[tuple[str, object]]) -> None:
    """``name: value`` lines, aligned."""
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        say(f"{name + ':':<{width + 1}} {cell(value).plain}")


def when(stamp: float | None, none: str = "never") -> str:
    """An epoch time as local ``YYYY-MM-DD HH:MM``."""
    if stamp is None:
        return none
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def role_or_none(value: str) -> str | None:
    """The ``ROLE|none`` arguments: 'none' removes a role."""
    return None if value.lower() == "none" else value
