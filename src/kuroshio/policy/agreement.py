"""Release agreements: the TOML document, its validation, its canonical bytes and its signatures.

An agreement says, per direction between its parties, which observations may leave and how they
are changed on the way. This module reads, checks, signs and verifies agreements; it decides
nothing about a single observation (that is :mod:`kuroshio.policy.decide`) and keeps no state.

Signed bytes
------------
A party signs ``b"kuroshio agreement v1\\x00" + canonical`` with its Ed25519 key, where
``canonical`` is :func:`kuroshio.model.canonical_bytes` of the :class:`Agreement` (every field,
defaults included, keys sorted, times in UTC) — the file's ``[[signature]]`` tables are not part
of it, and neither are comments or layout, so re-formatting a file keeps its signatures valid
while any change of meaning breaks them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec
import shapely
import tomli_w

from kuroshio.errors import AgreementError, VerificationError
from kuroshio.geo.grid import MAX_GRID_KM, MIN_GRID_KM
from kuroshio.geo.zones import Geography
from kuroshio.geo.zones import load as load_geography
from kuroshio.model import (
    TLP,
    Kind,
    PartyCode,
    Position,
    ShortText,
    Text,
    canonical_bytes,
    is_party,
    tlp_rank,
)
from kuroshio.pki import (
    Keys,
    Signer,
    key_fingerprint,
    key_list,
    public_key_from_b64,
    public_key_to_b64,
    verify,
)

SIGNATURE_CONTEXT: Final = b"kuroshio agreement v1\x00"
"""Prefix of the signed bytes, so an agreement signature never passes for any other signature."""
MAX_AGREEMENT_BYTES: Final = 1024 * 1024
MAX_RULES: Final = 1_000
MAX_SECONDS: Final = 366 * 86_400

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", max_length=64)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=MAX_SECONDS)]
GridKm = Annotated[float, msgspec.Meta(ge=MIN_GRID_KM, le=MAX_GRID_KM)]
Hops = Annotated[int, msgspec.Meta(ge=0, le=16)]
UtcTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]

DropField = Literal[
    "remarks",
    "kinematics",
    "kinematics.altitude_m",
    "kinematics.speed_mps",
    "kinematics.course_deg",
    "platform.hull_numbers",
    "platform.label",
    "platform.service",
    "platform.nationality",
    "source.sensor",
    "provenance.record",
    "provenance.importer",
]
"""Fields a rule may drop. A dropped field is absent (None or empty; ``source.sensor`` becomes
``other``, the schema's 'not said')."""

ShortfallAction = Literal["warn", "delay", "coarsen", "suspend"]
Measure = Literal["items", "sorties", "novel_items"]
Action = Literal["release", "withhold"]
AreaTest = Literal["intersects", "within"]


# --- the document ----------------------------------------------------------------------------


def _sorted_unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))


