"""Japan Joint Staff Office press releases as text → the foreign military activity they report.

A pure parser of one release's Japanese text (as extracted from the PDF: OCR-like line breaks,
full-width digits, era dates). It reads no files, builds no observations and stores nothing.

It follows a sighting through the sentences that continue it (その後、当該艦艇…), a table of its
days and positions (以下のとおり…), and the earlier sightings a release says are the same ships
(なお、…同一である), also when they are listed as ①…⑳, each with its own date, type, count and
strait. A correction (訂正) reports nothing new: what it says is the corrected reading of the
release it names (:class:`PressCorrection`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import msgspec

from kuroshio.catalogue import Catalogue, PlatformType, UnknownLabels

ReleaseKind = Literal["foreign_activity", "scramble_statistics", "other"]


class PressPosition(msgspec.Struct, frozen=True, kw_only=True):
    """Where a sighting was, as the release puts it: ``対馬（長崎県）の南西約110km``."""

    reference: str
    """The named place, e.g. ``対馬``."""
    bearing: str | None = None
    """Bearing from the place in Japanese compass words, e.g. ``南西``."""
    distance_km: int | None = None
    text: str


class PressTransit(msgspec.Struct, frozen=True, kw_only=True):
    """A strait passed: ``対馬海峡を北東進し、日本海へ向けて航行``."""

    gate: str
    """Gate id (``tsushima``, ``miyako`` …)."""
    heading: str | None = None
    """The movement word that follows the strait (``北東進``)."""
    toward: str | None = None
    """The sea it headed for after the strait (``日本海``)."""


class PressActivity(msgspec.Struct, frozen=True, kw_only=True):
    """One platform type of one reported sighting, followed through the release."""

    date: dt.date
    """First local day of the sighting."""
    end_date: dt.date | None = None
    """Last local day the release follows it to, when later than ``date``."""
    time_of_day: str | None = None
    """As written, normalised: ``午後4時頃``, ``正午頃``, ``午前から午後にかけて``."""
    platform: str | None
    """Catalogue code; None when the label is not in the catalogue."""
    platform_class: str | None = None
    label: str
    """The type as the release wrote it (line breaks removed)."""
    count: int | None
    """How many of this type; None when the release gives no number (aircraft)."""
    nationality: str
    presumed: bool = False
    """The release presumes the identification (推定中国無人機, （推定）)."""
    hull_numbers: tuple[str, ...] = ()
    straits: tuple[str, ...] = ()
    """Gate ids passed, in order: ``miyako``, ``yonaguni``, ``tsushima``, ``soya`` …"""
    directions: tuple[str, ...] = ()
    """Movement words in order: ``北東進``, ``南西進``, ``反転``, ``遊弋``, ``往復飛行`` …"""
    areas: tuple[str, ...] = ()
    """Seas named for it, in order: ``東シナ海``, ``太平洋``, ``日本海`` …"""
    position: PressPosition | None = None
    previously_reported: bool = False
    transits: tuple[PressTransit, ...] = ()
    """Each strait passed, with the way it went as the release words it."""

    @property
    def strait(self) -> str | None:
        """The first gate passed, if any."""
        return self.straits[0] if self.straits else None


class PressRelease(msgspec.Struct, frozen=True, kw_only=True):
    """What one release says about foreign military activity."""

    source_name: str
    release_date: dt.date | None
    title: str | None
    kind: ReleaseKind
    reports_foreign_activity: bool
    activities: tuple[PressActivity, ...] = ()
    """New sightings this release reports."""
    previously_reported: tuple[PressActivity, ...] = ()
    """Earlier sightings the release says are the same ships (なお、…同一である)."""
    unknown_labels: tuple[str, ...] = ()
    """Platform labels the catalogue did not know; their activities have ``platform`` None."""
    correction: PressCorrection | None = None
    """When the release corrects an earlier one (訂正): what it corrects, and how."""
    areas: tuple[str, ...] = ()
    """Seas the release names (title and narrative), in order."""


class PressCorrection(msgspec.Struct, frozen=True, kw_only=True):
    """A correction (訂正) of an earlier release: which one, and its activities as corrected."""

    release_date: dt.date | None = None
    """The date of the release it corrects, when it says (``令和８年６月１２日付``)."""
    title: str | None = None
    """The title of the release it corrects (``「中国機の動向について」``), or its own title
    without the word 訂正."""
    activities: tuple[PressActivity, ...] = ()
    """The corrected reading: the whole release again, or the corrected passages (正)."""
    previously_reported: tuple[PressActivity, ...] = ()
    wrong: tuple[PressActivity, ...] = ()
    """The passages it says were wrong (誤), as read, when it quotes them."""
    reissued: bool = False
    """True when the correction gives the whole release again, not passages of it."""


# --- geography words ------------------------------------------------------------------------

STRAIT_NAMES: Final[dict[str, str]] = {
    "対馬海峡": "tsushima",
    "朝鮮海峡": "tsushima",
    "大隅海峡": "osumi",
    "津軽海峡": "tsugaru",
    "宗谷海峡": "soya",
    "トカラ海峡": "tokara",
    "宮古海峡": "miyako",
    "バシー海峡": "bashi",
    "台湾海峡": "taiwan-strait",
    "間宮海峡": "tatar",
    "タタール海峡": "tatar",
    "根室海峡": "nemuro",
}
"""Straits the releases name outright → gate id."""

_PAIR_GATES: Final[dict[frozenset[str], str]] = {
    frozenset({"沖縄本島", "宮古島"}): "miyako",
    frozenset({"与那国島", "台湾"}): "yonaguni",
    frozenset({"与那国島", "西表島"}): "yonaguni-iriomote",
    frozenset({"宮古島", "多良間島"}): "miyako-ishigaki",
    frozenset({"多良間島", "石垣島"}): "miyako-ishigaki",
    frozenset({"宮古島", "石垣島"}): "miyako-ishigaki",
    frozenset({"奄美大島", "横当島"}): "tokara",
    frozenset({"屋久島", "奄美大島"}): "tokara-islands",
    frozenset({"屋久島", "口之島"}): "tokara-islands",
    frozenset({"種子島", "屋久島"}): "osumi",
    frozenset({"大隅半島", "種子島"}): "osumi",
    frozenset({"対馬", "壱岐"}): "tsushima",
    frozenset({"壱岐", "九州"}): "tsushima",
    frozenset({"沖永良部島", "与論島"}): "okinoerabu-yoron",
    frozenset({"沖縄本島", "与論島"}): "okinawa-yoron",
}
"""Passages the releases describe as "between A and B" → gate id."""

GEO_GATE_IDS: Final[dict[str, str]] = {
    "miyako": "gate-miyako",
    "yonaguni": "gate-yonaguni",
    "yonaguni-iriomote": "gate-yonaguni-iriomote",
    "miyako-ishigaki": "gate-miyako-ishigaki",
    "tokara": "gate-tokara",
    "tokara-islands": "gate-tokara-islands",
    "osumi": "gate-osumi",
    "bashi": "gate-bashi",
}
"""Gate ids here → the zone ids of :mod:`kuroshio.geo` that draw them, where one exists."""

SEA_AREAS: Final = (
    "東シナ海",
    "南シナ海",
    "太平洋",
    "日本海",
    "オホーツク海",
    "フィリピン海",
    "黄海",
    "渤海",
    "ベーリング海",
)

_ISLANDS: Final = sorted({island for pair in _PAIR_GATES for island in pair}, key=len, reverse=True)
_ISLAND = "|".join(map(re.escape, _ISLANDS))
_PAIR: Final = re.compile(
    rf"({_ISLAND})(?:\([^()]*\))?(?:と|・)({_ISLAND})(?:\([^()]*\))?(?:との|の)?間"
)
_NAMED_STRAIT: Final = re.compile(
    "(?:" + "|".join(map(re.escape, STRAIT_NAMES)) + ")(?!周辺|付近|近傍)"
)
"""A strait named, not the waters around it (津軽海峡周辺の接続水域 is not a passage)."""
_SEA: Final = re.compile("|".join(map(re.escape, SEA_AREAS)))
_DIRECTION: Final = re.compile(r"[北南東西]{1,3}進|反転|遊弋|往復飛行|変針")
_COMPASS: Final = (
    "北北東|東北東|東南東|南南東|南南西|西南西|西北西|北北西|北東|南東|南西|北西|北|東|南|西"
)
_POSITION: Final = re.compile(
    rf"(?P<ref>[^、。()は]{{1,12}}?)(?:\([^()]*\))?の(?P<bearing>{_COMPASS})"
    rf"(?:、)?(?:約)?(?P<km>\d+)km"
)

# --- dates ----------------------------------------------------------------------------------

_ERA_START: Final = {"令和": 2018, "平成": 1988}
_WEEKDAYS: Final = "月火水木金土日"
"""Monday first, as :meth:`datetime.date.weekday` counts."""
_ONE_DATE = (
    r"(?:(?P<{p}era>令和|平成)(?P<{p}eyear>\d{{1,2}}|元)年|(?P<{p}year>(?:19|20)\d\d)年)?"
    r"(?:(?P<{p}month>\d{{1,2}})月)?(?P<{p}day>\d{{1,2}})日(?!本|間)"
    r"(?:\((?P<{p}weekday>[月火水木金土日])\))?"
)
_DATE_SPAN: Final = re.compile(
    r"(?<!\d)"
    + _ONE_DATE.format(p="a")
    + r"(?:(?:から|~|〜|-)"
    + _ONE_DATE.format(p="b")
    + r"(?:にかけて|まで)?)?"
)
_RELEASE_DATE: Final = re.compile(
    r"(?:(?P<era>令和|平成)(?P<eyear>\d{1,2}|元)年|(?P<year>(?:19|20)\d\d)年)(?P<month>\d{1,2})月"
    r"(?P<day>\d{1,2})日(?!\(|現在)"
)
_FILE_DATE: Final = re.compile(r"(?<!\d)(20\d\d)(\d\d)(\d\d)(?!\d)")
_TIME: Final = re.compile(
    r"(?:午前|午後)から(?:午前|午後)にかけて|(?:午前|午後)\d{1,2}時(?:\d{1,2}分)?頃?|正午頃?|"
    r"(?:未明|早朝|深夜|夜間)"
)

# --- platforms ------------------------------------------------------------------------------

_ANCHOR: Final = re.compile(r"(?P<presumed>推定)?(?P<nation>中国|ロシア)(?:海軍|軍|空軍)?(?:の)?")
_LABEL_CHARS = r"A-Za-z0-9ァ-ヶー・\-/一-龥"
_NOUN = r"(?:艦|艇|船|フリゲート|コルベット|空母|機|ヘリコプター|ドローン)"
# Greedy, then backtracking to the last platform noun: the longest label that ends like one
# (イゴリ・ベロウソフ級潜水艦救難艦, not イゴリ・ベロウソフ級潜水艦), never running into a count.
_LABEL: Final = re.compile(
    rf"(?P<label>(?:(?![×x]?\d+[機隻])(?:えい|[{_LABEL_CHARS}]))+{_NOUN}(?:「[^」]{{1,10}}」)?)"
    rf"(?P<designation>\([A-Za-z0-9\-/]{{2,12}}\))?"
)
_BARE_AIRCRAFT: Final = re.compile(r"機(?=[×x]?\d+機)")
"""``推定ロシア機×２機``: aircraft named by nation alone, with a count."""
_TABLE_HULL: Final = re.compile(r"\((?P<hull>\d{2,4})\)")
"""A hull number in brackets after a ship, as tables write them (``（１０４）``)."""
_COUNT: Final = re.compile(r"[×x]?(?P<count>\d+)(?P<unit>機|隻)")
_PRESUMED: Final = re.compile(r"\((?:推定)\)")
_HULLS: Final = re.compile(r"\((?:艦番号)?(?P<hulls>(?:「\d+」(?:及び|、|,|・)?)+)\)")
_HULL: Final = re.compile(r"「(\d+)」")
_SEPARATOR: Final = re.compile(r"及び|並びに|、")
_NATION: Final = {"中国": "CHN", "ロシア": "RUS"}
_AIR_NOUNS: Final = ("機", "ヘリコプター", "ドローン")

_OWN_FORCES: Final = re.compile(r"^(?:防衛省・自衛隊は|これに対し|航空自衛隊は|自衛隊は)")
_SAME_AS_BEFORE: Final = re.compile(r"同一である|同一のもの|ものと同一")
_ANAPHORA: Final = re.compile(
    r"当該艦艇|これらの艦艇|当該艦|当該機|これらの航空機|同艦|同機|その後"
    r"|当該の?[^、。]{0,16}?(?:機|艦|艇|船)|これらの[^、。]{0,16}?(?:機|艦|艇|船)"
)
_REFERRING: Final = re.compile(r"当該|これら|同機|同艦|前記|上記|その後")
"""Words before a platform that point back at one already reported."""
_LISTED: Final = re.compile(r"以下のとおり|次のとおり|下記のとおり")
_CIRCLED: Final = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_ENUMERATED: Final = re.compile(f"[{_CIRCLED}]")
_LIST_END: Final = re.compile(r"防衛省・自衛隊は|これに対し|統合幕僚監部")
_HEADING_TO: Final = re.compile(
    "(?P<sea>"
    + "|".join(map(re.escape, SEA_AREAS))
    + r")(?:上空)?(?:へ向けて|へ|に向けて|に向かって|に抜け)"
)
_CORRECTION: Final = re.compile(r"訂正")
_TITLE_MARKED: Final = re.compile(r"について\s*[（(【\[][^）)】\]]{1,10}[）)】\]]$")
_CORRECTION_WORDS: Final = re.compile(r"[（(【\[]?(?:の?一部)?訂正(?:版|について)?[）)】\]]?")
_RELEASE_DATE_LOOSE: Final = re.compile(
    r"(?:(?P<era>令和|平成)(?P<eyear>\d{1,2}|元)年|(?P<year>(?:19|20)\d\d)年)?(?P<month>\d{1,2})月"
    r"(?P<day>\d{1,2})日"
)
_CORRECTED_RELEASE: Final = re.compile(r"「(?P<title>[^「」]{2,80}?について)」")
_WRONG: Final = re.compile(r"(?:\(|【|\[|〔|<|〈)(?:誤|訂正前)(?:\)|】|\]|〕|>|〉)|(?:誤|訂正前):")
_RIGHT: Final = re.compile(r"(?:\(|【|\[|〔|<|〈)(?:正|訂正後)(?:\)|】|\]|〕|>|〉)|(?:正|訂正後):")
"""The passages a correction quotes: as it was (誤, 訂正前) and as it should be (正, 訂正後)."""
_STATISTICS: Final = re.compile(r"緊急発進")
_FOREIGN_TITLE: Final = re.compile(r"(?:中国|ロシア).*(?:動向|飛行|通過|航行|活動)")


@dataclass
class _Text:
    """The release text with whitespace removed and NFKC applied character by character,
    remembering where each character came from, so that labels can be quoted as written."""

    raw: str
    norm: str
    origin: list[int]

    @classmethod
    def of(cls, raw: str) -> _Text:
        chars: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(raw):
            if char.isspace():
                continue
            if char in _CIRCLED:  # NFKC would make ① a plain 1; the numbering is kept
                chars.append(char)
                origin.append(index)
                continue
            for folded in unicodedata.normalize("NFKC", char):
                if not folded.isspace():
                    chars.append(folded)
                    origin.append(index)
        return cls(raw, "".join(chars), origin)

    def written(self, start: int, end: int) -> str:
        """The original characters behind ``norm[start:end]``, whitespace removed."""
        if start >= end:
            return ""
        span = self.raw[self.origin[start] : self.origin[end - 1] + 1]
        return "".join(span.split())


@dataclass
class _Item:
    label: str
    written: str
    nationality: str
    count: int | None
    hulls: tuple[str, ...]
    entry: PlatformType | None
    air: bool
    counted: bool = False
    """The release gave a number (×1機, 2隻), rather than the count being implied."""
    presumed: bool = False
    at: int = -1
    """Where the label starts in the normalised text."""
    loose: bool = False
    """Named without a nation before it (a table row, ``偵察／攻撃型無人機（ＴＢ－００１）``)."""

    @property
    def key(self) -> str:
        return self.entry.code if self.entry else self.label

    def narrowed(self, hulls: Sequence[str]) -> _Item:
        """The item for only the ships of the given hull numbers among its own."""
        kept = tuple(h for h in self.hulls if h in hulls)
        if not kept or kept == self.hulls:
            return self
        return replace(self, hulls=kept, count=len(kept))


@dataclass
class _Span:
    start: dt.date
    end: dt.date | None
    position: int


@dataclass
class _Episode:
    items: list[_Item]
    date: dt.date
    end: dt.date | None = None
    time_of_day: str | None = None
    straits: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    position: PressPosition | None = None
    transits: list[PressTransit] = field(default_factory=list)

    def follow(self, sentence: str, spans: Sequence[_Span]) -> None:
        for span in spans:
            last = span.end or span.start
            if last > self.date and (self.end is None or last > self.end):
                self.end = last
        _extend_unique(self.straits, straits_in(sentence))
        _extend_unique(self.areas, (m.group() for m in _SEA.finditer(sentence)))
        self.directions.extend(m.group() for m in _DIRECTION.finditer(sentence))
        known = {transit.gate for transit in self.transits}
        self.transits.extend(t for t in transits_in(sentence) if t.gate not in known)


@dataclass
class _Calendar:
    """Resolves partial dates (``17日（火）``, ``10月5日``) as a reader of the release would:
    from the year of the sentence, the last date read and the release date (a release reports
    the past), checked against the weekday the release gives."""

    released: dt.date | None
    year: int | None = None
    last: dt.date | None = None

    def __post_init__(self) -> None:
        self.new_sentence()

    def new_sentence(self) -> None:
        """An explicit year holds within its sentence only (なお、令和7年10月3日…)."""
        self.year = self.released.year if self.released is not None else None

    def resolve(
        self, year: int | None, month: int | None, day: int, weekday: str | None
    ) -> dt.date | None:
        latest = self.released or dt.date.max
        candidates = [
            value
            for value in self._candidates(year, month, day)
            if value <= latest or (value - latest).days <= 1
        ]
        matching = [
            value
            for value in candidates
            if weekday is None or _WEEKDAYS[value.weekday()] == weekday
        ]
        preferred = matching or candidates
        if not preferred:
            return None
        self.last = preferred[0]
        if year is not None:
            self.year = year
        return preferred[0]

    def _candidates(self, year: int | None, month: int | None, day: int) -> list[dt.date]:
        """Possible dates, most likely first."""
        if year is not None and month is not None:
            return _valid([(year, month, day)])
        if month is not None:
            base = self.year if self.year is not None else (self.last.year if self.last else None)
            if base is None:
                return []
            return _valid([(base, month, day), (base - 1, month, day), (base + 1, month, day)])
        anchor = self.last or self.released
        if anchor is None:
            return []
        # A bare day follows the narrative: on or after the last date read, else just before.
        this, following, previous = (_shift(anchor, months) for months in (0, 1, -1))
        ordered = [this, following, previous] if day >= anchor.day else [following, this, previous]
        if self.last is None:
            ordered = [this, previous, following]
        return _valid([(y, m, day) for y, m in ordered])


def _shift(value: dt.date, months: int) -> tuple[int, int]:
    index = value.year * 12 + value.month - 1 + months
    return index // 12, index % 12 + 1


def _valid(parts: Iterable[tuple[int, int, int]]) -> list[dt.date]:
    dates = []
    for year, month, day in parts:
        try:
            dates.append(dt.date(year, month, day))
        except ValueError:
            continue
    return dates


def _era_year(era: str | None, era_year: str | None, year: str | None) -> int | None:
    if era is not None and era_year is not None:
        return _ERA_START[era] + (1 if era_year == "元" else int(era_year))
    return int(year) if year is not None else None


def _extend_unique(target: list[str], values: Iterable[str]) -> None:
    for value in values:
        if value not in target:
            target.append(value)


# --- public ---------------------------------------------------------------------------------


def _strait_places(text: str) -> list[tuple[int, int, str]]:
    """(start, end, gate id) of every strait a (normalised) sentence names, in order."""
    found: list[tuple[int, int, str]] = []
    for match in _NAMED_STRAIT.finditer(text):
        found.append((match.start(), match.end(), STRAIT_NAMES[match.group()]))
    for match in _PAIR.finditer(text):
        gate = _PAIR_GATES.get(frozenset({match.group(1), match.group(2)}))
        if gate is not None:
            found.append((match.start(), match.end(), gate))
    return sorted(found)


def straits_in(text: str) -> list[str]:
    """Gate ids of the straits a (normalised) sentence names, in order of appearance."""
    ordered: list[str] = []
    _extend_unique(ordered, (gate for _, _, gate in _strait_places(text)))
    return ordered


def transits_in(text: str) -> list[PressTransit]:
    """Each strait a (normalised) sentence names, with the movement word after it and the sea
    it headed for, read up to the next strait named."""
    places = _strait_places(text)
    transits: list[PressTransit] = []
    for number, (_, end, gate) in enumerate(places):
        limit = places[number + 1][0] if number + 1 < len(places) else len(text)
        heading = _DIRECTION.search(text, end, limit)
        toward = _HEADING_TO.search(text, end, limit)
        if any(transit.gate == gate for transit in transits):
            continue
        transits.append(
            PressTransit(
                gate=gate,
                heading=heading.group() if heading and heading.group().endswith("進") else None,
                toward=toward["sea"] if toward else None,
            )
        )
    return transits


def parse_press_release(
    text: str, *, source_name: str, catalogue: Catalogue | None = None
) -> PressRelease:
    """The foreign military activity one JSO release reports.

    Never raises on odd text: what cannot be read is left out, and labels the catalogue does
    not know are listed in ``unknown_labels`` with their activities' ``platform`` None. A
    correction (訂正) gives no activity of its own: its reading is in ``correction``.
    """
    catalogue = catalogue or Catalogue.load()
    body = _Text.of(text)
    title = _title(text)
    released = _release_date(body.norm, source_name)
    statistics = bool(_STATISTICS.search(title or "")) or bool(_STATISTICS.search(body.norm[:40]))
    folded_title = unicodedata.normalize("NFKC", title or "")
    kind: ReleaseKind = (
        "scramble_statistics"
        if statistics
        else "foreign_activity"
        if title and _FOREIGN_TITLE.search(folded_title)
        else "other"
    )
    if statistics:
        # Tallies, and tables of earlier releases whose cells the text extraction has merged:
        # nothing here is a new sighting that could be read reliably.
        return PressRelease(
            source_name=source_name,
            release_date=released,
            title=title,
            kind=kind,
            reports_foreign_activity=True,
        )
    unknown = UnknownLabels()
    nation = _ANCHOR.search(folded_title)
    reader = _Reader(
        body,
        _Calendar(released),
        catalogue,
        unknown,
        source_name,
        nationality=_NATION[nation["nation"]] if nation else None,
    )
    correction = _correction(body, folded_title, reader) if _is_correction(body, title) else None
    if correction is None:
        reader.read()
    activities = tuple(a for episode in reader.episodes for a in _activities(episode))
    earlier = tuple(reader.earlier)
    if activities and kind == "other":
        kind = "foreign_activity"
    seas: list[str] = []
    _extend_unique(seas, (m.group() for m in _SEA.finditer(folded_title + body.norm)))
    return PressRelease(
        source_name=source_name,
        release_date=released,
        title=title,
        kind=kind,
        reports_foreign_activity=bool(activities or correction) or kind == "foreign_activity",
        activities=activities,
        previously_reported=earlier,
        unknown_labels=unknown.labels,
        correction=correction,
        areas=tuple(seas),
    )


# --- corrections ------------------------------------------------------------------------------


def _is_correction(body: _Text, title: str | None) -> bool:
    return bool(_CORRECTION.search(title or "") or _CORRECTION.search(body.norm[:300]))


def _correction(body: _Text, title: str, reader: _Reader) -> PressCorrection:
    """What a correction corrects and its corrected reading. A notice quoting the wrong (誤)
    and the right (正) passages is read passage by passage; else the release is given again
    whole and read as one."""
    norm = body.norm
    named = _CORRECTED_RELEASE.search(norm)
    corrected_title = named["title"] if named else _without_correction_words(title) or None
    corrected_date = None
    if named is not None:
        before = list(_RELEASE_DATE_LOOSE.finditer(norm, max(0, named.start() - 60), named.start()))
        after = _RELEASE_DATE_LOOSE.search(norm, named.end(), named.end() + 40)
        found = before[-1] if before else after
        if found is not None:
            corrected_date = _loose_date(found, reader.calendar)
    reader.default_date = corrected_date or reader.calendar.released
    wrong_marks = [m for m in _WRONG.finditer(norm) if _marks_passage(body, m)]
    right_marks = [m for m in _RIGHT.finditer(norm) if _marks_passage(body, m)]
    if not right_marks:
        reader.read()
        activities = tuple(a for episode in reader.episodes for a in _activities(episode))
        corrected = PressCorrection(
            release_date=corrected_date,
            title=corrected_title,
            activities=activities,
            previously_reported=tuple(reader.earlier),
            reissued=True,
        )
        reader.episodes.clear()
        reader.earlier.clear()
        return corrected
    marks = sorted([*wrong_marks, *right_marks], key=lambda m: m.start())
    wrong: list[PressActivity] = []
    right: list[PressActivity] = []
    for number, mark in enumerate(marks):
        end = marks[number + 1].start() if number + 1 < len(marks) else len(norm)
        closing = _LIST_END.search(norm, mark.end(), end)
        passage = _Reader(
            body,
            _Calendar(reader.calendar.released),
            reader.catalogue,
            UnknownLabels() if mark in wrong_marks else reader.unknown,
            reader.source_name,
            nationality=reader.nationality,
        )
        passage.default_date = reader.default_date
        passage.read(mark.end(), closing.start() if closing else end)
        read_out = [a for episode in passage.episodes for a in _activities(episode)]
        (wrong if mark in wrong_marks else right).extend(read_out)
    return PressCorrection(
        release_date=corrected_date,
        title=corrected_title,
        activities=tuple(right),
        wrong=tuple(wrong),
    )


def _marks_passage(body: _Text, mark: re.Match[str]) -> bool:
    """A bracketed mark (（誤）) anywhere; one with a colon (誤：) only where a line starts."""
    if not mark.group().endswith(":"):
        return True
    before = body.raw[: body.origin[mark.start()]]
    return not before.rsplit("\n", 1)[-1].strip()


def _without_correction_words(title: str) -> str:
    return _CORRECTION_WORDS.sub("", title).strip(" 　()（）【】[]")


def _loose_date(found: re.Match[str], calendar: _Calendar) -> dt.date | None:
    year = _era_year(found["era"], found["eyear"], found["year"])
    return calendar.resolve(year, int(found["month"]), int(found["day"]), None)


# --- reading --------------------------------------------------------------------------------


def _title(text: str) -> str | None:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for line in lines[:40]:
        if line.endswith("について") or line.endswith("について】"):
            return line
    for line in lines[:40]:
        if _TITLE_MARKED.search(line):
            return line  # 中国機の動向について（訂正）
    first = next((line for line in lines if line), None)
    return first


def _release_date(norm: str, source_name: str) -> dt.date | None:
    for match in _RELEASE_DATE.finditer(norm[:400]):
        year = _era_year(match["era"], match["eyear"], match["year"])
        try:
            return dt.date(year or 0, int(match["month"]), int(match["day"]))
        except ValueError:
            continue
    found = _FILE_DATE.search(source_name)
    if found:
        try:
            return dt.date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            return None
    return None


class _Reader:
    """Walks the narrative sentence by sentence, grouping them into sightings."""

    def __init__(
        self,
        body: _Text,
        calendar: _Calendar,
        catalogue: Catalogue,
        unknown: UnknownLabels,
        source_name: str,
        nationality: str | None = None,
    ) -> None:
        self.body = body
        self.calendar = calendar
        self.catalogue = catalogue
        self.unknown = unknown
        self.source_name = source_name
        self.nationality = nationality
        """The nation the release is about, for types named without one (a table row)."""
        self.episodes: list[_Episode] = []
        self.earlier: list[PressActivity] = []
        self.earlier_list: list[_Item] | None = None
        """The ships an announced list of earlier sightings (①…) is about, while it is read."""
        self.table_follows = False
        """The last sentence announced a table of the sighting's days (以下のとおり)."""
        self.default_date: dt.date | None = None
        """The date of a sighting whose sentence gives none and follows no other (a corrected
        passage quoted alone)."""

    def read(self, start: int | None = None, end: int | None = None) -> None:
        norm = self.body.norm
        passage = False
        if start is None:
            # Captions and the map legend follow the last full stop; the narrative ends there.
            # It starts after the heading (date, office, title), whose date is the release's.
            end = norm.rfind("。")
            first_stop = max(norm.find("。"), 0)
            heading = norm.find("について", 0, first_stop)
            dated = _RELEASE_DATE.search(norm, 0, first_stop)
            start = 0
            if heading >= 0:
                start = heading + len("について")
            elif dated is not None and _DATE_SPAN.search(norm, dated.end(), first_stop):
                # No title line, but the heading's date is followed by the first sighting's.
                start = dated.end()
        else:
            end = len(norm) if end is None else end
            passage = True  # a passage read on its own ends where it is told to
        while 0 <= start < end:
            stop = norm.find("。", start, end if passage else end + 1)
            if stop < 0:
                if self.earlier_list is None and not passage:
                    break
                stop = end  # a list of earlier sightings may end without a full stop
            self._sentence(start, stop)
            start = stop + 1
        if self.earlier_list is not None and not passage and end < len(norm):
            # The list announced by the last sentence, after the last full stop.
            self._sentence(end + 1, len(norm))

    def _sentence(self, start: int, stop: int) -> None:
        sentence = self.body.norm[start:stop]
        if not sentence or _OWN_FORCES.search(sentence):
            self.earlier_list = None
            return
        self.calendar.new_sentence()
        if self.earlier_list is not None:
            if _ENUMERATED.search(sentence):
                self._listed_earlier(start, stop)
                return
            self.earlier_list = None
        current = self.episodes[-1] if self.episodes else None
        if _SAME_AS_BEFORE.search(sentence):
            if current is not None:
                self._same_as_before(start, stop, current)
            return
        table, self.table_follows = self.table_follows, bool(_LISTED.search(sentence))
        spans = self._dates(sentence)
        items = self._items(start, stop)
        if table and current is not None:
            current.items.extend(items)
            current.follow(sentence, spans)
            return
        if items and current is not None and self._refers_back(sentence, start, items, current):
            current.follow(sentence, spans)
            return
        if items:
            first = spans[0].start if spans else (current.date if current else self.default_date)
            if first is None:
                return
            episode = _Episode(items=items, date=first)
            time = _TIME.search(sentence)
            episode.time_of_day = time.group() if time else None
            episode.position = _position(sentence)
            episode.follow(sentence, spans)
            self.episodes.append(episode)
            return
        if current is not None and _ANAPHORA.search(sentence):
            current.follow(sentence, spans)

    def _refers_back(
        self, sentence: str, start: int, items: Sequence[_Item], current: _Episode
    ) -> bool:
        """The sentence speaks again of the sighting being followed, not of a new one: it
        continues it (その後) and names only what it has, or it names them again without a
        number or a new hull, after 当該/これらの or without a nation (空母「遼寧」から…)."""
        if sentence.startswith("その後") and _within(items, current):
            return True
        if any(item.counted for item in items) or not _within(items, current):
            return False
        lead = sentence[: min(item.at for item in items) - start]
        return all(item.loose for item in items) or bool(_REFERRING.search(lead))

    def _dates(self, sentence: str) -> list[_Span]:
        spans: list[_Span] = []
        for match in _DATE_SPAN.finditer(sentence):
            first = self.calendar.resolve(
                _era_year(match["aera"], match["aeyear"], match["ayear"]),
                int(match["amonth"]) if match["amonth"] else None,
                int(match["aday"]),
                match["aweekday"],
            )
            if first is None:
                continue
            last = None
            if match["bday"]:
                last = self.calendar.resolve(
                    _era_year(match["bera"], match["beyear"], match["byear"]),
                    int(match["bmonth"]) if match["bmonth"] else None,
                    int(match["bday"]),
                    match["bweekday"],
                )
                if last is not None and last < first:
                    last = None
            spans.append(_Span(first, last, match.start()))
        return spans

    def _items(self, start: int, stop: int) -> list[_Item]:
        """The platforms a stretch of text names: after a nation (中国海軍…、…及び…), and
        types the catalogue knows named without one (table rows, a drone in a second sentence)."""
        norm = self.body.norm
        items: list[_Item] = []
        taken: list[tuple[int, int]] = []
        position = start
        while position < stop:
            anchor = _ANCHOR.search(norm, position, stop)
            if anchor is None:
                break
            nationality = _NATION[anchor["nation"]]
            self.nationality = nationality
            presumed = anchor["presumed"] is not None
            nation_word = (anchor["presumed"] or "") + anchor["nation"]
            cursor = anchor.end()
            listed: list[_Item] = []
            while cursor < stop:
                switch = _ANCHOR.match(norm, cursor, stop)
                if switch is not None and listed:
                    nationality = _NATION[switch["nation"]]
                    presumed = switch["presumed"] is not None
                    nation_word = (switch["presumed"] or "") + switch["nation"]
                    cursor = switch.end()
                item, cursor_after = self._item(cursor, stop, nationality, presumed, nation_word)
                if item is None:
                    break
                listed.append(item)
                cursor = cursor_after
                separator = _SEPARATOR.match(norm, cursor, stop)
                if separator is None:
                    break
                cursor = separator.end()
            items.extend(listed)
            taken.append((anchor.start(), cursor))
            position = max(cursor, anchor.end())
        items.extend(self._loose_items(start, stop, taken))
        items.sort(key=lambda item: item.at)
        return [item for item in items if not _is_reference(item)]

    def _loose_items(self, start: int, stop: int, taken: Sequence[tuple[int, int]]) -> list[_Item]:
        """Types the catalogue knows, named without a nation before them."""
        nationality = self.nationality
        if nationality is None:
            return []
        found: list[_Item] = []
        norm = self.body.norm
        cursor = start
        while cursor < stop:
            inside = next((end for begin, end in taken if begin <= cursor < end), None)
            if inside is not None:
                cursor = inside
                continue
            if _LABEL.match(norm, cursor, stop) is None:
                cursor += 1
                continue
            unknown = UnknownLabels()  # a stretch that names nothing is not an unknown type
            item, after = self._item(cursor, stop, nationality, False, None, unknown=unknown)
            if (
                item is not None
                and item.entry is not None
                and (item.entry.precision != "class" or item.counted)
            ):
                found.append(replace(item, loose=True))
                cursor = after
            else:
                cursor += 1
        return found

    def _item(
        self,
        cursor: int,
        stop: int,
        nationality: str,
        presumed: bool,
        nation_word: str | None,
        *,
        unknown: UnknownLabels | None = None,
    ) -> tuple[_Item | None, int]:
        norm = self.body.norm
        begin = cursor
        match = _LABEL.match(norm, cursor, stop)
        if match is not None:
            label = match["label"] + (match["designation"] or "")
            written = self.body.written(match.start(), match.end())
            cursor = match.end()
            air = match["label"].endswith(_AIR_NOUNS)
        elif nation_word is not None and (bare := _BARE_AIRCRAFT.match(norm, cursor, stop)):
            # 推定ロシア機×２機: aircraft told only by whose they are (presumed to be).
            label = written = nation_word + "機"
            cursor = bare.end()
            air = True
        else:
            return None, cursor
        count: int | None = None
        # （推定） may stand before or after the count: 無人機（推定）×1機, 無人機×1機（推定）.
        if marker := _PRESUMED.match(norm, cursor, stop):
            cursor, presumed = marker.end(), True
        counted = _COUNT.match(norm, cursor, stop)
        if counted is not None:
            count = int(counted["count"])
            air = counted["unit"] == "機"
            cursor = counted.end()
        if marker := _PRESUMED.match(norm, cursor, stop):
            cursor, presumed = marker.end(), True
        hulls: list[str] = []
        while (group := _HULLS.match(norm, cursor, stop)) is not None:
            hulls.extend(_HULL.findall(group["hulls"]))
            cursor = group.end()
        if match is not None and match["designation"] and not hulls and not air:
            # A table writes the hull number in plain brackets: レンハイ級ミサイル駆逐艦（１０４）.
            table_hull = _TABLE_HULL.fullmatch(norm, match.end("label"), match.end())
            if table_hull is not None:
                hulls.append(table_hull["hull"])
                label = match["label"]
        entry = self.catalogue.lookup(label, nationality=nationality)
        if entry is not None:
            air = entry.domain == "air"
        explicit = count is not None
        if count is None and hulls:
            count = len(hulls)
        if count is None and not air:
            # A ship named without a number is one ship; aircraft are always counted (×N機).
            count = 1
        item = _Item(
            label, written, nationality, count, tuple(hulls), entry, air, explicit, presumed, begin
        )
        if entry is None and not _is_reference(item):
            (self.unknown if unknown is None else unknown).record(
                written or label, self.source_name
            )
        return item, cursor

    # --- earlier sightings ------------------------------------------------------------------

    def _same_as_before(self, start: int, stop: int, episode: _Episode) -> None:
        """なお、…同一である: the earlier sightings of the same ships, in the sentence itself
        or in a list (①…) that follows it."""
        sentence = self.body.norm[start:stop]
        listed = _ENUMERATED.search(sentence)
        lead_end = listed.start() if listed else len(sentence)
        subject = self._earlier(sentence[:lead_end], episode)
        if _LISTED.search(sentence[:lead_end]) or listed:
            self.earlier_list = subject
            if listed is not None:
                self._listed_earlier(start + lead_end, stop)

    def _earlier(self, sentence: str, episode: _Episode) -> list[_Item]:
        """Earlier sightings of the same ships: each date in the sentence opens a clause whose
        straits belong to it; hull numbers named before a date narrow the subject to those
        ships. Returns the subject as the sentence leaves it."""
        spans = self._dates(sentence)
        subject = list(episode.items)
        lead = sentence[: spans[0].position] if spans else sentence
        subject = _named_by_hull(lead, episode.items) or subject
        for index, span in enumerate(spans):
            if index:
                lead = sentence[spans[index - 1].position : span.position]
                subject = _named_by_hull(lead, episode.items) or subject
            end = spans[index + 1].position if index + 1 < len(spans) else len(sentence)
            self._earlier_clause(sentence[span.position : end], span, subject)
        return subject

    def _listed_earlier(self, start: int, stop: int) -> None:
        """Items ①…⑳ of a list of earlier sightings, each with its own date, and the type,
        count and hulls it names (else those of the ships the list is about)."""
        norm = self.body.norm
        subject = self.earlier_list or []
        marks = [m.start() for m in _ENUMERATED.finditer(norm, start, stop)]
        for number, mark in enumerate(marks):
            end = marks[number + 1] if number + 1 < len(marks) else stop
            closing = _LIST_END.search(norm, mark, end)
            if closing is not None:
                end = closing.start()
                self.earlier_list = None
            self.calendar.new_sentence()
            text = norm[mark + 1 : end]
            spans = self._dates(text)
            named = self._items(mark + 1, end)
            who = _listed_subject(named, subject) if named else subject
            for index, span in enumerate(spans):
                until = spans[index + 1].position if index + 1 < len(spans) else len(text)
                self._earlier_clause(text[span.position : until], span, who)
            if closing is not None:
                break

    def _earlier_clause(self, clause: str, span: _Span, subject: Sequence[_Item]) -> None:
        straits = straits_in(clause)
        for item in subject:
            activity = _activity(
                item,
                date=span.start,
                end=span.end,
                straits=straits,
                directions=[m.group() for m in _DIRECTION.finditer(clause)],
                areas=[m.group() for m in _SEA.finditer(clause)],
                previously=True,
            )
            self._add_earlier(activity)

    def _add_earlier(self, activity: PressActivity) -> None:
        """One earlier sighting per type, date and gate; ships named apart (by hull) join."""
        key = (activity.date, activity.platform, activity.strait)
        for index, known in enumerate(self.earlier):
            if (known.date, known.platform, known.strait) != key:
                continue
            more = [h for h in activity.hull_numbers if h not in known.hull_numbers]
            if known.hull_numbers and more:
                self.earlier[index] = msgspec.structs.replace(
                    known,
                    hull_numbers=(*known.hull_numbers, *more),
                    count=(known.count or 0) + len(more),
                )
            return
        self.earlier.append(activity)


