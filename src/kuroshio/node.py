"""A node's directory and configuration: one TOML file, validated once, with defaults that work.

A node directory holds ``kuroshio.toml``, ``keys/``, ``partners/`` and the store file. This module
creates and reads that directory and is the one door for everything a node learns
(:meth:`Node.ingest`); it does not serve anything (see :mod:`kuroshio.server` for that).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
import tomli_w

from kuroshio.audit import AuditLog
from kuroshio.exchange import outbox
from kuroshio.exchange.outbox import ReleaseSummary
from kuroshio.model import Observation, PartyCode, is_party
from kuroshio.partners import Partner, PartnerConfig, PartnerError, load_partners
from kuroshio.pki import IdentityError, NodeIdentity, create_identity, load_identity
from kuroshio.store import AppendResult, Outcome
from kuroshio.store.sqlite import SQLiteStore

CONFIG_NAME: Final = "kuroshio.toml"
DEFAULT_FEDERATION_PORT: Final = 8443
DEFAULT_API_PORT: Final = 8080
_NEWLY_STORED: Final = (Outcome.INSERTED, Outcome.SUPERSEDED, Outcome.STALE)


class ConfigError(Exception):
    """A node directory or its configuration is unusable; the message names the file and field."""


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

    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


class StoreSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "store.sqlite"


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


class NodeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    node: NodeSection
    federation: FederationSection = msgspec.field(default_factory=FederationSection)
    api: ApiSection = msgspec.field(default_factory=ApiSection)
    store: StoreSection = msgspec.field(default_factory=StoreSection)
    limits: LimitsSection = msgspec.field(default_factory=LimitsSection)
    exchange: ExchangeSection = msgspec.field(default_factory=ExchangeSection)
    partners: dict[PartyCode, PartnerConfig] = msgspec.field(default_factory=dict)


class Node:
    """An opened node directory: its configuration, identity, partners, store and audit log."""

    def __init__(self, directory: Path, config: NodeConfig) -> None:
        self.directory = directory
        self.config = config
        self._store: SQLiteStore | None = None
        self._identity: NodeIdentity | None = None
        self._audit: AuditLog | None = None
        self._partners: dict[str, Partner] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()

    @property
    def party(self) -> str:
        return self.config.node.party

    @property
    def store(self) -> SQLiteStore:
        if self._store is None:
            self._store = SQLiteStore(self.directory / self.config.store.path)
            with self._store.transaction() as conn:
                outbox.create_tables(conn)
        return self._store

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
        """The audit log, on the store's connection so entries share the store's transactions."""
        if self._audit is None:
            self._audit = AuditLog(self.store.connection, self.identity, self.party)
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

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) after each commit that stored observations."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def notify_stored(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def ingest(self, observations: Sequence[Observation], *, via: str = "local") -> AppendResult:
        """Store own or imported observations; the single door for everything this node learns.

        In one transaction: the store append, the release of each new version to each partner's
        outbox, and the ``ingest`` audit entry.
        """
        partners = self.partners
        audit = self.audit
        with self.store.transaction() as conn:
            result, released = self.store_in(conn, observations, partners)
            audit.append(
                "ingest",
                f"{len(observations)} observations via {via}",
                ingest_details(result, released),
            )
        if result.stored:
            self.notify_stored()
        return result

    def store_in(
        self,
        conn: sqlite3.Connection,
        observations: Sequence[Observation],
        partners: dict[str, Partner] | None = None,
    ) -> tuple[AppendResult, ReleaseSummary]:
        """Append and release inside the caller's transaction (used by :meth:`ingest` and the
        inbox, which adds its own state and audit entry to the same transaction)."""
        result = self.store.append_in(conn, observations)
        fresh = [
            observation
            for observation, outcome in zip(observations, result.outcomes, strict=True)
            if outcome in _NEWLY_STORED
        ]
        released = outbox.release_in(
            conn, fresh, self.partners if partners is None else partners, own_party=self.party
        )
        return result, released

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._audit = None

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
) -> Node:
    """Create a node directory for ``party``: config, keys (signing key, party CA, node TLS
    certificate) and store. ``port`` is the federation port. Refuses an existing node."""
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
            },
            NodeConfig,
        )
    except msgspec.ValidationError as error:
        raise ConfigError(f"{config_path}: {_toml_path(str(error))}") from None
    directory.mkdir(parents=True, exist_ok=True)
    names = list(hostnames)
    if host not in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::"):
        names.append(host)
    try:
        create_identity(directory, party, name, names)
    except IdentityError as error:
        raise ConfigError(f"cannot create the node identity: {error}") from None
    save_config(directory, config)
    node = Node(directory, config)
    node.store  # noqa: B018 - creates the store file now, so a new node is complete on disk
    return node


def save_config(directory: Path, config: NodeConfig) -> None:
    """Write the config atomically (comments in an edited file are not kept)."""
    path = directory / CONFIG_NAME
    staging = path.with_suffix(".toml.new")
    staging.write_text(_render(config), encoding="utf-8")
    os.replace(staging, path)


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
    try:
        return msgspec.toml.decode(path.read_bytes(), type=NodeConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_toml_path(str(exc))}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _toml_path(message: str) -> str:
    # msgspec names JSON paths ($.api.port); a TOML user thinks in dotted keys (api.port).
    return re.sub(r"`\$\.?([^`]*)`", lambda m: f"`{m.group(1) or 'top level'}`", message)


def open_node(directory: Path) -> Node:
    return Node(directory, load_config(directory))
