"""The platform catalogue: types, their classes, names, symbols and every label that names them.

Loads ``platforms.toml`` (package data) into :class:`PlatformType` records and resolves a
source's label to one of them. It does not guess: an unknown or ambiguous label gives None
(or :class:`UnknownPlatformLabel`), and callers report it.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any, Final, Literal, get_args

import msgspec

from kuroshio.catalogue.labels import label_key, parenthesised_parts, without_role_word
from kuroshio.errors import CatalogueError, UnknownPlatformLabel

PlatformClass = Literal[
    "fighter",
    "bomber",
    "aew",
    "asw",
    "ew",
    "recon",
    "uav",
    "helicopter",
    "tanker",
    "transport",
    "other_aircraft",
    "balloon",
    "carrier",
    "cruiser",
    "destroyer",
    "frigate",
    "corvette",
    "amphibious",
    "replenishment",
    "survey",
    "intelligence",
    "submarine",
    "coast_guard",
    "other_vessel",
]
PLATFORM_CLASSES: Final[tuple[str, ...]] = get_args(PlatformClass)

Domain = Literal["air", "sea"]
Precision = Literal["type", "family", "class"]
"""``type``: one type; ``family``: several types (Luyang, generation not stated);
``class``: only the class is known (推定中国無人機)."""

StandardIdentity = Literal[
    "pending", "unknown", "assumed_friend", "friend", "neutral", "suspect", "hostile"
]
_IDENTITY_DIGIT: Final[dict[str, str]] = {
    "pending": "0",
    "unknown": "1",
    "assumed_friend": "2",
    "friend": "3",
    "neutral": "4",
    "suspect": "5",
    "hostile": "6",
}

# MIL-STD-2525D symbols. A SIDC is 20 digits: version (10), context (0 reality), standard
# identity (6 hostile, 5 suspect …), symbol set, status (0 present), HQ/task force/dummy (0),
# echelon/mobility (00), entity + entity type + entity subtype (6), sector 1 and sector 2
# modifiers (2 + 2). Entity codes as tabulated by the Joint Military Symbology Markup Language
# (Esri joint-military-symbology-xml, which transcribes 2525D):
#   air (01): 110100 military fixed wing; subtypes 02 attack/strike, 03 bomber, 04 fighter,
#     05 fighter/bomber, 07 cargo, 08 electronic combat/jammer, 09 tanker, 11 reconnaissance,
#     13 utility, 16 airborne early warning, 18 antisubmarine warfare, 21 electronic support,
#     28 photographic reconnaissance, 31 passenger, 33 electronic attack; 110200 rotary wing;
#     110300 unmanned aircraft; 110500 lighter than air (balloons). Modifier 1: 01 attack/strike, 18
#     reconnaissance, 22 ASW; modifier 2: 01 heavy, 05 drogue-only (tankers).
#   sea surface (30): 120100 carrier; 120202 cruiser, 120203 destroyer, 120204 frigate,
#     120205 corvette; 120300 amphibious warfare ship (04 multipurpose assault, 06 transport
#     dock, 07 landing ship); 130100 auxiliary (01 ammunition, 04 intelligence collector,
#     06 survey, 09 fast combat support, 10 replenishment oiler, 12 submarine tender, 13 ocean
#     tug); 140300 law enforcement vessel (coast guard). Modifier 1: 03 ASW, 15 guided missile.
#   sea subsurface (35): 110100 submarine. Modifier 2: 01 air-independent propulsion,
#     02 diesel-electric, 06 nuclear powered.
# The class default below applies unless an entry names its own entity or modifiers.
CLASS_SYMBOLS: Final[dict[str, tuple[Domain, str, str]]] = {
    "fighter": ("air", "01", "110104"),
    "bomber": ("air", "01", "110103"),
    "aew": ("air", "01", "110116"),
    "asw": ("air", "01", "110118"),
    "ew": ("air", "01", "110108"),
    "recon": ("air", "01", "110111"),
    "uav": ("air", "01", "110300"),
    "helicopter": ("air", "01", "110200"),
    "tanker": ("air", "01", "110109"),
    "transport": ("air", "01", "110107"),
    "other_aircraft": ("air", "01", "110100"),
    "balloon": ("air", "01", "110500"),
    "carrier": ("sea", "30", "120100"),
    "cruiser": ("sea", "30", "120202"),
    "destroyer": ("sea", "30", "120203"),
    "frigate": ("sea", "30", "120204"),
    "corvette": ("sea", "30", "120205"),
    "amphibious": ("sea", "30", "120300"),
    "replenishment": ("sea", "30", "130110"),
    "survey": ("sea", "30", "130106"),
    "intelligence": ("sea", "30", "130104"),
    "submarine": ("sea", "35", "110100"),
    "coast_guard": ("sea", "30", "140300"),
    "other_vessel": ("sea", "30", "130100"),
}


class PlatformType(msgspec.Struct, frozen=True, kw_only=True):
    """One platform type (or family, or bare class) with its names and symbol."""

    code: str
    """Stable identifier, e.g. ``J-16``, ``Type 052D``, ``Udaloy I``, ``unidentified UAV``."""
    platform_class: PlatformClass
    domain: Domain
    precision: Precision = "type"
    nationality: str | None = None
    """ISO 3166 alpha-3; None for class-only entries, whose label names no owner."""
    service: str | None = None
    name_en: str
    name_zh: str
    name_ja: str
    aliases: tuple[str, ...] = ()
    symbol_set: str
    symbol_entity: str
    modifier_1: str = "00"
    modifier_2: str = "00"
    note: str | None = None

    @property
    def sidc(self) -> str:
        """MIL-STD-2525D 20-digit symbol identification code, hostile, present."""
        return self.sidc_for("hostile")

    def sidc_for(self, identity: StandardIdentity = "hostile") -> str:
        """The 20-digit SIDC for this type seen with the given standard identity.

        Version 10, reality context, status present, no HQ/task-force/echelon amplifiers.
        """
        return symbol_code(
            self.symbol_set, self.symbol_entity, identity, self.modifier_1, self.modifier_2
        )


Context = Literal["reality", "exercise", "simulation"]
_CONTEXT_DIGIT: Final[dict[str, str]] = {"reality": "0", "exercise": "1", "simulation": "2"}
UNSPECIFIED_ENTITY: Final = "000000"
"""A symbol set's frame without an entity icon: what is known is the domain, not the type."""