def _named_by_hull(lead: str, items: Sequence[_Item]) -> list[_Item]:
    """The items whose hull numbers a stretch of text names, each narrowed to those ships."""
    named = set(_HULL.findall(lead))
    if not named:
        return []
    found = [item.narrowed(tuple(named)) for item in items if named & set(item.hulls)]
    return list({id(item): item for item in found}.values())


def _listed_subject(named: Sequence[_Item], subject: Sequence[_Item]) -> list[_Item]:
    """What one listed earlier sighting is about: the ships it names, as the list's subject
    has them when it names them by hull or without a number, else as it names them."""
    chosen: list[_Item] = []
    for item in named:
        by_hull = [s.narrowed(item.hulls) for s in subject if set(item.hulls) & set(s.hulls)]
        same_type = [s for s in subject if s.key == item.key]
        if by_hull:
            chosen.extend(by_hull)
        elif same_type and not item.counted:
            chosen.extend(same_type)
        else:
            chosen.append(item)
    return chosen


def _is_reference(item: _Item) -> bool:
    """``ロシアの爆撃機が`` or ``中国海軍艦艇が`` inside a sentence refer back to what was
    already counted: a bare class word with no number and no hull is not a new platform."""
    return (
        item.entry is not None
        and item.entry.precision == "class"
        and not item.counted
        and not item.hulls
    )