class Match(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which observations a rule is about. Every condition given must hold; empty means any."""

    kind: tuple[Kind, ...] = ()
    platform_class: tuple[ShortText, ...] = ()
    platform_type: tuple[ShortText, ...] = ()
    origin: tuple[PartyCode, ...] = ()
    """Party that first observed the item (own items or items received from a partner)."""
    area: tuple[Slug, ...] = ()
    """Named zones of :mod:`kuroshio.geo` (e.g. ``twn-adiz-sw``)."""
    polygon: Annotated[tuple[Position, ...], msgspec.Meta(max_length=1_000)] = ()
    """An inline area, [lon, lat] vertices (closed automatically)."""
    area_test: AreaTest = "intersects"
    """``intersects``: any part of the geometry in the area; ``within``: all of it."""
    tlp_at_most: TLP | None = None
    min_age_s: Seconds | None = None
    max_age_s: Seconds | None = None

    def __post_init__(self) -> None:
        for name in ("kind", "platform_class", "platform_type", "origin", "area"):
            msgspec.structs.force_setattr(self, name, _sorted_unique(getattr(self, name)))

    @property
    def has_area(self) -> bool:
        return bool(self.area or self.polygon)


class MarkingChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The marking a release sets on this party's own items (received items keep theirs)."""

    tlp: TLP | None = None
    releasable_to: tuple[PartyCode, ...] | None = None
    rerelease: bool | None = None
    rerelease_to: tuple[PartyCode, ...] | None = None
    max_hops: Hops | None = None

    def __post_init__(self) -> None:
        for name in ("releasable_to", "rerelease_to"):
            value = getattr(self, name)
            if value is not None:
                msgspec.structs.force_setattr(self, name, _sorted_unique(value))


class Transforms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a releasing rule does to an observation before it leaves."""

    coarsen_km: GridKm | None = None
    delay_s: Seconds = 0
    drop: tuple[DropField, ...] = ()
    generalise_type: bool = False
    """Replace the platform type by its class (type, source label and hull numbers removed)."""
    marking: MarkingChange | None = None

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "drop", _sorted_unique(self.drop))

    @property
    def is_identity(self) -> bool:
        return self == _NO_TRANSFORMS


_NO_TRANSFORMS: Final = Transforms()


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rule: a match and an action. The first rule that matches decides."""

    id: Slug
    action: Action
    match: Match = msgspec.field(default_factory=Match)
    transform: Transforms = msgspec.field(default_factory=Transforms)
    reason: ShortText | None = None
    """Why a withholding rule withholds; shown in the decision and the audit log."""
    note: Text | None = None


class Direction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rules for what ``from`` releases to each party in ``to``, in order."""

    sender: PartyCode = msgspec.field(name="from")
    to: tuple[PartyCode, ...]
    rule: Annotated[tuple[Rule, ...], msgspec.Meta(max_length=MAX_RULES)] = ()

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "to", _sorted_unique(self.to))


class Reciprocity(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What each party expects back, over a rolling window, and what happens when it falls short.

    The ratio is what this party received from the partner over what it gave the partner, both
    counted with ``measure``. With ``novel_items``, received items count only when new to the
    receiver, given items always count.
    """

    window_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30
    min_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1_000.0)]
    measure: Measure = "items"
    min_given: Annotated[int, msgspec.Meta(ge=0)] = 0
    """No shortfall is judged until this many have been given in the window."""
    on_shortfall: ShortfallAction = "warn"
    delay_s: Seconds | None = None
    coarsen_km: GridKm | None = None
    suspend_kind: tuple[Kind, ...] = ()
    suspend_class: tuple[ShortText, ...] = ()

    def __post_init__(self) -> None:
        for name in ("suspend_kind", "suspend_class"):
            msgspec.structs.force_setattr(self, name, _sorted_unique(getattr(self, name)))


class Agreement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The agreement as its parties sign it (everything in the file but the signatures)."""

    id: Slug
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    title: ShortText = ""
    parties: tuple[PartyCode, ...]
    valid_from: UtcTime
    valid_until: UtcTime
    reciprocity: Reciprocity | None = None
    direction: tuple[Direction, ...] = ()
    scope: Literal["exchange", "civil"] | msgspec.UnsetType = msgspec.UNSET
    """``civil``: an agreement between coast guards or civil authorities; it carries
    search-and-rescue and disaster incidents and never releases an observation. Unset: the
    observation exchange (and the dialogue channel) it always was."""

    @property
    def is_civil(self) -> bool:
        return self.scope == "civil"

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "parties", _sorted_unique(self.parties))
        for name in ("valid_from", "valid_until"):
            value: dt.datetime = getattr(self, name)
            if value.tzinfo is not None:
                msgspec.structs.force_setattr(self, name, value.astimezone(dt.UTC))

    def rules(self, sender: str, recipient: str) -> tuple[Rule, ...]:
        """The rules for what ``sender`` releases to ``recipient``, in the order they apply:
        the rules of every direction from ``sender`` that lists ``recipient``, in file order."""
        return tuple(
            rule
            for direction in self.direction
            if direction.sender == sender and recipient in direction.to
            for rule in direction.rule
        )

    def in_window(self, now: dt.datetime) -> bool:
        return self.valid_from <= now < self.valid_until


class AgreementSignature(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One party's signature over the agreement's signed bytes."""

    party: PartyCode
    key: str
    """The signer's raw Ed25519 public key, base64 (checked against the key pinned for it)."""
    signed_at: UtcTime
    value: str
    """The Ed25519 signature, base64."""


def canonical_agreement_bytes(agreement: Agreement) -> bytes:
    """The agreement's canonical encoding (what a digest names)."""
    return canonical_bytes(agreement)


def signed_bytes(agreement: Agreement) -> bytes:
    """Exactly the bytes each party signs."""
    return SIGNATURE_CONTEXT + canonical_agreement_bytes(agreement)


def agreement_digest(agreement: Agreement) -> str:
    """SHA-256 of the canonical bytes, hex: names one version's content in logs and receipts."""
    return hashlib.sha256(canonical_agreement_bytes(agreement)).hexdigest()