def symbol_code(
    symbol_set: str,
    entity: str,
    identity: StandardIdentity = "hostile",
    modifier_1: str = "00",
    modifier_2: str = "00",
    *,
    context: Context = "reality",
) -> str:
    """A 20-digit MIL-STD-2525D SIDC: version 10, status present, no HQ/task-force/echelon.

    ``symbol_set`` is two digits (01 air, 30 sea surface, 35 sea subsurface), ``entity`` six.
    """
    version, status, headquarters, echelon = "10", "0", "0", "00"
    return (
        f"{version}{_CONTEXT_DIGIT[context]}{_IDENTITY_DIGIT[identity]}{symbol_set}{status}"
        f"{headquarters}{echelon}{entity}{modifier_1}{modifier_2}"
    )


def class_symbol_code(
    platform_class: str, identity: StandardIdentity = "hostile", *, context: Context = "reality"
) -> str:
    """The SIDC of a bare class (its default entity, :data:`CLASS_SYMBOLS`)."""
    _, symbol_set, entity = CLASS_SYMBOLS[platform_class]
    return symbol_code(symbol_set, entity, identity, context=context)


class UnknownLabels:
    """Labels that did not resolve, each with where it was read (for a report, not a guess)."""

    def __init__(self) -> None:
        self._seen: dict[str, list[str]] = {}

    def record(self, label: str, location: str | None = None) -> None:
        self._seen.setdefault(label, [])
        if location is not None:
            self._seen[label].append(location)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._seen)

    def locations(self, label: str) -> tuple[str, ...]:
        return tuple(self._seen.get(label, ()))

    def __bool__(self) -> bool:
        return bool(self._seen)

    def __len__(self) -> int:
        return len(self._seen)

    def __iter__(self) -> Iterator[str]:
        return iter(self._seen)


_PRECISION_RANK: Final[dict[str, int]] = {"type": 2, "family": 1, "class": 0}


