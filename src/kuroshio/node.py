"""A node's directory and configuration: one TOML file, validated once, with defaults that work.

A node directory holds ``kuroshio.toml``, ``keys/``, ``partners/`` and the store file. This module
creates and reads that directory and is the one door for everything a node learns
(:meth:`Node.ingest`); it does not serve anything (see :mod:`kuroshio.federation.serve` for that).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import getpass
import ipaddress
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Annotated, Any, Final, Literal

import msgspec
import tomli_w
from cryptography import x509

from kuroshio.access.local import add_operator, issue_token
from kuroshio.access.oidc import OidcSettings
from kuroshio.audit import AuditLog
from kuroshio.errors import (
    AgreementError,
    ConfigError,
    IdentityError,
    MessageError,
    PartnerError,
    StoreError,
)
from kuroshio.exchange import outbox, witness
from kuroshio.exchange.batch import batch_label
from kuroshio.exchange.receipt import Receipt
from kuroshio.exchange.release import MAX_LISTED_ITEMS, ReleaseSummary, release_in
from kuroshio.exchange.wire import SignedReceipt
from kuroshio.export.config import CotOutput
from kuroshio.fusion import SortieGate
from kuroshio.geo.track_events import Fix, fix_of, is_track_update, step_events
from kuroshio.messages import dialogue
from kuroshio.messages.incident import Change, Incident, changed, opened
from kuroshio.messages.incident import Draft as IncidentDraft
from kuroshio.messages.thread import Message
from kuroshio.model import Event, Observation, PartyCode, is_party
from kuroshio.partners import PARTNERS_DIR, Partner, PartnerConfig, card_path, load_partners
from kuroshio.pki import (
    EXPIRY_WARNING,
    KeyEndorsement,
    Keys,
    NodeIdentity,
    create_identity,
    expiring,
    key_fingerprint,
    load_identity,
    rotate_keys,
)
from kuroshio.policy import reciprocity
from kuroshio.policy.agreement import (
    EnforcedAgreement,
    Reciprocity,
    parse_agreement,
    read_agreement,
    sign_agreement,
    with_signature,
)
from kuroshio.policy.book import AGREEMENTS_DIR, AgreementBook, InstallProblem
from kuroshio.policy.ledger import ReciprocityStatus, SortieMatcher
from kuroshio.store import AppendResult, Outcome
from kuroshio.store.backend import NodeStore, open_store
from kuroshio.store.inbox import InboxRow
from kuroshio.store.observations import PreparedRow
from kuroshio.store.revocations import ANY_KEY
from kuroshio.store.sql import CURRENT_COLUMNS
from kuroshio.store.sqlite import SQLiteStore
from kuroshio.store.tracks import TrackHead
from kuroshio.store.transaction import Transaction

CONFIG_NAME: Final = "kuroshio.toml"
DEFAULT_FEDERATION_PORT: Final = 8443
DEFAULT_API_PORT: Final = 8080
_NEWLY_STORED: Final = (Outcome.INSERTED, Outcome.SUPERSEDED, Outcome.STALE)
_T1: Final = CURRENT_COLUMNS.index("t1")
"""Where a prepared ``current`` row holds the item's latest time (µs)."""
ADMIN: Final = "admin"
"""The operator ``kuroshio init`` makes, with a bearer token in :data:`ADMIN_TOKEN`."""
ADMIN_TOKEN: Final = "keys/admin.token"
HELLO_NONCE_KEEP_S: Final = 600.0
"""Hello nonces are kept longer than any hello's time may be off (two minutes)."""
PRIVATE_DIR: Final = 0o700
PRIVATE_FILE: Final = 0o600
logger = logging.getLogger("kuroshio.node")
_PARTNER_SEEN: Final = "partner seen "
"""News one process of a node gives the others when a partner's link reached it (its code
follows)."""
RECIPROCITY_REFRESH_S: Final = 10.0
"""How long a judged reciprocity standing is used before the ledger is counted again."""
RECIPROCITY_COST_SHARE: Final = 0.05
"""At most this share of the time goes to counting one partner's window again: a standing whose
count took ``c`` seconds is counted again after ``c / share`` seconds at the earliest."""


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class NodeSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    party: PartyCode
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class FederationSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The partner-facing listener: TLS 1.3 with client certificates from pinned partners only."""

    host: str = "127.0.0.1"
    port: Port = DEFAULT_FEDERATION_PORT
    public_url: str | None = None
    """How partners reach this node (goes on the partner card); default https://host:port."""
    nats_url: Annotated[str, msgspec.Meta(pattern=r"^(nats|tls)://[^\s/]+/?$")] | None = None
    """A NATS JetStream server (``nats://host:4222`` or ``tls://``): links also run over it, to
    and from partners whose URL is ``nats://``."""
    nats_cafile: str | None = None
    """For a ``tls://`` NATS server: a PEM file of the CAs that sign its certificate (default:
    the system's trusted CAs); a relative path is taken from the node's directory. The node
    shows the server its own certificate, for servers that verify clients."""

    def url(self) -> str:
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class ApiSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The operator API and browser listener: loopback HTTP, or TLS when bound elsewhere."""

    host: str = "127.0.0.1"
    port: Port = DEFAULT_API_PORT
    certfile: str | None = None
    keyfile: str | None = None
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1_024, le=1024 * 1024 * 1024)] = 16 * 1024 * 1024
    """Largest request body accepted by ``POST /api/observations``."""

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    public_hosts: tuple[str, ...] = ()
    """Further host names the API and picture are reached by (a request naming any other host
    is refused, which defeats DNS rebinding); loopback names and ``host`` always count."""
    session_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 30)] = 12
    """How long a browser session lasts after logging in."""
    oidc: OidcSettings | None = None
    """An organisation's OpenID Connect identity provider whose tokens are accepted."""

    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


STORE_DSN_VARIABLE: Final = "KUROSHIO_STORE_DSN"
"""Where a PostgreSQL node finds its connection string when kuroshio.toml gives none (so a
password need not sit in the node directory)."""


class StoreSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where the node keeps everything: one SQLite file (the default), or a schema on a
    PostgreSQL server shared by the node's processes."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: str = "store.sqlite"
    """The SQLite file, relative to the node directory."""
    dsn: str | None = None
    """PostgreSQL connection string (default: the KUROSHIO_STORE_DSN environment variable)."""
    schema: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] | None = None
    """PostgreSQL schema of this node (default: kuroshio_<party>_<node name>)."""


class LimitsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_record_bytes: Annotated[int, msgspec.Meta(ge=1_024, le=64 * 1024 * 1024)] = 1024 * 1024
    """Largest single input record (one NDJSON line, one JSON document) accepted."""
    max_file_bytes: Annotated[int, msgspec.Meta(ge=1_024)] = 4 * 1024 * 1024 * 1024


class ExchangeSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How links batch and bound what they send and accept."""

    batch_items: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 1_000
    batch_delay_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 50
    """Longest wait to fill a batch while an earlier one is still unacknowledged."""
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024, le=256 * 1024 * 1024)] = (
        16 * 1024 * 1024
    )
    window: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    """Batches in flight per link before waiting for receipts."""
    reconnect_max_s: Annotated[float, msgspec.Meta(ge=0.2, le=3_600.0)] = 2.0
    """Longest wait between attempts to reach a partner that cannot be reached (the waits grow
    from 0.2 s). A partner whose own link reaches this node is tried again at once (a
    receiving process tells the sending process through the store)."""
    ack_within_s: (
        dict[
            Literal["routine", "priority", "immediate", "flash"],
            Annotated[float, msgspec.Meta(gt=0.0, le=30 * 86_400.0)],
        ]
        | None
    ) = None
    """This party's acknowledgement deadlines in seconds by precedence, where they differ from
    the defaults (flash 600, immediate 1 800, priority 14 400, routine 86 400)."""

    def ack_within(self) -> dict[str, dt.timedelta]:
        return {p: dt.timedelta(seconds=s) for p, s in (self.ack_within_s or {}).items()}


class NodeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    node: NodeSection
    federation: FederationSection = msgspec.field(default_factory=FederationSection)
    api: ApiSection = msgspec.field(default_factory=ApiSection)
    store: StoreSection = msgspec.field(default_factory=StoreSection)
    limits: LimitsSection = msgspec.field(default_factory=LimitsSection)
    exchange: ExchangeSection = msgspec.field(default_factory=ExchangeSection)
    partners: dict[PartyCode, PartnerConfig] = msgspec.field(default_factory=dict)
    feeds: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """``[feeds.NAME]`` tables, read by :func:`kuroshio.feeds.parse_feeds` when the feeds run
    (so that a node without feeds needs none of their decoders)."""
    cot: dict[Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")], CotOutput] = (
        msgspec.field(default_factory=dict)
    )
    """Cursor-on-Target outputs to TAK clients and servers (``[cot.NAME]``)."""


@dataclasses.dataclass(slots=True)
class _Standing:
    """A partner's judged reciprocity standing under one agreement (by digest), held by the
    node between counts."""

    digest: str
    status: ReciprocityStatus
    judged_at: float
    """When the count began (monotonic clock)."""
    cost_s: float
    noted: bool = False
    """Noted in the store (and audited if it changed) by a write since it was counted."""
    refreshing: bool = False
    """A count is under way in the background."""

    def due(self) -> bool:
        """Whether it is time to count the window again."""
        wait = max(RECIPROCITY_REFRESH_S, self.cost_s / RECIPROCITY_COST_SHARE)
        return time.monotonic() - self.judged_at >= wait


class Node:
    """An opened node directory: its configuration, identity, partners, store and audit log."""

    def __init__(
        self, directory: Path, config: NodeConfig, *, matcher: SortieMatcher | None = None
    ) -> None:
        self.directory = directory
        self.config = config
        self.matcher: SortieMatcher = SortieGate() if matcher is None else matcher
        """Judges whether a received report is a sortie this node already held (novelty): the
        fusion gate unless another matcher is given."""
        self.own_window = reciprocity.OwnWindow()
        """The own observations last read for a received batch's novelty, kept for the next
        batches while the node stores nothing of its own."""
        self._store: NodeStore | None = None
        self._identity: NodeIdentity | None = None
        self._audit: AuditLog | None = None
        self._partners: dict[str, Partner] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._partner_listeners: list[Callable[[str], None]] = []
        self._listeners_lock = threading.Lock()
        self._book: AgreementBook | None = None
        self._book_stamp: tuple[object, ...] | None = None
        self._book_lock = threading.Lock()
        self.agreement_problems: list[InstallProblem] = []
        """Stored agreement files that did not install when the book was last loaded."""
        self._reciprocity: dict[str, _Standing] = {}
        self._reciprocity_lock = threading.Lock()
        self.operator = f"local:{_local_user()}"
        """Who works this node object, named in the audit entries of its writes: the local
        account for the command line; the API names the authenticated operator per request."""

    @property
    def party(self) -> str:
        return self.config.node.party

    @property
    def store(self) -> NodeStore:
        """The node's store, opened (and migrated) the first time it is needed."""
        if self._store is None:
            section = self.config.store
            self._store = open_store(
                section.backend,
                path=self.directory / section.path,
                dsn=section.dsn or os.environ.get(STORE_DSN_VARIABLE),
                schema=self.store_schema,
            )
        return self._store

    @property
    def store_schema(self) -> str:
        """The PostgreSQL schema this node keeps its store in, or would keep it in
        (``store.schema``; default ``kuroshio_<party>_<node name>``)."""
        name = self.config.node.name.replace("-", "_")
        return self.config.store.schema or f"kuroshio_{self.party.lower()}_{name}"

    @property
    def identity(self) -> NodeIdentity:
        """The node's keys and certificates (made by ``kuroshio init``)."""
        if self._identity is None:
            try:
                self._identity = load_identity(self.directory)
            except IdentityError as error:
                raise ConfigError(f"node identity: {error}") from None
            if self._identity.party != self.party:
                raise ConfigError(
                    f"{self.directory}/keys: identity is for {self._identity.party}, "
                    f"the config for {self.party}"
                )
        return self._identity

    @property
    def audit(self) -> AuditLog:
        """The audit log, in the node's store: entries are written in the transaction of the
        work they record."""
        if self._audit is None:
            self._audit = AuditLog(self.store, self.identity, self.party)
        return self._audit

    @property
    def partners(self) -> dict[str, Partner]:
        """Pinned partners by party code."""
        if self._partners is None:
            try:
                self._partners = load_partners(self.directory, self.config.partners)
            except PartnerError as error:
                raise ConfigError(str(error)) from None
        return self._partners

    # --- agreements ----------------------------------------------------------------------------

    def pinned_keys(self) -> dict[str, Keys]:
        """The Ed25519 keys this node trusts for agreement signatures: its own and its partners'."""
        keys: dict[str, Keys] = {
            party: partner.signing_keys for party, partner in self.partners.items()
        }
        keys[self.party] = self.identity.all_public_keys
        return keys

    @property
    def agreements_directory(self) -> Path:
        return self.directory / AGREEMENTS_DIR

    def _agreements_stamp(self) -> tuple[object, ...]:
        directory = self.agreements_directory
        try:
            stat = directory.stat()
            files = sorted(
                (entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
                for entry in os.scandir(directory)
                if entry.name.endswith(".toml")
            )
        except FileNotFoundError:
            return ()
        return (stat.st_ino, stat.st_mtime_ns, tuple(files))

    @property
    def agreements(self) -> AgreementBook:
        """The installed agreements, read again whenever the ``agreements/`` directory changed
        (``kuroshio agreement install`` from another process takes effect at the next release)."""
        with self._book_lock:
            stamp = self._agreements_stamp()
            if self._book is None or stamp != self._book_stamp:
                book = AgreementBook(
                    self.party, self.pinned_keys(), directory=self.agreements_directory
                )
                self.agreement_problems = book.load(now=dt.datetime.now(dt.UTC))
                self._book, self._book_stamp = book, stamp
                with self._reciprocity_lock:
                    self._reciprocity.clear()
            return self._book

    def agreement_for(self, partner: str, now: dt.datetime) -> EnforcedAgreement | None:
        """The agreement that governs releases to ``partner`` at ``now`` (None: nothing leaves)."""
        return self.agreements.in_force(partner, now)

    def civil_agreement_for(self, partner: str, now: dt.datetime) -> EnforcedAgreement | None:
        """The civil agreement with ``partner`` at ``now`` that carries incidents (None: none)."""
        return self.agreements.in_force(partner, now, civil=True)

    def install_agreement(
        self, path: Path, *, now: dt.datetime | None = None, operator: str | None = None
    ) -> tuple[EnforcedAgreement, bool]:
        """Install a signed agreement file and audit it; True when it was not installed before.

        A bad, unsigned, expired or older file raises :class:`AgreementError`; the refusal is
        audited and what was in force stays in force.
        """
        now = now or dt.datetime.now(dt.UTC)
        book = self.agreements
        try:
            previous = book.newest_version(read_agreement(path, book.geography).id)
            enforced = book.try_install(path, now=now)
        except AgreementError as error:
            with self.store.transaction() as tx:
                self.audit.append(
                    tx,
                    "agreement_change",
                    f"refused {path.name}"[:500],
                    {
                        "file": str(path),
                        "refused": error.reason[:1000],
                        "operator": operator or self.operator,
                    },
                )
            raise
        if previous == enforced.version:
            return enforced, False
        with self.store.transaction() as tx:
            self.audit.append(
                tx,
                "agreement_change",
                f"installed {enforced.id} v{enforced.version}",
                {**enforced.audit_details(), "operator": operator or self.operator},
            )
        return enforced, True

    def sign_agreement_text(self, text: str, *, source: str = "<agreement>") -> str:
        """``text`` with this node's signature added (replacing an earlier one of this party)."""
        parsed = parse_agreement(text, source=source)
        identity = self.identity
        signature = sign_agreement(
            parsed,
            party=self.party,
            signer=identity,
            public_key=identity.public_key_bytes,
            now=dt.datetime.now(dt.UTC),
        )
        return with_signature(parsed, signature)

    def reciprocity_in(
        self, tx: Transaction, partner: str, agreement: EnforcedAgreement, now: dt.datetime
    ) -> ReciprocityStatus | None:
        """The partner's standing against ``agreement``'s reciprocity clause (None: no clause),
        judged from the ledger; a change of standing is audited.

        The first standing under an agreement is counted here, in ``tx``. After that the
        standing is counted again in the background, on a reading connection of its own, once
        it is :data:`RECIPROCITY_REFRESH_S` old (later when counting takes long: see
        :data:`RECIPROCITY_COST_SHARE`), and used from the next call on: the writes that ask
        for it never wait for the window to be counted."""
        clause = agreement.agreement.reciprocity
        if clause is None:
            return None
        with self._reciprocity_lock:
            standing = self._reciprocity.get(partner)
            if standing is not None and standing.digest != agreement.digest:
                standing = None
            elif standing is not None and standing.due() and not standing.refreshing:
                standing.refreshing = True
                threading.Thread(
                    target=self._count_standing,
                    args=(self.store, partner, agreement.digest, clause),
                    name=f"reciprocity-{partner}",
                    daemon=True,
                ).start()
        if standing is None:
            began = time.monotonic()
            status = reciprocity.standing(tx, partner, clause, now)
            standing = _Standing(agreement.digest, status, began, time.monotonic() - began)
            with self._reciprocity_lock:
                self._reciprocity[partner] = standing
        if not standing.noted:
            self._note_standing(tx, agreement, standing.status, now)
            standing.noted = True
        return standing.status

    def _count_standing(
        self, store: NodeStore, partner: str, digest: str, clause: Reciprocity
    ) -> None:
        """Count ``partner``'s window again on a reading connection (a background thread)."""
        began = time.monotonic()
        try:
            reader = store.reader()
            try:
                now = dt.datetime.now(dt.UTC)
                status = reader.read(lambda tx: reciprocity.standing(tx, partner, clause, now))
            finally:
                reader.close()
        except Exception:
            logger.exception("counting the reciprocity window of %s failed", partner)
            status = None
        with self._reciprocity_lock:
            standing = self._reciprocity.get(partner)
            if standing is None or standing.digest != digest:
                return
            if status is None:
                standing.refreshing = False  # tried again when next asked
                standing.judged_at = time.monotonic()
                return
            self._reciprocity[partner] = _Standing(digest, status, began, time.monotonic() - began)

    def _note_standing(
        self,
        tx: Transaction,
        agreement: EnforcedAgreement,
        status: ReciprocityStatus,
        now: dt.datetime,
    ) -> None:
        """Note the standing; audit it when it differs from the one noted before."""
        partner = status.partner
        label = f"{agreement.id} v{agreement.version}"
        previous = reciprocity.note_status(tx, status, label, now)
        if previous is not None:
            self.audit.append(
                tx,
                "decision",
                f"reciprocity with {partner}: {reciprocity.status_state(status)}",
                {
                    "partner": partner,
                    "agreement": agreement.id,
                    "agreement_version": agreement.version,
                    "previous": previous or None,
                    "state": reciprocity.status_state(status),
                    "action": status.action,
                    "ratio": status.ratio,
                    "min_ratio": status.min_ratio,
                    "message": status.message,
                },
            )

    def certificate_warnings(self, now: dt.datetime | None = None) -> list[str]:
        """This node's certificates and its partners' CAs that expired or expire within
        :data:`~kuroshio.pki.EXPIRY_WARNING`."""
        identity = self.identity
        certificates = [
            ("this node's TLS certificate", identity.node_certificate),
            (f"{self.party}'s CA certificate", identity.ca_certificate),
        ]
        for party, partner in sorted(self.partners.items()):
            with contextlib.suppress(ValueError):
                certificates.append(
                    (f"{party}'s pinned CA", x509.load_pem_x509_certificate(partner.ca_pem))
                )
        return expiring(certificates, now or dt.datetime.now(dt.UTC), EXPIRY_WARNING)

    # --- operators ---------------------------------------------------------------------------

    def add_operator(self, name: str, role: str, password: str | None) -> None:
        """Add a local operator of the operator API (or change its role and password); audited."""
        with self.store.transaction() as tx:
            checked = add_operator(tx, name, role, password, dt.datetime.now(dt.UTC))
            self.audit.append(
                tx,
                "access",
                f"operator {name} is {checked}",
                {
                    "name": name,
                    "role": checked,
                    "can_log_in": password is not None,
                    "operator": self.operator,
                },
            )

    def remove_operator(self, name: str) -> bool:
        """Disable an operator and end its tokens and sessions; audited. False: none such."""
        with self.store.transaction() as tx:
            removed = tx.operators.disable(name)
            if removed:
                self.audit.append(
                    tx,
                    "access",
                    f"operator {name} removed",
                    {"name": name, "operator": self.operator},
                )
        return removed

    def issue_token(self, operator: str, label: str, valid_for: dt.timedelta | None) -> str:
        """A new bearer token acting as ``operator`` (shown once); audited without the secret."""
        with self.store.transaction() as tx:
            secret = issue_token(tx, operator, label, dt.datetime.now(dt.UTC), valid_for=valid_for)
            self.audit.append(
                tx,
                "access",
                f"bearer {label} issued to {operator}",
                {
                    "name": operator,
                    "label": label,
                    "days": None if valid_for is None else valid_for.days,
                    "operator": self.operator,
                },
            )
        return secret

    def revoke_token(self, operator: str, label: str) -> bool:
        """Revoke a bearer token at once; audited. False: no such token."""
        with self.store.transaction() as tx:
            revoked = tx.operators.revoke_token(operator, label)
            if revoked:
                self.audit.append(
                    tx,
                    "access",
                    f"bearer {label} of {operator} revoked",
                    {"name": operator, "label": label, "operator": self.operator},
                )
        return revoked

    # --- listeners -----------------------------------------------------------------------------

    # --- the dialogue channel --------------------------------------------------------------

    def send_message(self, message: Message, now: dt.datetime | None = None) -> Message:
        """Release ``message`` under the agreement in force with its recipient and queue it on
        that link, audited; the message as it leaves (see :mod:`kuroshio.messages.dialogue`)."""
        now = now or dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            sent = dialogue.send(
                tx,
                message,
                self.agreement_for(message.recipient, now),
                now,
                own_party=self.party,
                audit=self.audit,
                ack_within=self.config.exchange.ack_within(),
            )
        self.notify_stored()
        return sent

    def send_draft(self, draft: dialogue.Draft, now: dt.datetime | None = None) -> Message:
        """Compose a message from ``draft`` (see :func:`~kuroshio.messages.dialogue.compose`)
        and send it as :meth:`send_message` does."""
        now = now or dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            message = dialogue.compose(tx, draft, sender=self.party, now=now)
        return self.send_message(message, now)

    def share_incident(self, incident: Incident, now: dt.datetime | None = None) -> Incident:
        """Keep and send a version of an incident made here, under the civil agreement with
        each party working it (see :func:`~kuroshio.messages.dialogue.share_incident`)."""
        now = now or dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            shared = dialogue.share_incident(
                tx,
                incident,
                lambda party: self.civil_agreement_for(party, now),
                now,
                own_party=self.party,
                audit=self.audit,
            )
        self.notify_stored()
        return shared

    def open_incident(self, draft: IncidentDraft, now: dt.datetime | None = None) -> Incident:
        """Open the incident ``draft`` describes and share it (see :meth:`share_incident`)."""
        now = now or dt.datetime.now(dt.UTC)
        incident_id = f"{self.party}:sar:{uuid.uuid4().hex[:16]}"
        try:
            incident = opened(draft, incident_id=incident_id, party=self.party, now=now)
        except msgspec.ValidationError as error:
            raise MessageError("incident", str(error)) from None
        return self.share_incident(incident, now)

    def update_incident(
        self, incident_id: str, change: Change, now: dt.datetime | None = None
    ) -> Incident:
        """The next version of an incident after this party's ``change``, kept and sent."""
        now = now or dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            current = dialogue.incident(tx, incident_id)
        try:
            updated = changed(current, change, self.party, now)
        except ValueError as error:
            raise MessageError(f"incident {incident_id}", str(error)) from None
        return self.share_incident(updated, now)

    def mark_message(
        self, message_id: str, state: str, now: dt.datetime | None = None
    ) -> dialogue.Kept:
        """Mark a received message ``read`` or ``acked``; the state travels back to its sender."""
        now = now or dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            row = dialogue.show(tx, message_id)
            marked = dialogue.mark(
                tx,
                message_id,
                state,
                self.agreement_for(row.partner, now),
                now,
                own_party=self.party,
                audit=self.audit,
            )
        self.notify_stored()
        return marked

    def escalate_messages(self, now: dt.datetime | None = None) -> list[dialogue.Kept]:
        """Escalate (mark, re-send, audit) every message sent from here past its deadline."""
        at = now or dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            escalated = dialogue.escalate_overdue(
                tx,
                at,
                lambda partner: self.agreement_for(partner, at),
                audit=self.audit,
                ack_within=self.config.exchange.ack_within(),
            )
        if escalated:
            self.notify_stored()
        return escalated

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) after each commit that stored observations."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def add_partner_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` (from any thread) with a partner's code when that partner's own
        link has reached the node (it is up again), in this process or another of the node."""
        with self._listeners_lock:
            self._partner_listeners.append(listener)

    def remove_partner_listener(self, listener: Callable[[str], None]) -> None:
        with self._listeners_lock:
            if listener in self._partner_listeners:
                self._partner_listeners.remove(listener)

    def notify_stored(self) -> None:
        """Tell listeners here and the node's other processes that something was stored."""
        self._dispatch()
        self.store.announce()

    def notify_partner_seen(self, party: str) -> None:
        """Tell partner listeners here and in the node's other processes that ``party``'s link
        has reached this node."""
        self._dispatch_partner(party)
        self.store.announce(_PARTNER_SEEN + party)

    def watch_other_processes(self) -> Callable[[], None] | None:
        """Call the listeners also when another process of this node stores something or is
        reached by a partner (a node on PostgreSQL served by several processes); the function
        returned stops it."""
        return self.store.watch(self._news)

    def _news(self, news: str) -> None:
        if not news:
            self._dispatch()
        elif news.startswith(_PARTNER_SEEN):
            party = news.removeprefix(_PARTNER_SEEN)
            if party in self.partners:
                self._dispatch_partner(party)

    def _dispatch(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def _dispatch_partner(self, party: str) -> None:
        with self._listeners_lock:
            listeners = list(self._partner_listeners)
        for listener in listeners:
            listener(party)

    def ingest(
        self,
        observations: Sequence[Observation],
        *,
        via: str = "local",
        operator: str | None = None,
    ) -> AppendResult:
        """Store own or imported observations; the single door for everything this node learns.

        In one transaction: the store append, the release of each new version to each partner's
        outbox, and the ``ingest`` audit entry, naming ``operator`` (default: :attr:`operator`).
        """
        partners = self.partners
        audit = self.audit
        with self.store.transaction() as tx:
            result, released = self.store_in(tx, observations, partners)
            details = ingest_details(result, released)
            details["operator"] = operator or self.operator
            audit.append(tx, "ingest", f"{len(observations)} observations via {via}", details)
        if result.stored:
            self.notify_stored()
        return result

    @contextlib.contextmanager
    def intake(
        self, *, via: str = "local", operator: str | None = None
    ) -> Iterator[IntakeTransaction]:
        """One transaction for a whole import: each :meth:`IntakeTransaction.ingest` stores a
        chunk as :meth:`ingest` does (append, release, audit), and nothing of it is committed
        before the block ends; an error (a bad record at the end of a file, an interruption)
        rolls back every chunk."""
        partners = self.partners
        with self.store.transaction() as tx:
            session = IntakeTransaction(self, tx, partners, via=via, operator=operator)
            yield session
        if session.stored:
            self.notify_stored()

    def store_in(
        self,
        tx: Transaction,
        observations: Sequence[Observation],
        partners: dict[str, Partner] | None = None,
        *,
        received_from: str | None = None,
        prepared: Sequence[PreparedRow] | None = None,
        sent_in: Sequence[InboxRow] | None = None,
    ) -> tuple[AppendResult, ReleaseSummary]:
        """Append and release inside the caller's transaction (used by :meth:`ingest` and the
        inbox, which adds its own state and audit entry to the same transaction).

        Items taken in from partner ``received_from`` enter the reciprocity ledger. Every newly
        stored version is decided for every pinned partner under the agreement in force with it
        (:mod:`kuroshio.exchange.release`), and one ``decision`` audit entry sums up the lot.
        ``prepared``: the store's rows for ``observations``, made before the transaction
        (:func:`kuroshio.store.sqlite.prepare`); ``sent_in``: where each sat in the batch it
        came in (kept with each version stored).
        """
        result = tx.observations.append(observations, prepared, sent_in)
        stored = [
            position for position, outcome in enumerate(result.outcomes) if outcome in _NEWLY_STORED
        ]
        fresh = [observations[position] for position in stored]
        steps = follow_tracks(tx, fresh) if fresh else []
        now = dt.datetime.now(dt.UTC)
        if received_from is not None and fresh:
            novel = reciprocity.judge_novelty(tx, fresh, self.party, self.matcher, self.own_window)
            latest = None if prepared is None else [prepared[p][2][_T1] for p in stored]
            tx.ledger.record(
                reciprocity.received_ledger_rows(fresh, received_from, now, novel, latest),
                first_stored=True,
            )
        pinned = self.partners if partners is None else partners
        if not fresh or not pinned:
            return result, ReleaseSummary()
        governing = {party: self.agreement_for(party, now) for party in pinned}
        statuses = {
            party: status
            for party, enforced in governing.items()
            if enforced is not None
            and (status := self.reciprocity_in(tx, party, enforced, now)) is not None
        }
        released = release_in(
            tx,
            fresh,
            sorted(pinned),
            agreement_for=governing.get,
            reciprocity=statuses,
            own_party=self.party,
            now=now,
        )
        counts = ", ".join(f"{n} to {party}" for party, n in released.released.items())
        self.audit.append(
            tx, "decision", f"released {counts} of {len(fresh)}"[:500], released.audit_details()
        )
        dialogue.answer_requests(
            tx,
            fresh,
            now,
            governing.get,
            own_party=self.party,
            audit=self.audit,
            ack_within=self.config.exchange.ack_within(),
            steps=steps,
        )
        return result, released

    def enforce_at_send(self, tx: Transaction, partner: str, now: dt.datetime) -> int:
        """Before a batch to ``partner`` is sealed, in its transaction: withdraw every due item
        released under an agreement no longer in force (expired, superseded) and decide it again
        under the one in force now, if any; audited as a ``decision``. How many were withdrawn.
        """
        enforced = self.agreement_for(partner, now)
        civil = self.civil_agreement_for(partner, now)
        lapsed = outbox.withdraw_lapsed(
            tx,
            partner,
            None if enforced is None else enforced.digest,
            now,
            None if civil is None else civil.digest,
        )
        if not lapsed:
            return 0
        released = ReleaseSummary()
        if enforced is not None:
            originals = [
                found
                for item in lapsed
                if (found := tx.observations.get(item.id, item.version)) is not None
            ]
            status = self.reciprocity_in(tx, partner, enforced, now)
            released = release_in(
                tx,
                originals,
                [partner],
                agreement_for=lambda _: enforced,
                reciprocity={} if status is None else {partner: status},
                own_party=self.party,
                now=now,
            )
        in_force = None if enforced is None else f"{enforced.id} v{enforced.version}"
        again = released.released.get(partner, 0)
        details: dict[str, Any] = {
            "partner": partner,
            "withdrawn": len(lapsed),
            "released_under": sorted({item.agreement or "unrecorded" for item in lapsed}),
            "in_force": in_force,
            "released_again": again,
            "items": [f"{item.id} v{item.version}" for item in lapsed[:MAX_LISTED_ITEMS]],
        }
        if released.partners:
            details["decision"] = released.audit_details()["partners"]
        self.audit.append(
            tx,
            "decision",
            (
                f"withheld at send to {partner}: {len(lapsed)} released under an agreement no "
                f"longer in force ({again} released again under {in_force or 'none'})"
            )[:500],
            details,
        )
        return len(lapsed)

    def revoke_partner(self, party: str, reason: str, key: str | None = None) -> None:
        """Revoke ``party``'s signing key ``key`` (a fingerprint; None: every key of the party),
        with the reason, audited. It takes effect at the next transaction of any process on this
        store, a serving node's too: its batches are refused and nothing more is sent to it.
        Revoking every key also unpins the party (its card is kept under ``partners/revoked``)."""
        party = party.upper()
        if not reason.strip():
            raise PartnerError(party, "a revocation needs a reason")
        pinned = self.partners.get(party)
        if pinned is None and key is None:
            raise PartnerError(party, f"{party} is not pinned on this node")
        with self.store.transaction() as tx:
            tx.revocations.revoke(
                party, key or ANY_KEY, reason.strip()[:500], int(time.time() * 1_000_000)
            )
            self.audit.append(
                tx,
                "partner_change",
                f"revoked {party}" + (f" key {key}" if key else ""),
                {
                    "partner": party,
                    "key": key or "every key",
                    "reason": reason.strip()[:500],
                    "operator": self.operator,
                },
            )
        if key is None and party in self.config.partners:
            card = card_path(self.directory, party)
            if card.exists():
                kept = self.directory / PARTNERS_DIR / "revoked"
                kept.mkdir(mode=PRIVATE_DIR, exist_ok=True)
                os.replace(card, kept / f"{party}-{int(time.time())}.json")
            del self.config.partners[party]
            save_config(self.directory, self.config)
            self._partners = None

    def rotate_keys(self) -> KeyEndorsement:
        """A new signing key endorsed by the old one, and a new TLS certificate from the same CA
        (:func:`~kuroshio.pki.rotate_keys`); audited, the entry signed with the old key. Give
        partners the new card (``partner card``): they take it on the old key's word."""
        old = self.identity.fingerprint
        with self.store.transaction() as tx:
            self.audit.append(
                tx,
                "partner_change",
                f"signing key {old} rotated",
                {"retired": old, "operator": self.operator},
            )
            endorsement = rotate_keys(self.directory)
        self._identity = None
        self.close()  # the audit log signs with the new key from now on
        return endorsement

    def note_rotation(self, party: str, key: str) -> None:
        """Audit a partner's new key taken on its old key's endorsement."""
        with self.store.transaction() as tx:
            self.audit.append(
                tx,
                "partner_change",
                f"{party} rotated its signing key",
                {"partner": party, "key": key, "operator": self.operator},
            )
        self._partners = None

    def revocation(self, tx: Transaction, party: str, key: bytes) -> str | None:
        """Why ``party``'s key ``key`` may no longer be used (None: it may), as of ``tx``."""
        return tx.revocations.reason(party, key_fingerprint(key))

    def first_hello(self, nonce: str, now: float) -> bool:
        """Keep a link hello's nonce in the store (for :data:`HELLO_NONCE_KEEP_S`, so a restart
        forgets none); False when it was seen before, a replay."""
        with self.store.transaction() as tx:
            return tx.nonces.take(
                nonce, int(now * 1_000_000), int((now - HELLO_NONCE_KEEP_S) * 1_000_000)
            )

    def take_receipt(self, partner: str, receipt: Receipt, signed: SignedReceipt) -> bool:
        """Keep a verified receipt of ``partner`` (its batch acked, its items given) and the head
        of ``partner``'s audit log it carries, in one transaction, audited; a head that does not
        extend the one ``partner`` signed before is audited as a ``verify_failure``. False for a
        receipt already kept."""
        now = dt.datetime.now(dt.UTC)
        with self.store.transaction() as tx:
            if not outbox.record_receipt(tx, partner, receipt, signed, now=now):
                return False
            details: dict[str, object] = {
                "partner": partner,
                "seq": receipt.seq,
                "count": receipt.count,
                "stored": receipt.stored,
                "hash": receipt.batch_hash.hex(),
            }
            extends = witness.keep_head(tx, partner, receipt, signed, now)
            if extends is not None:
                details["audit_size"] = receipt.audit_size
            label = f"batch {batch_label(self.party, partner, receipt.seq)}"
            self.audit.append(tx, "receipt", label, details)
            if extends is False:
                self.audit.append(
                    tx,
                    "verify_failure",
                    f"audit head of {partner}",
                    {
                        "partner": partner,
                        "code": "audit_rewritten",
                        "seq": receipt.seq,
                        "reason": (
                            f"the head of {receipt.audit_size} entries does not extend the head "
                            f"{partner} signed before: its log was cut or rewritten"
                        ),
                    },
                )
        return True

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._audit = None

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow_tracks(tx: Transaction, observations: Sequence[Observation]) -> list[Event]:
    """Move each track that ``observations`` update on and store the events of each step
    (:mod:`kuroshio.geo.track_events`), inside the caller's transaction; the steps' events.
    Observations that are not track updates are left alone; coarsened updates move their
    track but derive no events."""
    updates = sorted(
        (o for o in observations if is_track_update(o)), key=lambda o: (o.observed_at, o.id)
    )
    if not updates:
        return []
    heads = tx.tracks.heads((o.origin, str(o.track)) for o in updates)
    moved: dict[tuple[str, str], TrackHead] = {}
    events: list[Event] = []
    for observation in updates:
        key = (observation.origin, str(observation.track))
        head = moved.get(key) or heads.get(key)
        before = (
            None
            if head is None
            else Fix(head.at, head.lon, head.lat, (head.obs_id, head.obs_version))
        )
        if observation.provenance.released_grid_km is None:
            # A position a release moved onto a grid could step across a line the track never
            # crossed: the track moves on, but only positions as observed derive events.
            events.extend(step_events(observation, before))
        fix = fix_of(observation)
        if head is None:
            moved[key] = TrackHead(
                *key, fix.at, fix.lon, fix.lat, *fix.key, first_at=fix.at, updates=1
            )
        elif fix.at > head.at:
            moved[key] = TrackHead(
                *key,
                fix.at,
                fix.lon,
                fix.lat,
                *fix.key,
                first_at=head.first_at,
                updates=head.updates + 1,
            )
        else:
            moved[key] = head._replace(
                first_at=min(head.first_at, fix.at), updates=head.updates + 1
            )
    tx.tracks.put(list(moved.values()))
    if events:
        tx.observations.put_events(events)
    return events


class IntakeTransaction:
    """The chunks of one import stored in one transaction (:meth:`Node.intake`)."""

    def __init__(
        self,
        node: Node,
        tx: Transaction,
        partners: dict[str, Partner],
        *,
        via: str,
        operator: str | None,
    ) -> None:
        self._node, self._tx, self._partners = node, tx, partners
        self._via, self._operator = via, operator or node.operator
        self.stored = 0
        """Observation versions written so far."""

    def ingest(self, observations: Sequence[Observation]) -> AppendResult:
        """Store one chunk as :meth:`Node.ingest` does, in the import's transaction."""
        result, released = self._node.store_in(self._tx, observations, self._partners)
        details = ingest_details(result, released)
        details["operator"] = self._operator
        self._node.audit.append(
            self._tx, "ingest", f"{len(observations)} observations via {self._via}", details
        )
        self.stored += result.stored
        return result

    def put_events(self, events: Sequence[Event]) -> int:
        """Store derived events in the import's transaction; how many were new."""
        return self._tx.observations.put_events(events)


def ingest_details(result: AppendResult, released: ReleaseSummary) -> dict[str, Any]:
    details: dict[str, Any] = {
        "inserted": result.inserted,
        "superseded": result.superseded,
        "unchanged": result.unchanged,
        "stale": result.stale,
        "conflicts": len(result.conflicts),
    }
    if released.released:
        details["released"] = released.released
    if released.withheld:
        details["withheld"] = released.withheld
    return details


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def default_name(party: str) -> str:
    return f"{party.lower()}-1"


def init_node(
    directory: Path,
    party: str,
    *,
    name: str | None = None,
    port: int = DEFAULT_FEDERATION_PORT,
    api_port: int = DEFAULT_API_PORT,
    host: str = "127.0.0.1",
    hostnames: Sequence[str] = (),
    store: Mapping[str, str] | None = None,
) -> Node:
    """Create a node directory for ``party``: config, keys (signing key, party CA, node TLS
    certificate) and store. ``port`` is the federation port; ``store`` the ``[store]`` section
    (default: the embedded SQLite file). Refuses an existing node."""
    party = party.upper()
    if not is_party(party):
        raise ConfigError(f"unknown party code {party!r} (ISO 3166-1 alpha-3 expected, e.g. TWN)")
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise ConfigError(f"{config_path} exists: {directory} is already a node directory")
    name = name or default_name(party)
    try:
        config = msgspec.convert(
            {
                "node": {"party": party, "name": name},
                "federation": {"host": host, "port": port},
                "api": {"port": api_port},
                "store": dict(store or {}),
            },
            NodeConfig,
        )
    except msgspec.ValidationError as error:
        raise ConfigError(f"{config_path}: {_toml_path(str(error))}") from None
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(directory, PRIVATE_DIR)
    node = Node(directory, config)
    # The store first: a server that cannot be reached leaves no half-made node behind.
    node.store  # noqa: B018 - creates (and migrates) the store now
    names = list(hostnames)
    if host not in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::"):
        names.append(host)
    try:
        create_identity(directory, party, name, names)
    except IdentityError as error:
        node.close()
        raise ConfigError(f"cannot create the node identity: {error}") from None
    save_config(directory, config)
    with node.store.transaction() as tx:
        now = dt.datetime.now(dt.UTC)
        add_operator(tx, ADMIN, "admin", None, now)
        token = issue_token(tx, ADMIN, "init", now)
        node.audit.append(
            tx, "access", f"operator {ADMIN} added", {"operator": ADMIN, "role": "admin"}
        )
    write_private(directory / ADMIN_TOKEN, (token + "\n").encode("ascii"))
    return node


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read (``0600``), replacing any file there."""
    staging = path.with_name(path.name + ".new")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE)
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(staging, path)


def save_config(directory: Path, config: NodeConfig) -> None:
    """Write the config atomically (comments in an edited file are not kept)."""
    write_private(directory / CONFIG_NAME, _render(config).encode("utf-8"))


def _render(config: NodeConfig) -> str:
    header = (
        "# kuroshio node configuration. Edit and restart the node to apply.\n"
        "# Every field and its default: see the README, section 'Node configuration'.\n"
    )
    return header + tomli_w.dumps(_without_none(msgspec.to_builtins(config)))


def _without_none(table: dict[str, Any]) -> dict[str, Any]:
    # TOML has no null: an unset optional field is simply absent.
    return {
        key: _without_none(value) if isinstance(value, dict) else value
        for key, value in table.items()
        if value is not None
    }


def load_config(directory: Path) -> NodeConfig:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"{path} not found: create a node with 'kuroshio init --party TWN {directory}'"
        )
    text = path.read_bytes()
    try:
        return msgspec.toml.decode(text, type=NodeConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_toml_path(_named_table(text, str(exc)))}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _named_table(text: bytes, message: str) -> str:
    """msgspec says ``$.cot[...]`` for a table of a named collection; name the table."""
    if "`$.cot[...]" not in message:
        return message
    tables = msgspec.toml.decode(text).get("cot", {})
    for name, table in tables.items() if isinstance(tables, dict) else ():
        try:
            msgspec.convert(table, CotOutput)
        except msgspec.ValidationError as error:
            reason = str(error)
            if " - at `$" not in reason:
                return f"cot.{name}: {reason}"
            return reason.replace("`$", f"`$.cot.{name}")
    return message


def _toml_path(message: str) -> str:
    # msgspec names JSON paths ($.api.port); a TOML user thinks in dotted keys (api.port).
    return re.sub(r"`\$\.?([^`]*)`", lambda m: f"`{m.group(1) or 'top level'}`", message)


def open_node(directory: Path) -> Node:
    return Node(directory, load_config(directory))


LOCK_FILE: Final = "serve.lock"


@contextlib.contextmanager
def exclusive(node: Node) -> Iterator[IO[str]]:
    """Hold the node directory's lock: one serving process (or supervisor) per node, and no
    store move while it runs."""
    path = node.directory / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"{node.directory} is already served by another process (or its store is moving)"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


class StoreBackup(msgspec.Struct, frozen=True, kw_only=True):
    """A copy of a node's store, checked."""

    file: str
    bytes: int
    versions: int
    """Observation versions the copy holds (history included)."""
    audit_size: int
    audit_head: str
    """The hash of the copy's last audit entry (hex; empty for an empty log)."""


def backup_store(directory: Path, target: Path) -> StoreBackup:
    """Copy the store of the node in ``directory`` (its SQLite file; the node may be serving)
    into the new file ``target``, then check the copy as a store of its own: SQLite's integrity
    check, and the audit chain against the node's keys. A node on PostgreSQL is backed up with
    the server's tools (the error says how). Raises :class:`StoreError` when the copy fails or
    does not check out (the copy is then removed)."""
    with open_node(directory) as node:
        store = _file_store(
            node,
            f"back up schema {node.store_schema} with the server's tools, e.g. pg_dump"
            f" --schema={node.store_schema} --format=custom --file={node.party.lower()}.dump"
            " (or the server's own backups)",
        )
        store.backup(target)
        try:
            with SQLiteStore(target) as copy:
                problems = copy.integrity_problems()
                if problems:
                    raise StoreError(f"the copy {target} is damaged: {'; '.join(problems[:5])}")
                report = AuditLog(copy, node.identity, node.party).verify(
                    node.identity.all_public_keys
                )
                if not report.ok:
                    first = report.problems[0]
                    raise StoreError(
                        f"the copy's audit log does not verify: seq {first.seq}: {first.reason}:"
                        f" {first.detail}"
                    )
                versions = copy.count_versions()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    return StoreBackup(
        file=str(target),
        bytes=target.stat().st_size,
        versions=versions,
        audit_size=report.checked,
        audit_head=report.head.hash.hex() if report.head.seq else "",
    )


def _file_store(node: Node, otherwise: str) -> SQLiteStore:
    """The node's store, which must be its SQLite file (``otherwise``: what to do instead)."""
    store = node.store if node.config.store.backend == "sqlite" else None
    if not isinstance(store, SQLiteStore):
        raise ConfigError(
            f"{node.directory} keeps its store on PostgreSQL (schema {node.store_schema}):"
            f" {otherwise}"
        )
    return store


class StoreMove(msgspec.Struct, frozen=True, kw_only=True):
    """A node's store moved between its SQLite file and PostgreSQL."""

    backend: Literal["sqlite", "postgres"]
    """Where the store is now."""
    file: str
    """The SQLite file moved from (left as it was) or into."""
    schema: str
    """The PostgreSQL schema moved into or from (left as it was)."""
    tables: dict[str, int]
    """Each table copied and its rows."""
    audit_size: int
    """Entries of the audit log, with the same head on both sides."""


def move_store(
    directory: Path,
    *,
    schema: str | None = None,
    file: str | None = None,
    on_rows: Callable[[str, int], None] | None = None,
) -> StoreMove:
    """Move the store of the node in ``directory`` to the other backend, then point the node's
    configuration at it: from its SQLite file into ``schema`` (default
    :attr:`Node.store_schema`) of the PostgreSQL server named by ``store.dsn`` or
    KUROSHIO_STORE_DSN, which must hold no rows there yet; or from its schema into the new file
    ``file`` (default ``store.sqlite``) in ``directory``. Every table moves in one transaction
    (:mod:`kuroshio.store.move`): on any error nothing is moved and the configuration stays as
    it was. The caller holds the directory (:func:`exclusive`), so no serving process of it
    writes meanwhile."""
    try:
        from kuroshio.store.move import MovedTable, move_to_postgres, move_to_sqlite
        from kuroshio.store.postgres import PostgresStore
    except ImportError as error:
        raise ConfigError(
            f"moving to or from PostgreSQL needs its driver ({error.name}): "
            "install the extra with pip install 'kuroshio[postgres]'"
        ) from None
    with open_node(directory) as node:
        section = node.config.store
        name = schema or node.store_schema
        tables: list[MovedTable]
        if section.backend == "sqlite":
            dsn = section.dsn or os.environ.get(STORE_DSN_VARIABLE)
            if not dsn:
                raise ConfigError(
                    f"no PostgreSQL server to move to: set {STORE_DSN_VARIABLE} (or store.dsn in "
                    f"{directory / CONFIG_NAME})"
                )
            path = section.path
            file_store = _file_store(node, "it has moved already")
            with PostgresStore(dsn, schema=name) as schema_store:
                tables = move_to_postgres(file_store, schema_store, on_rows=on_rows)
                _same_head(file_store, schema_store)
            moved = msgspec.structs.replace(section, backend="postgres", schema=name)
        else:
            if schema is not None and schema != node.store_schema:
                raise ConfigError(
                    f"{directory} keeps its store in schema {node.store_schema}, not {schema}"
                )
            path = file or "store.sqlite"
            target = directory / path
            if target.exists():
                raise ConfigError(
                    f"{target} exists: a store moves only into a new file (the one this node"
                    " moved from, if it is that, is out of date: move it aside, or name another"
                    " with --file)"
                )
            kept = node.store
            if not isinstance(kept, PostgresStore):
                raise ConfigError(f"{directory}: the store is not a PostgreSQL schema")
            try:
                with SQLiteStore(target) as file_store:
                    tables = move_to_sqlite(kept, file_store, on_rows=on_rows)
                    _same_head(kept, file_store)
            except BaseException:
                for suffix in ("", "-wal", "-shm"):
                    target.with_name(target.name + suffix).unlink(missing_ok=True)
                raise
            moved = msgspec.structs.replace(section, backend="sqlite", path=path)
        save_config(directory, msgspec.structs.replace(node.config, store=moved))
    audit = next((table.rows for table in tables if table.table == "audit_log"), 0)
    return StoreMove(
        backend=moved.backend,
        file=str(directory / path),
        schema=name,
        tables={table.table: table.rows for table in tables},
        audit_size=audit,
    )


def _same_head(source: NodeStore, target: NodeStore) -> None:
    """Both stores' audit logs end in the same entry (raises :class:`StoreError` otherwise)."""
    with source.snapshot() as before, target.snapshot() as after:
        head, moved = before.audit.head(), after.audit.head()
    if head != moved:
        raise StoreError(
            f"the audit log's head differs after the move ({head} before, {moved} after):"
            " the node stays where it was"
        )
