"""A node's directory and configuration: one TOML file, validated once, with defaults that work.

A node directory holds ``kuroshio.toml``, ``keys/`` and the store file. This module creates and
reads that directory; it does not serve anything (see :mod:`kuroshio.server` for that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import tomli_w

from kuroshio.model import Observation, PartyCode, is_party
from kuroshio.store import AppendResult
from kuroshio.store.sqlite import SQLiteStore

CONFIG_NAME = "kuroshio.toml"


class ConfigError(Exception):
    """A node directory or its configuration is unusable; the message names the file and field."""


class NodeSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    party: PartyCode
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class ApiSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8443
    public_url: str | None = None
    """How partners reach this node; defaults to https://host:port."""

    def url(self) -> str:
        return self.public_url or f"https://{self.host}:{self.port}"


class StoreSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "store.sqlite"


class LimitsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_record_bytes: Annotated[int, msgspec.Meta(ge=1_024, le=64 * 1024 * 1024)] = 1024 * 1024
    """Largest single input record (one NDJSON line, one JSON document) accepted."""
    max_file_bytes: Annotated[int, msgspec.Meta(ge=1_024)] = 4 * 1024 * 1024 * 1024


class NodeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    node: NodeSection
    api: ApiSection = msgspec.field(default_factory=ApiSection)
    store: StoreSection = msgspec.field(default_factory=StoreSection)
    limits: LimitsSection = msgspec.field(default_factory=LimitsSection)


class Node:
    """An opened node directory: its configuration and its store."""

    def __init__(self, directory: Path, config: NodeConfig) -> None:
        self.directory = directory
        self.config = config
        self._store: SQLiteStore | None = None

    @property
    def party(self) -> str:
        return self.config.node.party

    @property
    def store(self) -> SQLiteStore:
        if self._store is None:
            self._store = SQLiteStore(self.directory / self.config.store.path)
        return self._store

    def ingest(self, observations: Sequence[Observation]) -> AppendResult:
        """Store own or imported observations; the single door for everything this node learns."""
        return self.store.append(observations)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_name(party: str) -> str:
    return f"{party.lower()}-1"


def init_node(directory: Path, party: str, *, name: str | None = None, port: int = 8443) -> Node:
    """Create a node directory for ``party``; refuses a directory that already holds a node."""
    party = party.upper()
    if not is_party(party):
        raise ConfigError(f"unknown party code {party!r} (ISO 3166-1 alpha-3 expected, e.g. TWN)")
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise ConfigError(f"{config_path} exists: {directory} is already a node directory")
    name = name or default_name(party)
    config = msgspec.convert(
        {"node": {"party": party, "name": name}, "api": {"port": port}}, NodeConfig
    )
    directory.mkdir(parents=True, exist_ok=True)
    config_path.write_text(_render(config), encoding="utf-8")
    node = Node(directory, config)
    node.store  # noqa: B018 - creates the store file now, so a new node is complete on disk
    return node


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