# --- where things are in the file --------------------------------------------------------------

_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\s\"-]+?)\s*\]\]\s*(#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s\"-]+?)\s*\]\s*(#.*)?$")
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_.\"-]+?)\s*=")
_MSGSPEC_PATH = re.compile(r"\s*-\s*at `\$\.?([^`]*)`\s*$")
_LAST_STEP = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")


def _key_lines(text: str) -> dict[str, int]:
    """Map each table and key of a TOML text to its line, by path (``direction[0].rule[2]``)."""
    lines: dict[str, int] = {}
    array_counts: dict[str, int] = {}
    current = ""

    def resolve(names: Sequence[str]) -> str:
        path = ""
        for name in names:
            path = f"{path}.{name}" if path else name
            if path in array_counts:
                path = f"{path}[{array_counts[path] - 1}]"
        return path

    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _ARRAY_HEADER.match(raw):
            names = [part.strip().strip('"') for part in match.group(1).split(".")]
            parent = resolve(names[:-1])
            array = f"{parent}.{names[-1]}" if parent else names[-1]
            index = array_counts.get(array, 0)
            array_counts[array] = index + 1
            current = f"{array}[{index}]"
            lines[current] = number
        elif match := _TABLE_HEADER.match(raw):
            names = [part.strip().strip('"') for part in match.group(1).split(".")]
            current = resolve(names)
            lines[current] = number
        elif match := _KEY_LINE.match(raw):
            key = ".".join(part.strip('"') for part in match.group(1).split("."))
            lines.setdefault(f"{current}.{key}" if current else key, number)
    return lines