class Catalogue:
    """Platform types by code, and by every label the sources use for them."""

    def __init__(self, entries: Iterable[PlatformType], *, source: str = "catalogue") -> None:
        self._by_code: dict[str, PlatformType] = {}
        self._by_key: dict[str, list[PlatformType]] = {}
        for entry in entries:
            if entry.code in self._by_code:
                raise CatalogueError(f"{source}: {entry.code}", "duplicate code")
            self._by_code[entry.code] = entry
            for name in (entry.code, *entry.aliases):
                key = label_key(name)
                if not key:
                    raise CatalogueError(f"{source}: {entry.code}", f"alias {name!r} is empty")
                bucket = self._by_key.setdefault(key, [])
                if entry not in bucket:
                    for other in bucket:
                        # Two owners of one key must differ in nationality, so that a
                        # nationality always decides between them.
                        if other.nationality == entry.nationality:
                            raise CatalogueError(
                                f"{source}: {entry.code}", f"alias {name!r} also names {other.code}"
                            )
                    bucket.append(entry)

    # --- loading ----------------------------------------------------------------------------

    @classmethod
    def load(cls) -> Catalogue:
        """The catalogue shipped with the package (parsed once per process)."""
        return _packaged()

    @classmethod
    def parse(cls, text: str, *, source: str = "platforms.toml") -> Catalogue:
        """A catalogue from TOML text; raises :class:`CatalogueError` naming the bad entry."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise CatalogueError(source, f"not TOML: {error}") from error
        raw_entries = document.get("platform")
        if not isinstance(raw_entries, list):
            raise CatalogueError(source, "no [[platform]] entries")
        return cls(
            (_entry(raw, f"{source}: platform[{index}]") for index, raw in enumerate(raw_entries)),
            source=source,
        )

    # --- access -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[PlatformType]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> PlatformType | None:
        """The entry with this code, or None."""
        return self._by_code.get(code)

    def classes(self) -> tuple[str, ...]:
        """The classes that have entries, in vocabulary order."""
        used = {entry.platform_class for entry in self}
        return tuple(name for name in PLATFORM_CLASSES if name in used)

    def of_class(self, platform_class: str) -> tuple[PlatformType, ...]:
        return tuple(entry for entry in self if entry.platform_class == platform_class)

    # --- label resolution -------------------------------------------------------------------

    def lookup(self, label: str, *, nationality: str | None = None) -> PlatformType | None:
        """The type a label names, or None when it is unknown or ambiguous.

        ``nationality`` (alpha-3) decides between types that share a label (``Su-30``) and
        rules out a type of another nation. Normalisation: see :func:`label_key`; then the
        label's parenthesised part (``偵察型無人機（BZK-005）``), then the label without a
        trailing role word (``Y-9輸送機`` → the Y-9 family).
        """
        found = self._candidates(label, nationality)
        return found[0] if len(found) == 1 else None

    def resolve(
        self, label: str, *, nationality: str | None = None, location: str | None = None
    ) -> PlatformType:
        """Like :meth:`lookup`, but raises :class:`UnknownPlatformLabel` with the reason."""
        found = self._candidates(label, nationality)
        if len(found) == 1:
            return found[0]
        if found:
            codes = [entry.code for entry in found]
            raise UnknownPlatformLabel(label, "ambiguous", candidates=codes, location=location)
        raise UnknownPlatformLabel(label, "unknown", location=location)

    def lookup_or_report(
        self,
        label: str,
        unknown: UnknownLabels,
        *,
        nationality: str | None = None,
        location: str | None = None,
    ) -> PlatformType | None:
        """:meth:`lookup`, recording an unresolved label in ``unknown``."""
        found = self.lookup(label, nationality=nationality)
        if found is None:
            unknown.record(label, location)
        return found

    def _candidates(self, label: str, nationality: str | None) -> tuple[PlatformType, ...]:
        direct = self._matching(label, nationality)
        if direct:
            return direct
        outer, inner = parenthesised_parts(label)
        if inner is not None and outer:
            # A role with the designation in brackets names the role's variant:
            # 情報収集機（Y-9） is the Y-9 ELINT aircraft, not any Y-9.
            combined = self._matching(inner + outer, nationality)
            if combined:
                return combined
        if inner is not None:
            inside = self._matching(inner, nationality)
            outside = self._matching(outer, nationality) if outer else ()
            # The more precise reading wins: 偵察型無人機（BZK-005） is a BZK-005.
            if inside and (not outside or _rank(inside) > _rank(outside)):
                return inside
            if outside:
                return outside
        for shorter in without_role_word(outer if inner is not None else label):
            found = self._matching(shorter, nationality)
            if found:
                return found
        return ()

    def _matching(self, label: str, nationality: str | None) -> tuple[PlatformType, ...]:
        bucket = self._by_key.get(label_key(label), ())
        if nationality is None:
            return tuple(bucket)
        return tuple(e for e in bucket if e.nationality in (None, nationality))


def _rank(entries: Sequence[PlatformType]) -> int:
    return max(_PRECISION_RANK[entry.precision] for entry in entries)


_FIELDS: Final = {
    "code",
    "class",
    "precision",
    "nationality",
    "service",
    "symbol",
    "symbol_set",
    "modifier_1",
    "modifier_2",
    "en",
    "zh",
    "ja",
    "aliases",
    "note",
}


def _text(raw: Mapping[str, Any], name: str, location: str, *, required: bool = True) -> str | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(location, f"{name!r} must be a non-empty string")
    return value


def _digits(value: str | None, width: int, name: str, location: str) -> str | None:
    if value is not None and (len(value) != width or not value.isdigit()):
        raise CatalogueError(location, f"{name!r} must be {width} digits, not {value!r}")
    return value


def _entry(raw: object, location: str) -> PlatformType:
    if not isinstance(raw, dict):
        raise CatalogueError(location, "an entry must be a table")
    unknown_fields = set(raw) - _FIELDS
    if unknown_fields:
        raise CatalogueError(location, f"unknown fields {sorted(unknown_fields)}")
    code = _text(raw, "code", location)
    assert code is not None
    location = f"{location} ({code})"
    platform_class = _text(raw, "class", location)
    if platform_class not in CLASS_SYMBOLS:
        raise CatalogueError(location, f"class {platform_class!r} is not in the vocabulary")
    precision = raw.get("precision", "type")
    if precision not in _PRECISION_RANK:
        raise CatalogueError(location, f"precision {precision!r} is not type/family/class")
    nationality = _text(raw, "nationality", location, required=False)
    if nationality is None and precision != "class":
        raise CatalogueError(location, "only class-only entries may omit the nationality")
    if nationality is not None and (len(nationality) != 3 or not nationality.isupper()):
        raise CatalogueError(location, f"nationality {nationality!r} is not ISO alpha-3")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise CatalogueError(location, "'aliases' must be a list of non-empty strings")
    domain, default_set, default_entity = CLASS_SYMBOLS[platform_class]
    symbol_set = _digits(
        _text(raw, "symbol_set", location, required=False), 2, "symbol_set", location
    )
    entity = _digits(_text(raw, "symbol", location, required=False), 6, "symbol", location)
    modifier_1 = _digits(
        _text(raw, "modifier_1", location, required=False), 2, "modifier_1", location
    )
    modifier_2 = _digits(
        _text(raw, "modifier_2", location, required=False), 2, "modifier_2", location
    )
    return PlatformType(
        code=code,
        platform_class=platform_class,  # type: ignore[arg-type]  # checked against the vocabulary
        domain=domain,
        precision=precision,
        nationality=nationality,
        service=_text(raw, "service", location, required=False),
        name_en=_text(raw, "en", location) or "",
        name_zh=_text(raw, "zh", location) or "",
        name_ja=_text(raw, "ja", location) or "",
        aliases=tuple(dict.fromkeys(alias.strip() for alias in aliases)),
        symbol_set=symbol_set or default_set,
        symbol_entity=entity or default_entity,
        modifier_1=modifier_1 or "00",
        modifier_2=modifier_2 or "00",
        note=_text(raw, "note", location, required=False),
    )


@functools.cache
def _packaged() -> Catalogue:
    text = resources.files("kuroshio.catalogue").joinpath("platforms.toml").read_text("utf-8")
    return Catalogue.parse(text, source="kuroshio/catalogue/platforms.toml")


def lookup(label: str, *, nationality: str | None = None) -> PlatformType | None:
    """The packaged catalogue's type for a label (see :meth:`Catalogue.lookup`)."""
    return _packaged().lookup(label, nationality=nationality)
