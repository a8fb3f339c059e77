"""The ``kuroshio`` command line: one command per job a watch officer, analyst or liaison does.

This package is the top floor: it alone imports typer and rich, and nothing in kuroshio imports
it. :data:`app` gathers one module per command group (node, ingest, federation, agreements,
fusion, demo); a failure the user can act on (:class:`~kuroshio.errors.KuroshioError`) becomes
one line on stderr and its exit status, anything else keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from kuroshio.cli import agreements, demo, federation, fusion, ingest, node
from kuroshio.cli.common import print_error
from kuroshio.errors import KuroshioError


class _Commands(TyperGroup):
    """The root group: a :class:`KuroshioError` from any command becomes one line on stderr and
    the error's exit status (also when the app is invoked from code, e.g. by a test runner)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KuroshioError as error:
            print_error(error)
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_Commands,
    name="kuroshio",
    help="Reciprocal, live exchange of air and maritime security observations between partners.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
for group in (node, ingest, federation, agreements, fusion, demo):
    app.add_typer(group.app)


def main() -> None:
    """Entry point of the ``kuroshio`` command."""
    app()


__all__ = ["app", "main"]
