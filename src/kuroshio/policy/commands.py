"""Command line for release agreements and reciprocity: ``agreement draft|sign|verify|show|diff|
install|list|preview`` and ``ledger``.

:func:`register` adds them to the ``kuroshio`` app. Commands read files and the node directory,
call :mod:`kuroshio.policy` and print (rich tables for people, JSON for machines); errors become
one line on standard error and exit status 2. No policy logic lives here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from kuroshio.audit import AuditError
from kuroshio.model import is_party
from kuroshio.node import ConfigError, Node, open_node
from kuroshio.partners import PartnerError
from kuroshio.pki import IdentityError, VerificationError
from kuroshio.policy import ledger_store
from kuroshio.policy.agreement import (
    AgreementError,
    EnforcedAgreement,
    Match,
    ParsedAgreement,
    SignatureCheck,
    Transforms,
    check_signatures,
    diff_agreements,
    parse_agreement,
    read_agreement,
    sign_agreement,
    with_signature,
)
from kuroshio.policy.book import AgreementBook
from kuroshio.policy.decide import Decision, Released, describe_marking, preview
from kuroshio.policy.ledger import (
    LedgerEntry,
    ReciprocityStatus,
    reciprocity_status,
)
from kuroshio.store import ObservationFilter, StoreError

console = Console()
err_console = Console(stderr=True)

NodeDir = Annotated[
    Path,
    typer.Option(
        "--node", "-n", envvar="KUROSHIO_NODE", help="Node directory (made by 'kuroshio init')."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
At = Annotated[
    str | None,
    typer.Option("--at", help="Decide as of this time (ISO 8601, UTC if no zone); default now."),
]

FAILURES: tuple[type[Exception], ...] = (
    AgreementError,
    ConfigError,
    StoreError,
    PartnerError,
    IdentityError,
    VerificationError,
    AuditError,
)

agreement_app = typer.Typer(
    help="Release agreements: draft, sign, verify, show, diff, install, list, preview.",
    no_args_is_help=True,
)


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    try:
        yield
    except FAILURES as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _now(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--at {at!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _json_line(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


# --- the node's keys and book -------------------------------------------------------------------


def pinned_keys(node: Node) -> dict[str, bytes]:
    """The Ed25519 keys this node trusts for agreement signatures: its own and its partners'."""
    return node.pinned_keys()


def open_book(node: Node, now: dt.datetime) -> AgreementBook:
    """The node's installed agreements; a stored file that no longer verifies is reported."""
    book = node.agreements
    for problem in node.agreement_problems:
        err_console.print(f"[yellow]warning:[/] not in force: {problem.reason}", highlight=False)
    return book


def load_ledger_entries(
    node: Node | Path, entries: Path | None, *, since: dt.datetime | None = None
) -> list[LedgerEntry]:
    """Ledger records from ``entries`` (NDJSON, e.g. a partner's, to compare) or, by default,
    the node's own ledger (kept as batches are signed for and taken in); ``node`` is an open
    node or a node directory."""
    if entries is None:
        if isinstance(node, Path):
            with open_node(node) as opened:
                return load_ledger_entries(opened, None, since=since)
        with node.store.transaction() as conn:
            return ledger_store.entries(conn, since=since)
    if not entries.is_file():
        raise ConfigError(f"{entries}: no such ledger file")
    decoder = msgspec.json.Decoder(LedgerEntry)
    records: list[LedgerEntry] = []
    with entries.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                records.append(decoder.decode(line))
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                raise ConfigError(f"{entries}:{number}: not a ledger entry: {error}") from None
    return records


# --- words for rules ------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def describe_match(match: Match) -> str:
    """A rule's match in a few words (``everything`` when it has no conditions)."""
    words = []
    for label, values in (
        ("kind", match.kind),
        ("class", match.platform_class),
        ("type", match.platform_type),
        ("origin", match.origin),
    ):
        if values:
            words.append(f"{label} {', '.join(values)}")
    areas = list(match.area) + (["polygon"] if match.polygon else [])
    if areas:
        verb = "within" if match.area_test == "within" else "in/through"
        words.append(f"{verb} {', '.join(areas)}")
    if match.tlp_at_most:
        words.append(f"TLP ≤ {match.tlp_at_most}")
    if match.min_age_s is not None:
        words.append(f"age ≥ {_duration(match.min_age_s)}")
    if match.max_age_s is not None:
        words.append(f"age ≤ {_duration(match.max_age_s)}")
    return "; ".join(words) or "everything"


def describe_transforms(transform: Transforms) -> str:
    words = []
    if transform.coarsen_km is not None:
        words.append(f"coarsen {transform.coarsen_km:g} km")
    if transform.delay_s:
        words.append(f"delay {_duration(transform.delay_s)}")
    if transform.drop:
        words.append("drop " + ", ".join(transform.drop))
    if transform.generalise_type:
        words.append("type → class")
    marking = transform.marking
    if marking is not None:
        parts = []
        if marking.tlp:
            parts.append(f"TLP:{marking.tlp}")
        if marking.releasable_to is not None:
            parts.append("releasable to " + (", ".join(marking.releasable_to) or "any"))
        if marking.rerelease is False:
            parts.append("no re-release")
        elif marking.rerelease or marking.rerelease_to:
            parts.append("re-release to " + (", ".join(marking.rerelease_to or ()) or "any"))
        if marking.max_hops is not None:
            parts.append(f"{marking.max_hops} further hop(s)")
        words.append("mark " + " ".join(parts))
    return "; ".join(words) or "as is"


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


