"""The errors kuroshio raises for people to act on: one root, each knowing its exit status.

Every failure a user can cause or mend (a bad file, a missing key, an unpinned partner, a refused
batch) is a :class:`KuroshioError`: its message is one line that says what and where, and it
carries the exit status the command line ends with and the HTTP status the operator API answers
with. The command line and the API each catch this one type; anything else is a bug and keeps
its traceback. This module imports nothing of kuroshio, so every floor can raise from it.

Hierarchy::

    KuroshioError
    ├── ConfigError            a node directory or its kuroshio.toml
    ├── InputError             a value given on the command line or to the API (also ValueError)
    ├── StoreError             a store that cannot be opened, migrated or used
    │   └── StoreUnavailable   its server unreachable or gone: try again (HTTP 503)
    ├── IdentityError          a key or certificate that cannot be made, read or trusted
    ├── VerificationError      a signature, certificate or proof that does not check out
    ├── PartnerError           a partner card or pinned partner
    ├── AgreementError         an agreement that cannot be read, trusted or enforced
    ├── AuditError             an audit entry that cannot be written or read
    ├── ImportFileError        a whole input file is unusable
    ├── ImportRecordError      one input record refused (collected, not raised to the top)
    ├── GeographyError         the packaged zones and gates
    ├── UnknownZoneError       no zone or gate of that id (also LookupError)
    ├── CatalogueError         the packaged platform catalogue (also ValueError)
    ├── UnknownPlatformLabel   a label the catalogue cannot resolve (also LookupError)
    ├── TransportError         a partner that cannot be reached, a listener that cannot start
    ├── ChannelClosed          a link's channel closed, with the code and reason given
    ├── MerkleError            a tree asked for what it does not hold (also ValueError)
    ├── InclusionError         an inclusion proof that does not bind its item to the root
    ├── NotAuthenticated       no operator could be authenticated for a request (HTTP 401)
    ├── NotPermitted           the operator's role does not allow it (HTTP 403)
    └── LinkRefused            a batch, receipt or hello refused (kuroshio.exchange.wire)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal


class KuroshioError(Exception):
    """A failure to report in one line: ``exit_code`` for the command line, ``http_status`` for
    the API."""

    exit_code: ClassVar[int] = 2
    http_status: ClassVar[int] = 422


class LocatedError(KuroshioError):
    """An error about one place (a file, record, field or peer): ``location: reason``."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}" if location else reason)
        self.location = location
        self.reason = reason


class ConfigError(KuroshioError):
    """A node directory or its configuration is unusable; the message names the file and field."""


class InputError(KuroshioError, ValueError):
    """A value given for an option or query parameter cannot be used; the message says why."""


class StoreError(KuroshioError):
    """A store could not be opened, migrated or used (path and reason in the message)."""


class StoreUnavailable(StoreError):
    """The store's server cannot be reached or dropped the connection (a restart, a network
    cut); the operation failed whole and can be tried again."""

    exit_code: ClassVar[int] = 3
    http_status: ClassVar[int] = 503


class IdentityError(LocatedError):
    """A key or certificate that cannot be made, read or trusted; names the file or field."""


class VerificationError(LocatedError):
    """A signature, certificate or proof that does not check out, with the reason."""

    def __init__(self, reason: str, location: str = "") -> None:
        super().__init__(location, reason)


class PartnerError(LocatedError):
    """A card or pinned partner that cannot be used; names the file or party and the reason."""


class AgreementError(KuroshioError):
    """An agreement that cannot be read, trusted or enforced: where (file, line, field) and why."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.field = field
        super().__init__(f"{self.location}: {reason}" if self.location else reason)

    @property
    def location(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return where


class AuditError(LocatedError):
    """An audit entry that cannot be written or read, with where and why."""


class ImportFileError(KuroshioError):
    """A whole input file is unusable (missing, unreadable, wrong encoding, too large, cut
    short): bad input, exit status 1 like a refused record; nothing of it is stored."""

    exit_code: ClassVar[int] = 1


class ImportRecordError(LocatedError):
    """One input record refused: where (file:line or file[index], field path) and why."""


class GeographyError(LocatedError):
    """The geography data is unusable; ``location`` names the file and feature, ``reason`` why."""


class UnknownZoneError(KuroshioError, LookupError):
    """No zone or gate has the requested id."""

    def __init__(self, zone_id: str, known: Sequence[str]) -> None:
        super().__init__(f"no zone {zone_id!r}; known: {', '.join(known)}")
        self.zone_id = zone_id


class CatalogueError(LocatedError, ValueError):
    """The catalogue document is malformed: ``location`` names the entry, ``reason`` says why."""


class UnknownPlatformLabel(KuroshioError, LookupError):
    """A label the catalogue cannot resolve to exactly one type.

    ``reason`` is ``unknown`` or ``ambiguous`` (then ``candidates`` lists the codes);
    ``location`` says where the label was read, when the caller knows.
    """

    def __init__(
        self,
        label: str,
        reason: Literal["unknown", "ambiguous"],
        *,
        candidates: Sequence[str] = (),
        location: str | None = None,
    ) -> None:
        where = f"{location}: " if location else ""
        detail = f" ({', '.join(candidates)})" if candidates else ""
        super().__init__(f"{where}{reason} platform label {label!r}{detail}")
        self.label = label
        self.reason = reason
        self.candidates = tuple(candidates)
        self.location = location


class TransportError(LocatedError):
    """A partner could not be reached or a listener not started: where and why."""


class ChannelClosed(KuroshioError):
    """The channel is closed; ``code`` and ``reason`` as the closing side gave them."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"channel closed ({code}): {reason}" if reason else f"closed ({code})")
        self.code = code
        self.reason = reason


class MerkleError(KuroshioError, ValueError):
    """A tree asked for something it does not hold (e.g. a proof for an index past its end)."""


class InclusionError(KuroshioError):
    """An inclusion proof that does not bind the item to the root, with the reason."""

    def __init__(self, reason: str, *, index: int | None = None) -> None:
        where = f"item {index}: " if index is not None else ""
        super().__init__(where + reason)
        self.reason = reason
        self.index = index


class FeedConfigError(ConfigError, ValueError):
    """A ``[feeds.NAME]`` table that cannot be used; the message names the file and the field."""


class CaptureError(InputError):
    """A capture file that cannot be read; the message names the file, the record and why."""


class FeedSocketError(KuroshioError, OSError):
    """A feed's socket could not be opened; the message names the endpoint and the reason."""


class NotAuthenticated(KuroshioError):
    """No operator could be authenticated (no credentials, or ones that do not check out)."""

    http_status: ClassVar[int] = 401


class NotPermitted(KuroshioError):
    """An authenticated operator whose role does not allow what was asked, or a request from a
    page or host this node does not serve."""

    http_status: ClassVar[int] = 403


class MessageError(LocatedError):
    """A dialogue message that cannot be sent, released or acknowledged: which and why."""


__all__ = [
    "AgreementError",
    "AuditError",
    "CaptureError",
    "CatalogueError",
    "ChannelClosed",
    "ConfigError",
    "FeedConfigError",
    "FeedSocketError",
    "GeographyError",
    "IdentityError",
    "ImportFileError",
    "ImportRecordError",
    "InclusionError",
    "InputError",
    "KuroshioError",
    "LocatedError",
    "MerkleError",
    "MessageError",
    "NotAuthenticated",
    "NotPermitted",
    "PartnerError",
    "StoreError",
    "StoreUnavailable",
    "TransportError",
    "UnknownPlatformLabel",
    "UnknownZoneError",
    "VerificationError",
]
