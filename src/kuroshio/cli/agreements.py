"""Command line for release agreements and reciprocity: ``agreement draft|sign|verify|show|diff|
install|list|preview`` and ``ledger``.

Commands read files and the node directory, call :mod:`kuroshio.policy` and print (rich tables
for people, JSON for machines). No policy logic lives here.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from kuroshio.cli.common import AsJson, NodeDir, console, print_warning
from kuroshio.errors import AgreementError, InputError
from kuroshio.model import is_party
from kuroshio.node import Node, open_node
from kuroshio.pki import Keys
from kuroshio.policy import reciprocity
from kuroshio.policy.agreement import (
    EnforcedAgreement,
    ParsedAgreement,
    SignatureCheck,
    check_signatures,
    diff_agreements,
    read_agreement,
    sign_agreement,
    with_signature,
)
from kuroshio.policy.book import AgreementBook
from kuroshio.policy.decide import Decision, Released, describe_marking, preview
from kuroshio.policy.describe import describe_match, describe_transforms, draft_text
from kuroshio.policy.ledger import (
    LedgerEntry,
    ReciprocityStatus,
    read_ledger_file,
    reciprocity_status,
)
from kuroshio.store import ObservationFilter

At = Annotated[
    str | None,
    typer.Option("--at", help="Decide as of this time (ISO 8601, UTC if no zone); default now."),
]

app = typer.Typer()
agreement_app = typer.Typer(
    help="Release agreements: draft, sign, verify, show, diff, install, list, preview.",
    no_args_is_help=True,
)
app.add_typer(agreement_app, name="agreement")


def _now(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--at {at!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _ledger_entries(node: Node, entries: Path | None) -> list[LedgerEntry]:
    """The ledger in ``entries`` (NDJSON, e.g. a partner's) or, by default, the node's own."""
    if entries is not None:
        return read_ledger_file(entries)
    with node.store.transaction() as tx:
        return reciprocity.entries(tx)


def _json_line(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


# --- the node's keys and book -------------------------------------------------------------------


def open_book(node: Node, now: dt.datetime) -> AgreementBook:
    """The node's installed agreements; a stored file that no longer verifies is reported."""
    book = node.agreements
    for problem in node.agreement_problems:
        print_warning(f"not in force: {problem.reason}")
    return book


def _signature_table(checks: tuple[SignatureCheck, ...], title: str) -> Table:
    table = Table(title=title)
    for column in ("party", "signature", "key", "signed at"):
        table.add_column(column)
    style = {"valid": "green", "missing": "red", "not_pinned": "yellow"}
    for check in checks:
        colour = style.get(check.state, "red")
        table.add_row(
            check.party,
            f"[{colour}]{check.detail}[/]",
            check.key or "",
            check.signed_at.strftime("%Y-%m-%d %H:%M") if check.signed_at else "",
        )
    return table


@agreement_app.command("draft")
def agreement_draft(
    out: Annotated[Path, typer.Argument(help="File to write the draft to (.toml).")],
    agreement_id: Annotated[str, typer.Option("--id", help="Agreement id, e.g. twn-jpn.")],
    parties: Annotated[
        list[str], typer.Option("--party", "-p", help="A party (repeat; at least two).")
    ],
    days: Annotated[int, typer.Option(help="Days of validity from --start.")] = 365,
    start: Annotated[
        str | None, typer.Option(help="Start of validity (ISO date); default today, UTC.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a new agreement to edit: a conservative rule pair for every direction."""
    codes = [p.strip().upper() for p in parties]
    for code in codes:
        if not is_party(code):
            raise InputError(f"--party {code!r}: not an ISO 3166-1 alpha-3 party code")
    if len(set(codes)) < 2:
        raise InputError("an agreement needs at least two different --party")
    if out.exists() and not force:
        raise InputError(f"{out} exists; use --force to overwrite it")
    today = _now(start).replace(hour=0, minute=0, second=0, microsecond=0)
    text = draft_text(
        agreement_id,
        list(dict.fromkeys(codes)),
        valid_from=today,
        days=days,
        file_name=str(out),
    )
    out.write_text(text, encoding="utf-8")
    console.print(
        f"Draft {agreement_id} v1 written to {out}. Edit it, then each party signs it with "
        f"'kuroshio agreement sign {out} --node <node dir>'.",
        highlight=False,
    )


# --- sign, verify, show, diff ---------------------------------------------------------------------


@agreement_app.command("sign")
def agreement_sign(
    file: Annotated[Path, typer.Argument(help="The agreement file; signed in place.")],
    node_dir: NodeDir = Path("."),
) -> None:
    """Sign an agreement with this node's key (adds or replaces this party's [[signature]])."""
    with open_node(node_dir) as node:
        parsed = read_agreement(file)
        identity = node.identity
        signature = sign_agreement(
            parsed,
            party=node.party,
            signer=identity,
            public_key=identity.public_key_bytes,
            now=dt.datetime.now(dt.UTC),
        )
        file.write_text(with_signature(parsed, signature), encoding="utf-8")
        signed = {s.party for s in parsed.signatures} | {node.party}
        missing = [p for p in parsed.agreement.parties if p not in signed]
        console.print(
            f"Signed {parsed.id} v{parsed.version} for {node.party} "
            f"(key {identity.fingerprint}, digest {parsed.digest[:16]}). "
            + (f"Still to sign: {', '.join(missing)}." if missing else "Every party has signed."),
            highlight=False,
        )
        for warning in parsed.warnings:
            print_warning(warning)


@agreement_app.command("verify")
def agreement_verify(
    file: Annotated[Path, typer.Argument(help="The agreement file.")],
    node_dir: Annotated[
        Path | None,
        typer.Option(
            "--node", "-n", envvar="KUROSHIO_NODE", help="Check against this node's pinned keys."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check an agreement: it parses, its rules hold together, and every party signed it with the
    key this node pinned for it. Exit status 0 only when a node would enforce it."""
    parsed = read_agreement(file)
    keys: dict[str, Keys] = {}
    if node_dir is not None:
        with open_node(node_dir) as node:
            keys = node.pinned_keys()
    checks = check_signatures(parsed, keys)
    agreement = parsed.agreement
    now = dt.datetime.now(dt.UTC)
    enforceable = all(c.valid for c in checks) and now < agreement.valid_until
    if as_json:
        _json_line(
            {
                "file": str(file),
                "id": agreement.id,
                "version": agreement.version,
                "digest": parsed.digest,
                "valid_from": agreement.valid_from,
                "valid_until": agreement.valid_until,
                "signatures": checks,
                "warnings": parsed.warnings,
                "enforceable": enforceable,
            }
        )
    else:
        console.print(_signature_table(checks, f"{agreement.id} v{agreement.version}"))
        for warning in parsed.warnings:
            print_warning(warning)
        verdict = "[green]enforceable[/]" if enforceable else "[red]not enforceable[/]"
        console.print(
            f"{verdict}: valid {agreement.valid_from:%Y-%m-%d %H:%M} – "
            f"{agreement.valid_until:%Y-%m-%d %H:%M} UTC, digest {parsed.digest}"
        )
    if not enforceable:
        raise typer.Exit(1)


@agreement_app.command("show")
def agreement_show(
    file: Annotated[Path, typer.Argument(help="The agreement file.")],
    as_json: AsJson = False,
) -> None:
    """Show an agreement: parties, validity, reciprocity clause and every rule per direction."""
    parsed = read_agreement(file)
    agreement = parsed.agreement
    if as_json:
        _json_line(
            {
                "agreement": agreement,
                "digest": parsed.digest,
                "signed_by": [s.party for s in parsed.signatures],
                "warnings": parsed.warnings,
            }
        )
        return
    console.print(
        f"[bold]{agreement.id}[/] v{agreement.version} {agreement.title}\n"
        f"parties {', '.join(agreement.parties)}; valid {agreement.valid_from:%Y-%m-%d %H:%M}"
        f" – {agreement.valid_until:%Y-%m-%d %H:%M} UTC; signed by "
        f"{', '.join(s.party for s in parsed.signatures) or 'nobody yet'}",
        highlight=False,
    )
    clause = agreement.reciprocity
    if clause is not None:
        console.print(
            f"reciprocity: received/given {clause.measure} over {clause.window_days} days "
            f"at least {clause.min_ratio:g} (judged from {clause.min_given}); "
            f"on shortfall: {clause.on_shortfall}",
            highlight=False,
        )
    pairs = sorted({(d.sender, r) for d in agreement.direction for r in d.to})
    for sender, recipient in pairs:
        table = Table(title=f"{sender} → {recipient}")
        for column in ("#", "rule", "action", "match", "transforms"):
            table.add_column(column)
        for number, rule in enumerate(agreement.rules(sender, recipient), start=1):
            action = "[green]release[/]" if rule.action == "release" else "[red]withhold[/]"
            table.add_row(
                str(number),
                rule.id,
                action,
                describe_match(rule.match),
                describe_transforms(rule.transform)
                if rule.action == "release"
                else rule.reason or "",
            )
        table.add_row("", "(default)", "[red]withhold[/]", "anything else", "")
        console.print(table)
    for warning in parsed.warnings:
        print_warning(warning)


@agreement_app.command("diff")
def agreement_diff(
    old: Annotated[Path, typer.Argument(help="The earlier version.")],
    new: Annotated[Path, typer.Argument(help="The later version.")],
    as_json: AsJson = False,
) -> None:
    """What changed between two versions of an agreement, rule by rule."""
    lines = diff_agreements(read_agreement(old).agreement, read_agreement(new).agreement)
    if as_json:
        _json_line({"old": str(old), "new": str(new), "changes": lines})
        return
    if not lines:
        console.print("no change in meaning (comments, layout or signatures only)")
    for line in lines:
        console.print(line, highlight=False)


# --- install, list, preview -----------------------------------------------------------------------


@agreement_app.command("install")
def agreement_install(
    file: Annotated[Path, typer.Argument(help="The signed agreement file.")],
    node_dir: NodeDir = Path("."),
) -> None:
    """Put a signed agreement in force on this node. A bad, unsigned or expired file is refused
    and the agreement already in force stays in force."""
    with open_node(node_dir) as node:
        now = dt.datetime.now(dt.UTC)
        open_book(node, now)
        enforced, new = node.install_agreement(file, now=now)
        if not new:
            console.print(f"{enforced.id} v{enforced.version} is already installed.")
            return
        state = "in force" if enforced.in_force(now) else "installed, not yet in force"
        console.print(
            f"{enforced.id} v{enforced.version} {state} with "
            f"{', '.join(p for p in enforced.parties if p != node.party)} "
            f"(digest {enforced.digest[:16]}).",
            highlight=False,
        )


@agreement_app.command("list")
def agreement_list(node_dir: NodeDir = Path("."), at: At = None, as_json: AsJson = False) -> None:
    """Installed agreements, and which one governs each partner now."""
    with open_node(node_dir) as node:
        now = _now(at)
        book = open_book(node, now)
        governing = {p: book.in_force(p, now) for p in book.partners(now)}

        def governs(enforced: EnforcedAgreement) -> list[str]:
            return sorted(p for p, g in governing.items() if g is enforced)

        installed = book.installed()
        if as_json:
            _json_line(
                [
                    {
                        "id": e.id,
                        "version": e.version,
                        "parties": list(e.parties),
                        "valid_from": e.agreement.valid_from,
                        "valid_until": e.agreement.valid_until,
                        "digest": e.digest,
                        "governs": governs(e),
                    }
                    for e in installed
                ]
            )
            return
        table = Table(title=f"{node.party}: agreements")
        for column in ("id", "version", "parties", "valid", "governs now"):
            table.add_column(column)
        for enforced in installed:
            table.add_row(
                enforced.id,
                str(enforced.version),
                ", ".join(enforced.parties),
                f"{enforced.agreement.valid_from:%Y-%m-%d} – "
                f"{enforced.agreement.valid_until:%Y-%m-%d}",
                ", ".join(governs(enforced)) or "-",
            )
        console.print(table)


def _status(
    node: Node,
    entries: Path | None,
    clause_holder: ParsedAgreement,
    partner: str,
    now: dt.datetime,
) -> ReciprocityStatus | None:
    clause = clause_holder.agreement.reciprocity
    if clause is None:
        return None
    return reciprocity_status(_ledger_entries(node, entries), partner, clause, now)


@agreement_app.command("preview")
def agreement_preview(
    partner: Annotated[str, typer.Argument(help="The partner, e.g. JPN.")],
    node_dir: NodeDir = Path("."),
    draft: Annotated[
        Path | None,
        typer.Option("--file", help="Preview this agreement (e.g. an unsigned draft) instead."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only observations from this time on (ISO 8601).")
    ] = None,
    at: At = None,
    show: Annotated[int, typer.Option(help="Released items to list in the table.")] = 20,
    entries: Annotated[
        Path | None,
        typer.Option(help="Ledger records (NDJSON) for the reciprocity status (default: own)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="NDJSON: one decision per observation.")
    ] = False,
) -> None:
    """What PARTNER would receive from the current store, exactly as it would leave, and what
    would be withheld and why. Nothing is sent."""
    partner = partner.upper()
    with open_node(node_dir) as node:
        now = _now(at)
        if draft is not None:
            parsed = read_agreement(draft)
            label = f"draft {parsed.id} v{parsed.version} from {draft}"
        else:
            enforced = open_book(node, now).in_force(partner, now)
            if enforced is None:
                raise AgreementError(
                    f"no agreement with {partner} is in force on this node: nothing would be "
                    "released (use --file to preview a draft)"
                )
            parsed = enforced.parsed
            label = f"{parsed.id} v{parsed.version} (in force)"
        status = _status(node, entries, parsed, partner, now)
        selection = ObservationFilter(start=_now(since) if since else None)
        counts: Counter[tuple[str, str]] = Counter()
        listed: list[Released] = []
        for observation in node.store.iter_query(selection):
            decision: Decision = preview(
                observation, parsed, partner, status, now, own_party=node.party
            )
            if as_json:
                _json_line(decision)
                continue
            if isinstance(decision, Released):
                counts[("release", decision.rule)] += 1
                if len(listed) < show:
                    listed.append(decision)
            else:
                counts[("withhold", decision.rule or decision.code)] += 1
        if as_json:
            return
        _print_preview(node.party, partner, label, counts, listed, status)


def _print_preview(
    own: str,
    partner: str,
    label: str,
    counts: Counter[tuple[str, str]],
    listed: list[Released],
    status: ReciprocityStatus | None,
) -> None:
    released = sum(n for (action, _), n in counts.items() if action == "release")
    console.print(
        f"{own} → {partner} under {label}: {released} of {sum(counts.values())} observations "
        "would be released.",
        highlight=False,
    )
    if status is not None:
        console.print(f"reciprocity: {status.message}", highlight=False)
    table = Table(title="decisions by rule")
    for column in ("decision", "rule or reason", "observations"):
        table.add_column(column)
    for (action, why), number in sorted(counts.items()):
        table.add_row(action, why, str(number))
    console.print(table)
    if listed:
        items = Table(title=f"first {len(listed)} released, as they would leave")
        for column in ("id", "v", "kind", "platform", "not before", "marking", "transforms"):
            items.add_column(column)
        for decision in listed:
            item = decision.observation
            platform = item.platform
            items.add_row(
                item.id,
                str(item.version),
                item.kind,
                (platform.type or platform.platform_class or "") if platform else "",
                f"{decision.not_before:%Y-%m-%d %H:%M}" if decision.not_before else "now",
                describe_marking(item.marking),
                "; ".join(t.split(": ", 1)[-1] for t in decision.transforms),
            )
        console.print(items)


# --- ledger ---------------------------------------------------------------------------------------


@app.command("ledger")
def ledger(
    node_dir: NodeDir = Path("."),
    partner: Annotated[
        str | None, typer.Option("--partner", "-p", help="One partner (default: all).")
    ] = None,
    days: Annotated[int, typer.Option(help="Days to show, ending today.")] = 14,
    entries: Annotated[
        Path | None,
        typer.Option(help="Ledger records (NDJSON, e.g. a partner's); default the node's own."),
    ] = None,
    at: At = None,
    as_json: AsJson = False,
) -> None:
    """The reciprocity ledger: per partner per day, items and sorties given and received,
    timeliness, precision and novelty, and the standing against each agreement's clause."""
    with open_node(node_dir) as node:
        now = _now(at)
        records = _ledger_entries(node, entries)
        book = open_book(node, now)
        partners = (
            [partner.upper()]
            if partner
            else sorted({e.partner for e in records} | set(book.partners(now)))
        )
        report = reciprocity.partner_ledgers(records, book, partners, now=now, days=days)
        if as_json:
            _json_line(report)
            return
        for row in report:
            _print_ledger(node.party, row)


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _print_ledger(own: str, row: reciprocity.PartnerLedger) -> None:
    partner = row.partner
    table = Table(title=f"{own} ⇄ {partner} ({row.agreement or 'no agreement in force'})")
    for column in (
        "day",
        "given",
        "sorties",
        "delay",
        "grid km",
        "received",
        "sorties",
        "novel",
        "delay",
        "grid km",
    ):
        table.add_column(column, justify="right")
    for day in row.days:
        given, received = day.given, day.received
        table.add_row(
            day.day.isoformat(),
            str(given.items),
            str(given.sorties),
            _number(given.timeliness_s, " s"),
            _number(given.precision_km),
            str(received.items),
            str(received.sorties),
            str(received.novel_items),
            _number(received.timeliness_s, " s"),
            _number(received.precision_km),
        )
    console.print(table)
    status = row.status
    if status is not None:
        colour = "red" if status.shortfall else "green"
        console.print(f"[{colour}]{status.message}[/]", highlight=False)
