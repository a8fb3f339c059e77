"""What every ``kuroshio`` command shares: the consoles, the common options and how an expected
failure becomes one line on stderr with exit status 2.

Command modules import this module; it imports none of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
    err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def failing_with(*expected: type[Exception]) -> Iterator[None]:
    """Turn any of the ``expected`` errors into one line on stderr and exit status 2."""
    try:
        yield
    except expected as error:
        print_error(error)
        raise typer.Exit(2) from None


__all__ = ["AsJson", "NodeDir", "console", "err_console", "failing_with", "print_error"]
