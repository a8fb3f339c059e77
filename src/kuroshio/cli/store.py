"""``kuroshio store``: where the node keeps everything: a checked copy of its file while it
serves, and moving it from its SQLite file to PostgreSQL when the node outgrows one file (and
back).

The work is :func:`kuroshio.node.backup_store` and :func:`kuroshio.node.move_store`; this module
holds the node directory while a move runs (no serving process may write the store meanwhile),
shows progress and prints what was done.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from kuroshio.cli.common import AsJson, NodeDir, console, progress_bar
from kuroshio.node import backup_store, exclusive, move_store, open_node

app = typer.Typer()
store_app = typer.Typer(
    help="Where the node keeps everything: back it up, move it to PostgreSQL and back."
)
app.add_typer(store_app, name="store")


@store_app.command("move")
def move(
    node_dir: NodeDir = Path("."),
    schema: Annotated[
        str | None,
        typer.Option(help="PostgreSQL schema to move into (default: kuroshio_<party>_<name>)."),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(help="New SQLite file to move back into (default: store.sqlite)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Move this node's store from its SQLite file into a PostgreSQL schema, or back from its
    schema into a new file; then run the node on it. The server is the one KUROSHIO_STORE_DSN
    (or store.dsn in kuroshio.toml) names; the schema moved into must hold no rows yet.

    Every table moves, row for row and in one transaction: observations and their history,
    outbox and inbox with each link's position, ledger, audit log, operators, messages. The
    node keeps its keys, partners and agreements, so its partners' links go on where they
    stopped. Stop the node first (every process of it, on every machine); the store moved from
    is left as it was."""
    with (
        open_node(node_dir) as node,
        exclusive(node),
        progress_bar(as_json, unit="rows") as progress,
    ):
        task = progress.add_task("moving", total=None)

        def advance(table: str, rows: int) -> None:
            progress.update(task, advance=rows, description=table)

        moved = move_store(node_dir, schema=schema, file=file, on_rows=advance)
    if as_json:
        sys.stdout.write(msgspec.json.encode(moved).decode() + "\n")
        return
    into, left = (
        (f"PostgreSQL schema {moved.schema}", moved.file)
        if moved.backend == "postgres"
        else (f"the file {moved.file}", f"Schema {moved.schema}")
    )
    table = Table(title=f"moved into {into}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in moved.tables.items():
        table.add_row(name, str(rows))
    console.print(table)
    console.print(
        f"The node now keeps its store in {into}; its audit log ({moved.audit_size} entries) has"
        f" the same head there. {left} is left as it was: keep it as a copy, and never serve it"
        " again (its partners have moved on with the store).",
        highlight=False,
    )


@store_app.command("backup")
def backup(
    target: Annotated[Path, typer.Argument(help="The new file to write (never replaced).")],
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Copy this node's store (its SQLite file) into a new file, as of one moment, while the
    node goes on serving; then check the copy: SQLite's integrity check, and its audit chain
    against the node's keys. A node on PostgreSQL is backed up with the server's tools.

    To restore: stop the node, put the copy in place of store.sqlite (removing store.sqlite-wal
    and store.sqlite-shm), start it. Links to partners that took in batches after the copy
    was made stop with "diverged" until the partners agree how to go on."""
    copied = backup_store(node_dir, target)
    if as_json:
        sys.stdout.write(msgspec.json.encode(copied).decode() + "\n")
        return
    console.print(
        f"Backed up into {copied.file} ({copied.bytes / 1e6:.1f} MB): {copied.versions} observation"
        f" versions; audit log intact, {copied.audit_size} entries"
        + (f", head {copied.audit_head[:16]}" if copied.audit_head else ""),
        highlight=False,
    )
