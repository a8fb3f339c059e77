"""The ``kuroshio`` command line: one command per job a watch officer, analyst or liaison does.

This package is the top floor: it alone imports typer and rich, and nothing in kuroshio imports
it. :data:`app` gathers one module per command group (node, store, ingest, federation,
agreements, fusion, users, keys, messages, and the two that start servers: serve and demo); a
failure the user can act on (:class:`~kuroshio.errors.KuroshioError`) becomes one line on stderr
and its exit status, anything else keeps its traceback. ``serve`` and ``demo`` are loaded when
they run (click's lazy subcommands), so the other commands start without the web server and
HTTP client.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import typer
import typer.main
from typer.core import TyperGroup

from kuroshio.cli import (
    agreements,
    federation,
    fusion,
    ingest,
    keys,
    messages,
    node,
    store,
    users,
)
from kuroshio.cli.common import print_error
from kuroshio.errors import KuroshioError

LAZY_COMMANDS: Final = {
    "serve": "kuroshio.cli.serve",
    "demo": "kuroshio.cli.demo",
    "feed": "kuroshio.cli.feeds",
}
"""Commands whose module is imported when the command is asked for."""


class _Commands(TyperGroup):
    """The root group: a :class:`KuroshioError` from any command becomes one line on stderr and
    the error's exit status (also when the app is invoked from code, e.g. by a test runner)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY_COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = LAZY_COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            self.commands[cmd_name] = typer.main.get_command(importlib.import_module(module).app)
        return super().get_command(ctx, cmd_name)

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
for group in (node, store, ingest, federation, agreements, fusion, users, keys, messages):
    app.add_typer(group.app)


def main() -> None:
    """Entry point of the ``kuroshio`` command."""
    app()


__all__ = ["app", "main"]