def _line_for(lines: Mapping[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        shorter = _LAST_STEP.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None


# --- a parsed, checked agreement ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ParsedAgreement:
    """An agreement read from a file and checked, with its signatures not yet verified.

    ``areas`` holds each rule's area as one prepared shapely geometry (lon/lat), keyed by rule id.
    """

    agreement: Agreement
    signatures: tuple[AgreementSignature, ...]
    source: str
    text: str | None
    areas: Mapping[str, Any]
    warnings: tuple[str, ...]
    lines: Mapping[str, int] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.agreement.id

    @property
    def version(self) -> int:
        return self.agreement.version

    @property
    def digest(self) -> str:
        return agreement_digest(self.agreement)

    def rules(self, sender: str, recipient: str) -> tuple[Rule, ...]:
        return self.agreement.rules(sender, recipient)

    def error(self, path: str, reason: str) -> AgreementError:
        """An :class:`AgreementError` about ``path`` in this file, with its line when known."""
        return AgreementError(
            reason, file=self.source, line=_line_for(self.lines, path), field=path or None
        )


def read_agreement(path: Path, geography: Geography | None = None) -> ParsedAgreement:
    """Read and check an agreement file; raises :class:`AgreementError` naming file and line."""
    try:
        size = path.stat().st_size
        if size > MAX_AGREEMENT_BYTES:
            raise AgreementError(
                f"{size} bytes, more than the limit of {MAX_AGREEMENT_BYTES}", file=str(path)
            )
        data = path.read_bytes()
    except OSError as error:
        raise AgreementError(f"cannot read: {error.strerror or error}", file=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AgreementError(f"not UTF-8 text: {error}", file=str(path)) from None
    return parse_agreement(text, source=str(path), geography=geography)


_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
# Fields a person may write as one string where a list is expected (kind = "air").
_LIST_FIELDS: Final = {
    "match": ("kind", "platform_class", "platform_type", "origin", "area"),
    "direction": ("to",),
    "reciprocity": ("suspend_kind", "suspend_class"),
    "marking": ("releasable_to", "rerelease_to"),
    "transform": ("drop",),
}


def _lists_for_strings(table: dict[str, Any]) -> None:
    for direction in _as_list(table.get("direction")):
        if not isinstance(direction, dict):
            continue
        _wrap(direction, _LIST_FIELDS["direction"])
        for rule in _as_list(direction.get("rule")):
            if not isinstance(rule, dict):
                continue
            if isinstance(rule.get("match"), dict):
                _wrap(rule["match"], _LIST_FIELDS["match"])
            transform = rule.get("transform")
            if isinstance(transform, dict):
                _wrap(transform, _LIST_FIELDS["transform"])
                if isinstance(transform.get("marking"), dict):
                    _wrap(transform["marking"], _LIST_FIELDS["marking"])
    if isinstance(table.get("reciprocity"), dict):
        _wrap(table["reciprocity"], _LIST_FIELDS["reciprocity"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _wrap(table: dict[str, Any], names: Sequence[str]) -> None:
    for name in names:
        if isinstance(table.get(name), str):
            table[name] = [table[name]]


def _validation_error(
    error: msgspec.ValidationError, source: str, lines: Mapping[str, int], prefix: str = ""
) -> AgreementError:
    message = str(error)
    path = ""
    if found := _MSGSPEC_PATH.search(message):
        path = found.group(1)
        message = message[: found.start()]
    if prefix:
        path = f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}".rstrip(".")
    message = message.replace(
        "`datetime` with a timezone component",
        "a date-time with a time zone, e.g. 2024-01-01T00:00:00Z",
    )
    return AgreementError(message, file=source, line=_line_for(lines, path), field=path or None)


def parse_agreement(
    text: str, *, source: str = "<agreement>", geography: Geography | None = None
) -> ParsedAgreement:
    """Parse and check agreement TOML; raises :class:`AgreementError` for the first problem."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_POSITION.search(str(error))
        return _raise(
            AgreementError(
                f"not valid TOML: {error}",
                file=source,
                line=int(found.group(1)) if found else None,
            )
        )
    lines = _key_lines(text)
    raw_signatures = table.pop("signature", [])
    _lists_for_strings(table)
    try:
        agreement = msgspec.convert(table, Agreement)
    except msgspec.ValidationError as error:
        raise _validation_error(error, source, lines) from None
    try:
        signatures = msgspec.convert(raw_signatures, tuple[AgreementSignature, ...])
    except msgspec.ValidationError as error:
        raise _validation_error(error, source, lines, prefix="signature") from None
    return check_agreement(
        agreement, signatures=signatures, source=source, text=text, lines=lines, geography=geography
    )


def _raise(error: AgreementError) -> ParsedAgreement:
    raise error


# --- checking ----------------------------------------------------------------------------------


class _Checker:
    """Collects the first error (with its path) and any warnings while checking a document."""

    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source = source
        self.lines = lines
        self.warnings: list[str] = []

    def fail(self, path: str, reason: str) -> AgreementError:
        return AgreementError(
            reason, file=self.source, line=_line_for(self.lines, path), field=path or None
        )

    def where(self, path: str) -> str:
        line = _line_for(self.lines, path)
        return f"line {line}" if line is not None else path


def check_agreement(
    agreement: Agreement,
    *,
    signatures: Sequence[AgreementSignature] = (),
    source: str = "<agreement>",
    text: str | None = None,
    lines: Mapping[str, int] | None = None,
    geography: Geography | None = None,
) -> ParsedAgreement:
    """Check an agreement's meaning (parties, zones, rules that contradict each other, clauses).

    Raises :class:`AgreementError` naming the field (and line, when the text is known).
    """
    lines = dict(lines or {})
    checker = _Checker(source, lines)
    geography = geography if geography is not None else load_geography()
    _check_header(agreement, checker)
    areas = _check_rules(agreement, checker, geography)
    _check_overlaps(agreement, areas, checker)
    if agreement.reciprocity is not None:
        _check_reciprocity(agreement.reciprocity, checker)
    for number, signature in enumerate(signatures):
        if signature.party not in agreement.parties:
            raise checker.fail(
                f"signature[{number}].party", f"{signature.party} is not a party to the agreement"
            )
    parties_signed = [s.party for s in signatures]
    for party in set(parties_signed):
        if parties_signed.count(party) > 1:
            raise checker.fail("signature", f"{party} has more than one signature")
    return ParsedAgreement(
        agreement=agreement,
        signatures=tuple(signatures),
        source=source,
        text=text,
        areas=areas,
        warnings=tuple(checker.warnings),
        lines=lines,
    )


def _check_party(code: str, path: str, checker: _Checker) -> None:
    if not is_party(code):
        raise checker.fail(path, f"unknown party code {code!r} (ISO 3166-1 alpha-3 expected)")


def _check_header(agreement: Agreement, checker: _Checker) -> None:
    if len(agreement.parties) < 2:
        raise checker.fail("parties", "an agreement needs at least two parties")
    for number, party in enumerate(agreement.parties):
        _check_party(party, f"parties[{number}]", checker)
    if agreement.valid_until <= agreement.valid_from:
        raise checker.fail("valid_until", "must be later than valid_from")
    for number, direction in enumerate(agreement.direction):
        path = f"direction[{number}]"
        if direction.sender not in agreement.parties:
            raise checker.fail(f"{path}.from", f"{direction.sender} is not a party")
        if not direction.to:
            raise checker.fail(f"{path}.to", "names no recipient")
        for recipient in direction.to:
            if recipient not in agreement.parties:
                raise checker.fail(f"{path}.to", f"{recipient} is not a party")
            if recipient == direction.sender:
                raise checker.fail(f"{path}.to", f"{recipient} cannot release to itself")


def _rule_paths(agreement: Agreement) -> Iterable[tuple[str, Rule]]:
    for d, direction in enumerate(agreement.direction):
        for r, rule in enumerate(direction.rule):
            yield f"direction[{d}].rule[{r}]", rule


def _check_rules(agreement: Agreement, checker: _Checker, geography: Geography) -> dict[str, Any]:
    areas: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for path, rule in _rule_paths(agreement):
        if rule.id in seen:
            raise checker.fail(
                f"{path}.id", f"rule id {rule.id!r} is also used at {checker.where(seen[rule.id])}"
            )
        seen[rule.id] = path
        match = rule.match
        for number, party in enumerate(match.origin):
            _check_party(party, f"{path}.match.origin[{number}]", checker)
        if match.tlp_at_most == "RED":
            raise checker.fail(
                f"{path}.match.tlp_at_most",
                "TLP:RED never leaves a node; use AMBER+STRICT or lower",
            )
        if (
            match.min_age_s is not None
            and match.max_age_s is not None
            and match.min_age_s > match.max_age_s
        ):
            raise checker.fail(f"{path}.match.min_age_s", "is greater than max_age_s")
        areas[rule.id] = _rule_area(rule, path, checker, geography)
        if rule.action == "withhold" and not rule.transform.is_identity:
            raise checker.fail(f"{path}.transform", "a withholding rule cannot transform")
        if rule.action == "release" and rule.reason is not None:
            checker.warnings.append(
                f"{checker.where(path)}: rule {rule.id!r}: 'reason' is only used when withholding"
            )
        _check_marking(rule.transform.marking, f"{path}.transform.marking", checker)
        transform = rule.transform
        if transform.coarsen_km is not None and "remarks" not in transform.drop:
            checker.warnings.append(
                f"{checker.where(path)}: rule {rule.id!r} coarsens positions but keeps remarks, "
                "which may state exact positions in words"
            )
    return areas


def _rule_area(rule: Rule, path: str, checker: _Checker, geography: Geography) -> Any:
    match = rule.match
    if not match.has_area:
        return None
    shapes: list[Any] = []
    for number, zone_id in enumerate(match.area):
        if zone_id not in geography:
            known = ", ".join(z.id for z in geography)
            raise checker.fail(
                f"{path}.match.area[{number}]", f"unknown zone {zone_id!r} (known: {known})"
            )
        zone = geography.zone(zone_id)
        if match.area_test == "within" and not zone.is_area:
            raise checker.fail(
                f"{path}.match.area_test",
                f"'within' needs an area, and {zone_id} is a line; use 'intersects' to match "
                "geometries that cross it",
            )
        shapes.append(zone.geometry)
    if match.polygon:
        ring = list(match.polygon)
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        polygon = shapely.Polygon(ring)
        if len(set(match.polygon)) < 3 or not polygon.is_valid or polygon.area == 0.0:
            reason = shapely.is_valid_reason(polygon) if len(ring) >= 4 else "too few vertices"
            raise checker.fail(
                f"{path}.match.polygon", f"not a valid polygon ({reason}); give 3 or more vertices"
            )
        shapes.append(polygon)
    area = shapes[0] if len(shapes) == 1 else shapely.union_all(shapes)
    shapely.prepare(area)
    return area


def _check_marking(marking: MarkingChange | None, path: str, checker: _Checker) -> None:
    if marking is None:
        return
    if marking.tlp == "RED":
        raise checker.fail(f"{path}.tlp", "a released item cannot be marked TLP:RED")
    for name in ("releasable_to", "rerelease_to"):
        for number, party in enumerate(getattr(marking, name) or ()):
            _check_party(party, f"{path}.{name}[{number}]", checker)
    if marking.rerelease is False and (marking.rerelease_to or marking.max_hops):
        raise checker.fail(
            f"{path}.rerelease", "is false, yet rerelease_to or max_hops allow re-release"
        )


def _check_reciprocity(clause: Reciprocity, checker: _Checker) -> None:
    path = "reciprocity"
    action = clause.on_shortfall
    if action == "delay" and not clause.delay_s:
        raise checker.fail(f"{path}.delay_s", "on_shortfall = 'delay' needs delay_s > 0")
    if action == "coarsen" and clause.coarsen_km is None:
        raise checker.fail(f"{path}.coarsen_km", "on_shortfall = 'coarsen' needs coarsen_km")
    if action == "suspend" and not (clause.suspend_kind or clause.suspend_class):
        raise checker.fail(
            f"{path}.suspend_kind",
            "on_shortfall = 'suspend' needs the category: suspend_kind and/or suspend_class",
        )


# --- overlapping rules -------------------------------------------------------------------------


def _set_covers(wide: tuple[str, ...], narrow: tuple[str, ...]) -> bool:
    return not wide or (bool(narrow) and set(narrow) <= set(wide))


def _area_covers(wide: Match, wide_area: Any, narrow: Match, narrow_area: Any) -> bool:
    if not wide.has_area:
        return True
    if not narrow.has_area:
        return False
    if wide.area_test == "within" and narrow.area_test == "intersects":
        return bool(wide == narrow)
    return bool(wide_area.covers(narrow_area))


def match_covers(wide: Match, wide_area: Any, narrow: Match, narrow_area: Any) -> bool:
    """True when every observation ``narrow`` matches is also matched by ``wide``.

    It errs towards False (e.g. a platform type is not known to belong to a class), so it never
    claims a cover that does not hold.
    """
    if not all(
        _set_covers(getattr(wide, name), getattr(narrow, name))
        for name in ("kind", "platform_class", "platform_type", "origin")
    ):
        return False
    if wide.tlp_at_most is not None and (
        narrow.tlp_at_most is None or tlp_rank(narrow.tlp_at_most) > tlp_rank(wide.tlp_at_most)
    ):
        return False
    if wide.min_age_s is not None and (
        narrow.min_age_s is None or narrow.min_age_s < wide.min_age_s
    ):
        return False
    if wide.max_age_s is not None and (
        narrow.max_age_s is None or narrow.max_age_s > wide.max_age_s
    ):
        return False
    return _area_covers(wide, wide_area, narrow, narrow_area)


def _check_overlaps(agreement: Agreement, areas: Mapping[str, Any], checker: _Checker) -> None:
    paths = {rule.id: path for path, rule in _rule_paths(agreement)}
    pairs = {
        (direction.sender, recipient)
        for direction in agreement.direction
        for recipient in direction.to
    }
    warned: set[tuple[str, str]] = set()
    for sender, recipient in sorted(pairs):
        rules = agreement.rules(sender, recipient)
        for later_index, later in enumerate(rules):
            for earlier in rules[:later_index]:
                if not match_covers(earlier.match, areas[earlier.id], later.match, areas[later.id]):
                    continue
                same = match_covers(later.match, areas[later.id], earlier.match, areas[earlier.id])
                where_earlier = checker.where(paths[earlier.id])
                if earlier.action != later.action:
                    if same:
                        reason = (
                            f"rules {earlier.id!r} ({where_earlier}) and {later.id!r} match the "
                            f"same observations from {sender} to {recipient}, but one releases "
                            "and the other withholds"
                        )
                    else:
                        reason = (
                            f"rule {later.id!r} can never apply from {sender} to {recipient}: "
                            f"the earlier rule {earlier.id!r} ({where_earlier}) matches "
                            f"everything it matches and {earlier.action}s it"
                        )
                    raise checker.fail(paths[later.id], reason)
                if (earlier.id, later.id) not in warned:
                    warned.add((earlier.id, later.id))
                    checker.warnings.append(
                        f"{checker.where(paths[later.id])}: rule {later.id!r} never applies "
                        f"from {sender} to {recipient}; the earlier rule {earlier.id!r} "
                        "matches everything it matches"
                    )
                break


# --- signing -----------------------------------------------------------------------------------


def sign_agreement(
    parsed: ParsedAgreement,
    *,
    party: str,
    signer: Signer,
    public_key: bytes,
    now: dt.datetime,
) -> AgreementSignature:
    """``party``'s signature over the agreement, made with ``signer`` (whose key is
    ``public_key``). Raises :class:`AgreementError` if ``party`` is not a party."""
    if party not in parsed.agreement.parties:
        raise AgreementError(
            f"{party} is not a party to {parsed.id} "
            f"(parties: {', '.join(parsed.agreement.parties)})",
            file=parsed.source,
        )
    value = signer.sign(signed_bytes(parsed.agreement))
    return AgreementSignature(
        party=party,
        key=public_key_to_b64(public_key),
        signed_at=now.astimezone(dt.UTC),
        value=base64.b64encode(value).decode("ascii"),
    )


_FIRST_SIGNATURE = re.compile(r"^\s*\[\[\s*signature\s*\]\]\s*(#.*)?$", re.MULTILINE)


def render_signatures(signatures: Sequence[AgreementSignature]) -> str:
    """The ``[[signature]]`` tables of a file, in party order."""
    blocks = []
    for signature in sorted(signatures, key=_party_of):
        signed_at = signature.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        blocks.append(
            "[[signature]]\n"
            f"party = {_toml_string(signature.party)}\n"
            f"key = {_toml_string(signature.key)}\n"
            f"signed_at = {signed_at}\n"
            f"value = {_toml_string(signature.value)}\n"
        )
    return "\n".join(blocks)


def _toml_string(value: str) -> str:
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


def _party_of(signature: AgreementSignature) -> str:
    return signature.party


def with_signature(parsed: ParsedAgreement, signature: AgreementSignature) -> str:
    """The file text with ``signature`` added (replacing an earlier one by the same party).

    Signatures live at the end of the file, in ``[[signature]]`` tables; everything before the
    first of them is kept byte for byte, comments included.
    """
    if parsed.text is None:
        raise AgreementError("has no text to add a signature to", file=parsed.source)
    found = _FIRST_SIGNATURE.search(parsed.text)
    body = parsed.text[: found.start()] if found else parsed.text
    body = body.rstrip("\n") + "\n\n"
    others = [s for s in parsed.signatures if s.party != signature.party]
    text = body + render_signatures([*others, signature])
    again = tomllib.loads(text)
    again.pop("signature", None)
    _lists_for_strings(again)
    if msgspec.convert(again, Agreement) != parsed.agreement:
        raise AgreementError(
            "the [[signature]] tables must come last in the file; move them to the end",
            file=parsed.source,
        )
    return text


def render_agreement(
    agreement: Agreement, signatures: Sequence[AgreementSignature] = (), header: str = ""
) -> str:
    """Agreement TOML (without comments) for a document built in code."""
    body = _without_none(msgspec.to_builtins(agreement))
    for name in ("valid_from", "valid_until"):
        body[name] = getattr(agreement, name)
    text = header + tomli_w.dumps(body)
    if signatures:
        text += "\n" + render_signatures(signatures)
    return text


def _without_none(value: Any) -> Any:
    # TOML has no null: an unset optional field is simply absent.
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


# --- verifying ---------------------------------------------------------------------------------

SignatureState: TypeAlias = Literal["valid", "missing", "not_pinned", "wrong_key", "mismatch"]


class SignatureCheck(msgspec.Struct, frozen=True, kw_only=True):
    """How one party's signature stands against the key pinned for that party."""

    party: str
    state: SignatureState
    detail: str
    key: str | None = None
    """Fingerprint of the key the signature names."""
    signed_at: dt.datetime | None = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def check_signatures(
    parsed: ParsedAgreement, pinned_keys: Mapping[str, Keys]
) -> tuple[SignatureCheck, ...]:
    """One check per party to the agreement, in party order."""
    by_party = {s.party: s for s in parsed.signatures}
    message = signed_bytes(parsed.agreement)
    checks: list[SignatureCheck] = []
    for party in parsed.agreement.parties:
        signature = by_party.get(party)
        if signature is None:
            checks.append(SignatureCheck(party=party, state="missing", detail="not signed"))
            continue
        checks.append(_check_one(signature, pinned_keys.get(party), message))
    return tuple(checks)


def _check_one(
    signature: AgreementSignature, pinned: Keys | None, message: bytes
) -> SignatureCheck:
    party = signature.party
    try:
        key = public_key_from_b64(signature.key)
        value = base64.b64decode(signature.value, validate=True)
    except (VerificationError, binascii.Error, ValueError) as error:
        return SignatureCheck(party=party, state="mismatch", detail=f"unreadable: {error}")
    fingerprint = key_fingerprint(key)

    def result(state: SignatureState, detail: str) -> SignatureCheck:
        return SignatureCheck(
            party=party, state=state, detail=detail, key=fingerprint, signed_at=signature.signed_at
        )

    try:
        verify(key, value, message)
    except VerificationError:
        return result(
            "mismatch", "signature does not match this content (signed an earlier draft?)"
        )
    if pinned is None:
        return result("not_pinned", f"no key pinned for {party} (signed by {fingerprint})")
    if key not in key_list(pinned):
        return result(
            "wrong_key",
            f"signed by key {fingerprint}, but the key pinned for {party} is "
            f"{key_fingerprint(key_list(pinned)[0])}",
        )
    return result("valid", f"valid, key {fingerprint}")


@dataclass(frozen=True, eq=False)
class EnforcedAgreement:
    """An agreement signed by every party with the key pinned for it: the only kind enforced."""

    parsed: ParsedAgreement
    signatures: tuple[SignatureCheck, ...]

    @property
    def agreement(self) -> Agreement:
        return self.parsed.agreement

    @property
    def id(self) -> str:
        return self.parsed.id

    @property
    def version(self) -> int:
        return self.parsed.version

    @property
    def digest(self) -> str:
        return self.parsed.digest

    @property
    def parties(self) -> tuple[str, ...]:
        return self.parsed.agreement.parties

    def in_force(self, now: dt.datetime) -> bool:
        """Inside its validity window at ``now``."""
        return self.parsed.agreement.in_window(now)

    def audit_details(self) -> dict[str, object]:
        """What an ``agreement_change`` audit entry records about this version."""
        agreement = self.parsed.agreement
        return {
            "agreement": agreement.id,
            "version": agreement.version,
            "digest": self.digest,
            "parties": list(agreement.parties),
            "valid_from": agreement.valid_from.isoformat(),
            "valid_until": agreement.valid_until.isoformat(),
            "signers": {c.party: c.key for c in self.signatures},
        }


def verify_agreement(parsed: ParsedAgreement, pinned_keys: Mapping[str, Keys]) -> EnforcedAgreement:
    """Check every party signed with its pinned key; raises :class:`AgreementError` listing each
    party whose signature is missing or does not verify."""
    checks = check_signatures(parsed, pinned_keys)
    problems = [f"{c.party}: {c.detail}" for c in checks if not c.valid]
    if problems:
        raise AgreementError(
            "not signed by all parties with their pinned keys — " + "; ".join(problems),
            file=parsed.source,
            line=_line_for(parsed.lines, "signature"),
        )
    return EnforcedAgreement(parsed=parsed, signatures=checks)


# --- comparing versions ------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _changes(prefix: str, old: Any, new: Any) -> list[str]:
    before = _flatten(msgspec.to_builtins(old)) if old is not None else {}
    after = _flatten(msgspec.to_builtins(new)) if new is not None else {}
    return [
        f"{prefix}{key}: {_shown(before.get(key))} → {_shown(after.get(key))}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def diff_agreements(old: Agreement, new: Agreement) -> list[str]:
    """What changed from ``old`` to ``new``, one line per change, in words a liaison reads:
    header fields, the reciprocity clause, and per direction rules added, removed, changed or
    reordered (rules are matched by id)."""
    lines: list[str] = []
    for name in ("id", "version", "title", "parties", "valid_from", "valid_until"):
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            lines.append(f"{name}: {_shown(_plain(before))} → {_shown(_plain(after))}")
    if old.reciprocity is None and new.reciprocity is not None:
        lines.append("reciprocity clause added")
    elif old.reciprocity is not None and new.reciprocity is None:
        lines.append("reciprocity clause removed")
    else:
        lines.extend(_changes("reciprocity.", old.reciprocity, new.reciprocity))
    pairs = sorted(
        {(d.sender, r) for a in (old, new) for d in a.direction for r in d.to},
    )
    for sender, recipient in pairs:
        before = {rule.id: rule for rule in old.rules(sender, recipient)}
        after = {rule.id: rule for rule in new.rules(sender, recipient)}
        where = f"{sender} → {recipient}"
        for rule_id in before.keys() - after.keys():
            lines.append(f"{where}: rule {rule_id!r} removed")
        for rule_id in after:
            if rule_id not in before:
                lines.append(f"{where}: rule {rule_id!r} added ({after[rule_id].action})")
            else:
                lines.extend(
                    _changes(f"{where}: rule {rule_id!r} ", before[rule_id], after[rule_id])
                )
        kept_before = [rule_id for rule_id in before if rule_id in after]
        kept_after = [rule_id for rule_id in after if rule_id in before]
        if kept_before != kept_after:
            lines.append(f"{where}: rule order {', '.join(kept_before)} → {', '.join(kept_after)}")
    return lines


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
