"""Command line for federation: ``partner card|add|list``, ``audit``, ``link status``.

Commands parse options, call the library and print (rich tables for people, JSON for machines).
No exchange logic lives here; ``serve`` has a module of its own (:mod:`kuroshio.cli.serve`).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from kuroshio.audit import ExportedLog, export_lines, verify_log
from kuroshio.cli.common import AsJson, NodeDir, console, err_console
from kuroshio.errors import ConfigError, PartnerError
from kuroshio.exchange import outbox, witness
from kuroshio.exchange.receipt import read_receipt
from kuroshio.exchange.status import LinkStatus, link_reports
from kuroshio.node import open_node, save_config
from kuroshio.partners import (
    PartnerConfig,
    check_successor,
    check_url,
    encode_card,
    make_card,
    read_card,
    store_card,
)
from kuroshio.pki import Keys

app = typer.Typer()
partner_app = typer.Typer(help="Partner cards: export this node's, pin a partner's.")
audit_app = typer.Typer(help="The audit log: verify the chain, show partners' receipts.")
link_app = typer.Typer(help="Links to and from partners.")
app.add_typer(partner_app, name="partner")
app.add_typer(audit_app, name="audit")
app.add_typer(link_app, name="link")


def _time(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else ""


# --- partner --------------------------------------------------------------------------------


@partner_app.command("card")
def partner_card(
    node_dir: NodeDir = Path("."),
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the card here (default: stdout).")
    ] = None,
) -> None:
    """Export this node's partner card (party, URL, CA certificate, signing key; no secrets)."""
    with open_node(node_dir) as node:
        identity = node.identity
        card = make_card(
            node.party,
            node.config.node.name,
            node.config.federation.url(),
            identity.ca_certificate_pem,
            identity.public_key_b64,
            identity.endorsements,
        )
        data = encode_card(card)
        if out is None:
            sys.stdout.buffer.write(data)
        else:
            out.write_bytes(data)
            err_console.print(
                f"Card of {card.party} written to {out}. CA fingerprint {card.ca_fingerprint}, "
                f"key {card.key_fingerprint}: confirm them with the partner out of band."
            )


@partner_app.command("add")
def partner_add(
    card_file: Annotated[Path, typer.Argument(help="The partner's card (JSON); '-' reads stdin.")],
    node_dir: NodeDir = Path("."),
    url: Annotated[str | None, typer.Option(help="Override the URL on the card.")] = None,
) -> None:
    """Pin a partner: trust its CA for TLS and its key for batches and agreements. Nothing is
    released to it until a signed agreement with it is installed ('kuroshio agreement')."""
    location = "<stdin>" if str(card_file) == "-" else str(card_file)
    try:
        data = sys.stdin.buffer.read() if location == "<stdin>" else card_file.read_bytes()
    except OSError as error:
        raise PartnerError(location, f"cannot read: {error.strerror}") from None
    card = read_card(data, location)
    with open_node(node_dir) as node:
        if card.party == node.party:
            raise PartnerError(location, f"the card is this node's own party {card.party}")
        pinned = node.partners.get(card.party)
        rotated = pinned is not None and check_successor(card, pinned, location)
        store_card(node.directory, card)
        if rotated:
            node.note_rotation(card.party, card.key_fingerprint)
        node.config.partners[card.party] = PartnerConfig(url=check_url(url or card.url, "--url"))
        save_config(node.directory, node.config)
        governing = node.agreement_for(card.party, dt.datetime.now(dt.UTC))
    released = (
        f"as agreement {governing.id} v{governing.version} says"
        if governing is not None
        else "nothing until a signed agreement is installed (default deny)"
    )
    if rotated:
        console.print(
            f"{card.party}'s new signing key {card.key_fingerprint} is endorsed by the key "
            "pinned before; its older signatures stay valid.",
            highlight=False,
        )
    console.print(
        f"Pinned [bold]{card.party}[/] ({card.node}) at {url or card.url}.\n"
        f"  CA fingerprint  {card.ca_fingerprint}\n"
        f"  signing key     {card.key_fingerprint}\n"
        f"  released        {released}\n"
        "Restart 'kuroshio serve' to apply.",
        highlight=False,
    )