# --- agreement draft ------------------------------------------------------------------------------

_DRAFT_HEADER = """\
# Release agreement {id}, version {version}, between {parties}.
#
# Each [[direction]] lists what its "from" party releases to the parties in "to". Rules apply in
# order: the FIRST rule whose match fits an observation decides; if none fits, the observation is
# withheld (default deny). Positions are coarsened to a lat/lon grid of about N km; delays count
# from the latest moment an observation describes. See docs/agreements.md.
#
# When the text is agreed, every party signs it with its node key:
#     kuroshio agreement sign {file} --node <node dir>
# Any change afterwards needs a new version number and new signatures from every party.

id = "{id}"
version = {version}
title = "{title}"
parties = [{party_list}]
valid_from = {valid_from}
valid_until = {valid_until}

# What each party expects back over a rolling window, and what happens when the partner falls
# short: "warn", "delay" (add delay_s), "coarsen" (to coarsen_km) or "suspend" (suspend_kind /
# suspend_class are withheld).
[reciprocity]
window_days = 30
min_ratio = 0.5
measure = "items"
min_given = 50
on_shortfall = "warn"
"""

_DRAFT_DIRECTION = """
[[direction]]
from = "{sender}"
to = ["{recipient}"]

[[direction.rule]]
id = "{prefix}-submarines"
action = "withhold"
reason = "submarine contacts stay national"
match = {{ platform_class = ["submarine"] }}

[[direction.rule]]
id = "{prefix}-air-sea"
action = "release"
[direction.rule.match]
kind = ["air", "sea"]
tlp_at_most = "AMBER"       # AMBER+STRICT and RED items fall through to "withhold"
max_age_s = 604800          # a week
[direction.rule.transform]
coarsen_km = 10
delay_s = 1800
drop = ["remarks", "provenance.record"]
[direction.rule.transform.marking]
tlp = "AMBER"
rerelease = false
"""


def draft_text(
    agreement_id: str,
    parties: list[str],
    *,
    valid_from: dt.datetime,
    days: int,
    file_name: str,
) -> str:
    """The text of a new agreement: header, reciprocity clause, a conservative rule pair per
    direction. It is checked before it is returned."""
    text = _DRAFT_HEADER.format(
        id=agreement_id,
        version=1,
        parties=", ".join(parties),
        file=file_name,
        title=f"{' – '.join(parties)} observation exchange",
        party_list=", ".join(f'"{p}"' for p in parties),
        valid_from=valid_from.strftime("%Y-%m-%dT%H:%M:%SZ"),
        valid_until=(valid_from + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for sender in parties:
        for recipient in parties:
            if sender != recipient:
                text += _DRAFT_DIRECTION.format(
                    sender=sender,
                    recipient=recipient,
                    prefix=f"{sender}-{recipient}".lower(),
                )
    parse_agreement(text, source=file_name)
    return text


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
    with _failures():
        codes = [p.strip().upper() for p in parties]
        for code in codes:
            if not is_party(code):
                raise ConfigError(f"--party {code!r}: not an ISO 3166-1 alpha-3 party code")
        if len(set(codes)) < 2:
            raise ConfigError("an agreement needs at least two different --party")
        if out.exists() and not force:
            raise ConfigError(f"{out} exists; use --force to overwrite it")
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
    with _failures(), open_node(node_dir) as node:
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
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


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
    with _failures():
        parsed = read_agreement(file)
        keys: dict[str, bytes] = {}
        if node_dir is not None:
            with open_node(node_dir) as node:
                keys = pinned_keys(node)
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
                console.print(f"[yellow]warning:[/] {warning}", highlight=False)
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
    with _failures():
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
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)


@agreement_app.command("diff")
def agreement_diff(
    old: Annotated[Path, typer.Argument(help="The earlier version.")],
    new: Annotated[Path, typer.Argument(help="The later version.")],
    as_json: AsJson = False,
) -> None:
    """What changed between two versions of an agreement, rule by rule."""
    with _failures():
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
    with _failures(), open_node(node_dir) as node:
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
    with _failures(), open_node(node_dir) as node:
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
    return reciprocity_status(load_ledger_entries(node, entries), partner, clause, now)


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
    with _failures(), open_node(node_dir) as node:
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
    with _failures(), open_node(node_dir) as node:
        now = _now(at)
        records = load_ledger_entries(node, entries)
        book = open_book(node, now)
        partners = (
            [partner.upper()]
            if partner
            else sorted({e.partner for e in records} | set(book.partners(now)))
        )
        report = ledger_store.partner_ledgers(records, book, partners, now=now, days=days)
        if as_json:
            _json_line(report)
            return
        for row in report:
            _print_ledger(node.party, row)


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _print_ledger(own: str, row: ledger_store.PartnerLedger) -> None:
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


def register(app: typer.Typer) -> None:
    """Add ``agreement`` and ``ledger`` to the ``kuroshio`` app."""
    app.add_typer(agreement_app, name="agreement")
    app.command("ledger")(ledger)


__all__ = [
    "agreement_app",
    "describe_match",
    "describe_transforms",
    "draft_text",
    "ledger",
    "load_ledger_entries",
    "open_book",
    "pinned_keys",
    "register",
]
