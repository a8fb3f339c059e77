"""What every ``kuroshio`` command shares: the consoles, the common options, progress bars, the
readers of time and area options, and how a failure becomes one line on stderr.

Command modules import this module; it imports none of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from kuroshio import inputs
from kuroshio.errors import InputError, KuroshioError

console = Console()
err_console = Console(stderr=True)

NodeDir = Annotated[
    Path,
    typer.Option(
        "--node",
        "-n",
        envvar="KUROSHIO_NODE",
        help="Node directory (made by 'kuroshio init').",
        show_default=True,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_error(error: BaseException) -> None:
    """One line on stderr: ``error: <message>``."""
    # The message is the user's text (file names, TOML sections): never read as markup.
    err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


@contextlib.contextmanager
def failing() -> Iterator[None]:
    """Turn a :class:`~kuroshio.errors.KuroshioError` into one line on stderr and its exit
    status (for code that runs outside the app's own handler, e.g. inside a long command)."""
    try:
        yield
    except KuroshioError as error:
        print_error(error)
        raise typer.Exit(error.exit_code) from None


def progress_bar(disabled: bool, unit: str = "records") -> Progress:
    """A progress bar on stderr, shown only on a terminal and never under ``--json``."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn(f"{{task.completed}} {unit}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=disabled or not err_console.is_terminal,
        transient=True,
    )


def parse_time(value: str | None, option: str) -> dt.datetime | None:
    """ISO 8601 date or date-time; a date or a naive time is taken as UTC."""
    return inputs.utc_time(value, option)


def parse_day(value: str | None, option: str) -> dt.date | None:
    """An ISO date (``YYYY-MM-DD``)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    return inputs.bbox(value, "--bbox")


def split_values(values: list[str] | None) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple (``--kind air,sea --kind area``)."""
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


def at_least_one(value: int, option: str) -> int:
    if value < 1:
        raise InputError(f"{option} must be at least 1")
    return value


__all__ = [
    "AsJson",
    "NodeDir",
    "at_least_one",
    "console",
    "err_console",
    "failing",
    "parse_bbox",
    "parse_day",
    "parse_time",
    "print_error",
    "print_warning",
    "progress_bar",
    "split_values",
]
