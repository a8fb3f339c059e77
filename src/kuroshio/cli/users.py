"""``kuroshio user``: the local operators of a node's operator API, their roles and tokens.

Passwords are read from a prompt (or one line of standard input with ``--password-stdin``) and
kept only as an Argon2id hash; a token is printed once and kept only as its SHA-256. Every change
is audited. The rules live in :mod:`kuroshio.access`; this module parses options and prints.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from kuroshio.access import ROLE_DUTIES, ROLES
from kuroshio.cli.common import AsJson, NodeDir, console
from kuroshio.errors import InputError
from kuroshio.node import open_node

app = typer.Typer()
user_app = typer.Typer(
    help="Operators of the API and picture: "
    + "; ".join(f"{r}: {d}" for r, d in ROLE_DUTIES.items())
)
app.add_typer(user_app, name="user")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise InputError("the two passwords differ")
    return str(first)


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Operator name (lower case, e.g. 'chen.wei').")],
    role: Annotated[str, typer.Option("--role", "-r", help=f"One of {', '.join(ROLES)}.")],
    node_dir: NodeDir = Path("."),
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password: bearer tokens only.")
    ] = False,
) -> None:
    """Add an operator (or change its role and password)."""
    password = None if no_password else _password(password_stdin)
    with open_node(node_dir) as node:
        node.add_operator(name, role, password)
    console.print(f"{name} is {role} on {node_dir}")


@user_app.command("remove")
def remove(name: str, node_dir: NodeDir = Path(".")) -> None:
    """Disable an operator; its tokens and sessions end at once."""
    with open_node(node_dir) as node:
        if not node.remove_operator(name):
            raise InputError(f"no active operator {name!r}")
    console.print(f"{name} removed")


@user_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The operator the token acts as.")],
    label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "script",
    days: Annotated[int | None, typer.Option(min=1, max=3650, help="Valid for days.")] = None,
    node_dir: NodeDir = Path("."),
) -> None:
    """Make a bearer token for scripts (printed once: keep it like a password)."""
    with open_node(node_dir) as node:
        secret = node.issue_token(name, label, None if days is None else dt.timedelta(days=days))
    typer.echo(secret)


@user_app.command("revoke")
def revoke(name: str, label: str, node_dir: NodeDir = Path(".")) -> None:
    """Revoke one of an operator's tokens, at once."""
    with open_node(node_dir) as node:
        if not node.revoke_token(name, label):
            raise InputError(f"{name} has no token named {label!r}")
    console.print(f"token {label} of {name} revoked")


@user_app.command("list")
def list_users(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Operators with their roles, and their tokens (names only)."""
    with open_node(node_dir) as node, node.store.transaction() as tx:
        operators, tokens = tx.operators.all(), tx.operators.tokens()
    if as_json:
        typer.echo(
            msgspec.json.encode(
                {
                    "operators": [
                        {
                            "name": o.name,
                            "role": o.role,
                            "disabled": o.disabled,
                            "password": o.password_hash is not None,
                        }
                        for o in operators
                    ],
                    "tokens": [{"operator": t.operator, "name": t.label} for t in tokens],
                }
            ).decode()
        )
        return
    table = Table("operator", "role", "password", "tokens", "state")
    for o in operators:
        labels = ", ".join(t.label for t in tokens if t.operator == o.name)
        table.add_row(
            o.name,
            o.role,
            "yes" if o.password_hash else "no",
            labels,
            "removed" if o.disabled else "active",
        )
    console.print(table)