def _within(items: Sequence[_Item], episode: _Episode) -> bool:
    """Every item is one the sighting already has (same type, and its hulls among them)."""
    known = {(item.key, hull) for item in episode.items for hull in item.hulls}
    codes = {item.key for item in episode.items}
    return all(
        all((item.key, hull) in known for hull in item.hulls) if item.hulls else item.key in codes
        for item in items
    )


def _position(sentence: str) -> PressPosition | None:
    match = _POSITION.search(sentence)
    if match is None:
        return None
    reference = match["ref"].strip()
    return PressPosition(
        reference=reference,
        bearing=match["bearing"],
        distance_km=int(match["km"]),
        text=sentence[match.start("ref") : match.end()],
    )


def _activity(
    item: _Item,
    *,
    date: dt.date,
    end: dt.date | None,
    straits: Sequence[str],
    directions: Sequence[str],
    areas: Sequence[str],
    previously: bool,
    time_of_day: str | None = None,
    position: PressPosition | None = None,
    transits: Sequence[PressTransit] = (),
) -> PressActivity:
    return PressActivity(
        date=date,
        end_date=end if end is not None and end > date else None,
        time_of_day=time_of_day,
        platform=item.entry.code if item.entry else None,
        platform_class=item.entry.platform_class if item.entry else None,
        label=item.written or item.label,
        count=item.count,
        nationality=item.nationality,
        presumed=item.presumed,
        hull_numbers=item.hulls,
        straits=tuple(straits),
        directions=tuple(directions),
        areas=tuple(areas),
        position=position,
        previously_reported=previously,
        transits=tuple(transits),
    )


def _activities(episode: _Episode) -> list[PressActivity]:
    merged: dict[tuple[str, str], _Item] = {}
    for item in episode.items:
        key = (item.key, item.nationality)
        if key in merged:
            known = merged[key]
            more = [hull for hull in item.hulls if hull not in known.hulls]
            if known.hulls and item.hulls:
                # Ships told by hull number are counted once however often they are named.
                count = (known.count or 0) + len(more)
            else:
                count = (known.count or 0) + (item.count or 0)
            merged[key] = replace(
                known,
                count=count or None,
                hulls=(*known.hulls, *more),
                counted=known.counted or item.counted,
                presumed=known.presumed or item.presumed,
            )
        else:
            merged[key] = item
    return [
        _activity(
            item,
            date=episode.date,
            end=episode.end,
            straits=episode.straits,
            directions=episode.directions,
            areas=episode.areas,
            previously=False,
            time_of_day=episode.time_of_day,
            position=episode.position,
            transits=episode.transits,
        )
        for item in merged.values()
    ]
