"""The agreement book: the signed agreements a node holds and which one is in force per partner.

A new file is installed only if it parses, checks, is signed by every party with its pinned key
and has not expired; otherwise it is refused and what was in force stays in force. The book
keeps accepted files in its directory; it does not audit (the caller records each change).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import msgspec

from kuroshio.errors import AgreementError
from kuroshio.geo.zones import Geography
from kuroshio.pki import Keys
from kuroshio.policy.agreement import (
    EnforcedAgreement,
    ParsedAgreement,
    parse_agreement,
    read_agreement,
    verify_agreement,
)

AGREEMENTS_DIR: Final = "agreements"
"""Where a node directory keeps its installed agreements (one file per version)."""


class InstallProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A stored agreement file that could not be installed when the book was loaded."""

    file: str
    reason: str


class AgreementBook:
    """Installed agreements for ``own_party``, checked against ``pinned_keys`` (party → raw
    Ed25519 public key, this node's own key included)."""

    def __init__(
        self,
        own_party: str,
        pinned_keys: Mapping[str, Keys],
        *,
        geography: Geography | None = None,
        directory: Path | None = None,
    ) -> None:
        self.own_party = own_party
        self.pinned_keys = dict(pinned_keys)
        self.geography = geography
        self.directory = directory
        self._installed: dict[tuple[str, int], EnforcedAgreement] = {}

    def __repr__(self) -> str:
        return f"AgreementBook(own_party={self.own_party!r}, installed={len(self._installed)})"

    # --- installing ----------------------------------------------------------------------------

    def try_install(self, path: Path, *, now: dt.datetime) -> EnforcedAgreement:
        """Install the agreement in ``path``; raises :class:`AgreementError` (and changes
        nothing) when it is malformed, unsigned, signed with the wrong key, expired, older than
        or different from a version already installed."""
        return self._accept(read_agreement(path, self.geography), now, store=True)

    def install_text(
        self, text: str, *, now: dt.datetime, source: str = "<agreement>"
    ) -> EnforcedAgreement:
        """As :meth:`try_install`, from text."""
        return self._accept(
            parse_agreement(text, source=source, geography=self.geography), now, store=True
        )

    def _accept(
        self, parsed: ParsedAgreement, now: dt.datetime, *, store: bool
    ) -> EnforcedAgreement:
        agreement = parsed.agreement
        if self.own_party not in agreement.parties:
            raise AgreementError(
                f"this node's party {self.own_party} is not a party to {agreement.id} "
                f"({', '.join(agreement.parties)})",
                file=parsed.source,
            )
        enforced = verify_agreement(parsed, self.pinned_keys)
        if agreement.valid_until <= now:
            raise parsed.error(
                "valid_until", f"expired on {agreement.valid_until.isoformat()}; nothing to install"
            )
        same = self._installed.get((agreement.id, agreement.version))
        if same is not None:
            if same.digest == enforced.digest:
                return same
            raise parsed.error(
                "version",
                f"version {agreement.version} of {agreement.id} is already installed with "
                "different content; a change needs a new version, signed again",
            )
        newest = self.newest_version(agreement.id)
        if newest is not None and agreement.version < newest:
            raise parsed.error(
                "version",
                f"version {agreement.version} is older than the installed version {newest} "
                f"of {agreement.id}",
            )
        if store and self.directory is not None and parsed.text is not None:
            self._store(agreement.id, agreement.version, parsed.text)
        self._installed[(agreement.id, agreement.version)] = enforced
        return enforced

    def _store(self, agreement_id: str, version: int, text: str) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{agreement_id}.v{version}.toml"
        staging = target.with_name(f".{target.name}.tmp")
        # Write then rename: a crash leaves the old set of files, never a half-written one.
        with staging.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(staging, target)

    def load(self, *, now: dt.datetime) -> list[InstallProblem]:
        """Install every file in the book's directory (oldest version first); returns the files
        refused, e.g. because a partner's pinned key changed. Expired files are skipped."""
        problems: list[InstallProblem] = []
        if self.directory is None or not self.directory.is_dir():
            return problems
        parsed: list[ParsedAgreement] = []
        for path in sorted(self.directory.glob("*.toml")):
            try:
                parsed.append(read_agreement(path, self.geography))
            except AgreementError as error:
                problems.append(InstallProblem(file=str(path), reason=str(error)))
        parsed.sort(key=lambda p: (p.id, p.version))
        for item in parsed:
            if item.agreement.valid_until <= now:
                continue
            try:
                self._accept(item, now, store=False)
            except AgreementError as error:
                problems.append(InstallProblem(file=item.source, reason=str(error)))
        return problems

    # --- looking up ----------------------------------------------------------------------------

    def installed(self) -> tuple[EnforcedAgreement, ...]:
        """Every installed version, by id then version."""
        return tuple(self._installed[key] for key in sorted(self._installed))

    def newest_version(self, agreement_id: str) -> int | None:
        versions = [version for (aid, version) in self._installed if aid == agreement_id]
        return max(versions) if versions else None

    def current(self, agreement_id: str, now: dt.datetime) -> EnforcedAgreement | None:
        """The version of ``agreement_id`` in force at ``now``: the highest version that has
        started, if it has not yet ended (an ended version is not revived by an older one)."""
        started = [
            enforced
            for (aid, _), enforced in self._installed.items()
            if aid == agreement_id and enforced.agreement.valid_from <= now
        ]
        if not started:
            return None
        newest = max(started, key=lambda e: e.version)
        return newest if newest.in_force(now) else None

    def in_force(
        self, partner: str, now: dt.datetime, *, civil: bool = False
    ) -> EnforcedAgreement | None:
        """The agreement that governs what this node releases to ``partner`` at ``now``: the
        observation exchange, or with ``civil`` the civil agreement that carries incidents
        (the two never stand in for each other).

        Among agreements naming both parties and in force, the one that started most recently
        governs (ties: the larger id), so a new agreement replaces an old one from its start.
        """
        candidates = [
            enforced
            for enforced in (self.current(aid, now) for aid in self._ids())
            if enforced is not None
            and partner in enforced.parties
            and partner != self.own_party
            and enforced.agreement.is_civil == civil
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda e: (e.agreement.valid_from, e.id))

    def partners(self, now: dt.datetime) -> tuple[str, ...]:
        """Parties this node has an agreement in force with."""
        found = {
            party
            for aid in self._ids()
            if (enforced := self.current(aid, now)) is not None
            for party in enforced.parties
            if party != self.own_party
        }
        return tuple(sorted(found))

    def _ids(self) -> list[str]:
        return sorted({aid for aid, _ in self._installed})