@partner_app.command("revoke")
def partner_revoke(
    party: Annotated[str, typer.Argument(help="The partner's party code, e.g. JPN.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
    node_dir: NodeDir = Path("."),
    key: Annotated[
        str | None,
        typer.Option(help="Revoke only this signing key (its fingerprint); default: every key."),
    ] = None,
) -> None:
    """Revoke a partner's key at once, a serving node's too: its batches are refused and nothing
    more is sent to it. Revoking every key also unpins the partner."""
    with open_node(node_dir) as node:
        node.revoke_partner(party, reason, key)
    console.print(f"revoked {party.upper()}" + (f" key {key}" if key else "") + f": {reason}")


@partner_app.command("list")
def partner_list(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Pinned partners: URL, key fingerprint, the agreement that governs what they receive."""
    with open_node(node_dir) as node:
        partners = node.partners
        now = dt.datetime.now(dt.UTC)
        governing = {party: node.agreement_for(party, now) for party in partners}
        agreement = {
            party: None if g is None else f"{g.id} v{g.version}" for party, g in governing.items()
        }
        if as_json:
            rows = [
                {
                    "party": p.party,
                    "node": p.node,
                    "url": p.url,
                    "key_fingerprint": p.key_fingerprint,
                    "agreement": agreement[p.party],
                }
                for p in partners.values()
            ]
            sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
            return
        table = Table(title=f"{node.party}: pinned partners")
        for column in ("party", "node", "url", "signing key", "agreement in force"):
            table.add_column(column)
        for partner in partners.values():
            table.add_row(
                partner.party,
                partner.node,
                partner.url,
                partner.key_fingerprint,
                agreement[partner.party] or "none: nothing released",
            )
        console.print(table)


# --- audit ----------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
    partner: Annotated[
        str | None,
        typer.Option(help="Check the heads of PARTNER's log it signed for this node instead."),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option(help="With --partner: PARTNER's log ('kuroshio audit export'), checked too."),
    ] = None,
) -> None:
    """Check the audit chain and its Merkle tree against every head this node signed: exit 0
    when intact, 1 with each broken seq and reason otherwise. With --partner, check that the
    heads PARTNER signed in its receipts form one growing log."""
    if partner is not None:
        _verify_partner(node_dir, partner.upper(), as_json, log)
        return
    with open_node(node_dir) as node:
        report = node.audit.verify(node.identity.all_public_keys)
    if as_json:
        payload: dict[str, Any] = {
            "ok": report.ok,
            "checked": report.checked,
            "head": {"seq": report.head.seq, "hash": report.head.hash.hex()},
            "problems": [msgspec.to_builtins(p) for p in report.problems],
        }
        sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
    elif report.ok:
        console.print(
            f"audit log intact: {report.checked} entries, head seq {report.head.seq} "
            f"{report.head.hash.hex()[:16]}",
            highlight=False,
        )
    else:
        for problem in report.problems:
            err_console.print(
                f"seq {problem.seq}: {problem.reason}: {problem.detail}", highlight=False
            )
    if not report.ok:
        raise typer.Exit(1)


def _verify_partner(node_dir: Path, party: str, as_json: bool, log: Path | None) -> None:
    with open_node(node_dir) as node:
        pinned = node.partners.get(party)
        if pinned is None:
            raise ConfigError(f"{party} is not a pinned partner of {node.party}")
        with node.store.transaction() as tx:
            report = witness.check_heads(tx, party, pinned.signing_keys)
            heads = [(node.party, size, root) for size, root, *_ in tx.audit.partner_heads(party)]
    if log is not None:
        _verify_partner_log(party, log, heads, pinned.signing_keys, as_json)
    if as_json:
        sys.stdout.write(
            msgspec.json.encode({**msgspec.to_builtins(report), "ok": report.ok}).decode() + "\n"
        )
    elif report.heads == 0:
        console.print(f"{party} has signed no head of its audit log for this node yet")
    elif report.ok:
        console.print(
            f"{party}'s audit log as it signed for this node: {report.heads} heads, from "
            f"{report.first_size} to {report.last_size} entries, each extending the one before",
            highlight=False,
        )
    else:
        for problem in report.problems:
            err_console.print(
                f"{party} head of {problem.size} (batch {problem.seq}): {problem.reason}: "
                f"{problem.detail}",
                highlight=False,
            )
    if not report.ok:
        raise typer.Exit(1)


def _verify_partner_log(
    party: str, log: Path, heads: list[tuple[str, int, bytes]], keys: Keys, as_json: bool
) -> None:
    try:
        with log.open("rb") as lines:
            exported = ExportedLog(lines, heads)
    except OSError as error:
        raise ConfigError(f"{log}: cannot read: {error.strerror}") from None
    checked = verify_log(exported, keys)
    if as_json:
        sys.stdout.write(msgspec.json.encode(checked).decode() + "\n")
    elif checked.ok:
        console.print(
            f"{party}'s log in {log}: {checked.checked} entries, its chain intact and holding "
            f"every one of the {len(heads)} heads {party} signed for this node",
            highlight=False,
        )
    else:
        for problem in checked.problems:
            err_console.print(
                f"{party} log seq {problem.seq}: {problem.reason}: {problem.detail}",
                highlight=False,
            )
    if not checked.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    node_dir: NodeDir = Path("."),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Default: stdout.")] = None,
) -> None:
    """Write the audit log as NDJSON, for a partner to check against the heads this node signed
    for it ('kuroshio audit verify --partner PARTY --log FILE')."""
    with open_node(node_dir) as node, node.store.transaction() as tx:
        target = sys.stdout.buffer if out is None else out.open("wb")
        try:
            for line in export_lines(tx.audit):
                target.write(line + b"\n")
        finally:
            if out is not None:
                target.close()


@audit_app.command("receipts")
def audit_receipts(
    partner: Annotated[str, typer.Argument(help="Partner party code, e.g. JPN.")],
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many batches (newest).")] = 1_000,
) -> None:
    """What PARTNER has signed for: every batch sent to it, with its receipt."""
    party = partner.upper()
    with open_node(node_dir) as node:
        if party not in node.config.partners:
            raise ConfigError(f"{party} is not a pinned partner of {node.party}")
        with node.store.transaction() as tx:
            rows = outbox.receipts(tx, party, limit=limit)
    decoded = [(row, read_receipt(row.receipt) if row.receipt else None) for row in rows]
    if as_json:
        out = [
            {
                "seq": row.seq,
                "count": row.count,
                "batch_hash": row.hash.hex(),
                "sealed_at": row.sealed_at,
                "acked_at": row.acked_at,
                "receipt": msgspec.to_builtins(receipt) if receipt else None,
                "receipt_signature": row.receipt.signature.hex() if row.receipt else None,
            }
            for row, receipt in decoded
        ]
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
        return
    table = Table(title=f"{node.party} → {party}: batches and {party}'s receipts")
    for column in ("seq", "items", "batch hash", "sealed (UTC)", "received by partner", "stored"):
        table.add_column(column)
    for row, receipt in decoded:
        table.add_row(
            str(row.seq),
            str(row.count),
            row.hash.hex()[:16],
            _time(row.sealed_at),
            _time(receipt.received_at) if receipt else "no receipt yet",
            str(receipt.stored) if receipt else "",
        )
    console.print(table)


# --- link -----------------------------------------------------------------------------------


@link_app.command("status")
def link_status(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Each partner's link, both directions, as stored (works with or without 'serve'), and
    what its sending end is doing now while the node serves."""
    with open_node(node_dir) as node:
        urls = {party: partner.url for party, partner in node.partners.items()}
        with node.store.transaction() as tx:
            reports = link_reports(tx, urls)
    if as_json:
        sys.stdout.write(msgspec.json.encode(reports).decode() + "\n")
        return
    table = Table(title="links")
    for column in (
        "partner",
        "waiting",
        "sent (seq)",
        "acked (seq)",
        "unacked items",
        "last receipt (UTC)",
        "received (seq)",
        "last received (UTC)",
        "now",
    ):
        table.add_column(column)
    for report in reports:
        out, into = report.outgoing, report.incoming
        table.add_row(
            report.partner,
            str(out.pending),
            str(out.sealed_seq),
            str(out.acked_seq),
            str(out.unacked_items),
            _time(out.last_acked_at),
            str(into.last_seq),
            _time(into.updated_at),
            _live(report.live),
        )
    console.print(table)


def _live(status: LinkStatus | None) -> str:
    """What the sending link is doing now, where a process of the node runs it."""
    if status is None:
        return "not running"
    if status.connected:
        return "connected"
    failed = f" ({status.failed_attempts} failed attempts)" if status.failed_attempts else ""
    return f"connecting: {status.last_error or 'not yet connected'}{failed}"
