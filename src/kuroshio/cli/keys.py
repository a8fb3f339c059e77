"""``kuroshio keys``: the state of a node's keys and certificates, and keeping the signing key
encrypted with a passphrase.

The cryptography lives in :mod:`kuroshio.pki`; this module reads options, the passphrase (from a
prompt, or one line of standard input) and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from kuroshio.cli.common import AsJson, NodeDir, console, print_warning
from kuroshio.errors import InputError
from kuroshio.node import open_node
from kuroshio.pki import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    is_protected,
    key_fingerprint,
    protect_signing_key,
    public_key_from_b64,
)

app = typer.Typer()
keys_app = typer.Typer(help="This node's keys and certificates.")
app.add_typer(keys_app, name="keys")


@keys_app.command("status")
def status(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """The signing key's fingerprint and protection; certificates that expire soon (30 days)."""
    with open_node(node_dir) as node:
        identity = node.identity
        warnings = node.certificate_warnings()
        report = {
            "party": node.party,
            "signing_key": identity.fingerprint,
            "protected": is_protected(node.directory),
            "node_certificate_until": identity.node_certificate.not_valid_after_utc,
            "ca_certificate_until": identity.ca_certificate.not_valid_after_utc,
            "warnings": warnings,
        }
    if as_json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        return
    console.print(
        f"{report['party']} signing key {report['signing_key']} "
        f"({'encrypted with a passphrase' if report['protected'] else 'a plain file'})\n"
        f"TLS certificate until {report['node_certificate_until']:%Y-%m-%d}, "
        f"CA until {report['ca_certificate_until']:%Y-%m-%d}",
        highlight=False,
    )
    for warning in warnings:
        print_warning(warning)


@keys_app.command("rotate")
def rotate(node_dir: NodeDir = Path(".")) -> None:
    """A new signing key, endorsed by the old one, and a new TLS certificate from the same CA.
    Give partners the new card ('kuroshio partner card'): they take it on the old key's word,
    and signatures made with the old key stay valid. Restart 'kuroshio serve' to use it."""
    with open_node(node_dir) as node:
        old = node.identity.fingerprint
        endorsement = node.rotate_keys()
    new = key_fingerprint(public_key_from_b64(endorsement.successor))
    console.print(
        f"signing key {old} retired, {new} in use (and a new TLS certificate); send partners "
        "the new card: kuroshio partner card",
        highlight=False,
    )


@keys_app.command("protect")
def protect(
    node_dir: NodeDir = Path("."),
    passphrase_stdin: Annotated[
        bool, typer.Option("--passphrase-stdin", help="Read the passphrase from standard input.")
    ] = False,
) -> None:
    """Encrypt the signing key with a passphrase; the node then opens only when it is given in
    KUROSHIO_KEY_PASSPHRASE or a file named by KUROSHIO_KEY_PASSPHRASE_FILE."""
    if passphrase_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt("passphrase", hide_input=True)
        if typer.prompt("again", hide_input=True) != secret:
            raise InputError("the two passphrases differ")
    protect_signing_key(node_dir, secret.encode("utf-8"))
    console.print(
        f"signing key of {node_dir} encrypted; give its passphrase in {PASSPHRASE_ENV} or "
        f"{PASSPHRASE_FILE_ENV} to open the node"
    )
