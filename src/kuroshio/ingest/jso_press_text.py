"""Japan Joint Staff Office press releases as text → the foreign military activity they report.

A pure parser of one release's Japanese text (as extracted from the PDF: OCR-like line breaks,
full-width digits, era dates). It reads no files, builds no observations and stores nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
_NAMED_STRAIT: Final = re.compile("|".join(map(re.escape, STRAIT_NAMES)))
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
    rf"(?P<label>(?:(?![×x]?\d+[機隻])[{_LABEL_CHARS}])+{_NOUN}(?:「[^」]{{1,10}}」)?)"
    rf"(?P<designation>\([A-Za-z0-9\-/]{{2,12}}\))?"
)
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
)
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

    @property
    def key(self) -> str:
        return self.entry.code if self.entry else self.label


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

    def follow(self, sentence: str, spans: Sequence[_Span]) -> None:
        for span in spans:
            last = span.end or span.start
            if last > self.date and (self.end is None or last > self.end):
                self.end = last
        _extend_unique(self.straits, straits_in(sentence))
        _extend_unique(self.areas, (m.group() for m in _SEA.finditer(sentence)))
        self.directions.extend(m.group() for m in _DIRECTION.finditer(sentence))


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


def straits_in(text: str) -> list[str]:
    """Gate ids of the straits a (normalised) sentence names, in order of appearance."""
    found: list[tuple[int, str]] = []
    for match in _NAMED_STRAIT.finditer(text):
        found.append((match.start(), STRAIT_NAMES[match.group()]))
    for match in _PAIR.finditer(text):
        gate = _PAIR_GATES.get(frozenset({match.group(1), match.group(2)}))
        if gate is not None:
            found.append((match.start(), gate))
    ordered: list[str] = []
    _extend_unique(ordered, (gate for _, gate in sorted(found)))
    return ordered


def parse_press_release(
    text: str, *, source_name: str, catalogue: Catalogue | None = None
) -> PressRelease:
    """The foreign military activity one JSO release reports.

    Never raises on odd text: what cannot be read is left out, and labels the catalogue does
    not know are listed in ``unknown_labels`` with their activities' ``platform`` None.
    """
    catalogue = catalogue or Catalogue.load()
    body = _Text.of(text)
    title = _title(text)
    released = _release_date(body.norm, source_name)
    statistics = bool(_STATISTICS.search(title or "")) or bool(_STATISTICS.search(body.norm[:40]))
    kind: ReleaseKind = (
        "scramble_statistics"
        if statistics
        else "foreign_activity"
        if title and _FOREIGN_TITLE.search(unicodedata.normalize("NFKC", title))
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
    reader = _Reader(body, _Calendar(released), catalogue, unknown, source_name)
    reader.read()
    activities = tuple(a for episode in reader.episodes for a in _activities(episode))
    earlier = tuple(reader.earlier)
    if activities and kind == "other":
        kind = "foreign_activity"
    return PressRelease(
        source_name=source_name,
        release_date=released,
        title=title,
        kind=kind,
        reports_foreign_activity=bool(activities) or kind == "foreign_activity",
        activities=activities,
        previously_reported=earlier,
        unknown_labels=unknown.labels,
    )


# --- reading --------------------------------------------------------------------------------


def _title(text: str) -> str | None:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for line in lines[:40]:
        if line.endswith("について") or line.endswith("について】"):
            return line
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
    ) -> None:
        self.body = body
        self.calendar = calendar
        self.catalogue = catalogue
        self.unknown = unknown
        self.source_name = source_name
        self.episodes: list[_Episode] = []
        self.earlier: list[PressActivity] = []

    def read(self) -> None:
        norm = self.body.norm
        # Captions and the map legend follow the last full stop; the narrative ends there. It
        # starts after the heading (date, office, title), whose date is the release's own.
        end = norm.rfind("。")
        first_stop = max(norm.find("。"), 0)
        heading = norm.find("について", 0, first_stop)
        dated = _RELEASE_DATE.search(norm, 0, first_stop)
        start = 0
        if heading >= 0:
            start = heading + len("について")
        elif dated is not None and _DATE_SPAN.search(norm, dated.end(), first_stop):
            # No title line, but the heading's date is followed by the first sighting's date.
            start = dated.end()
        while 0 <= start < end:
            stop = norm.find("。", start)
            if stop < 0:
                break
            self._sentence(start, stop)
            start = stop + 1

    def _sentence(self, start: int, stop: int) -> None:
        sentence = self.body.norm[start:stop]
        if not sentence or _OWN_FORCES.search(sentence):
            return
        self.calendar.new_sentence()
        spans = self._dates(sentence)
        items = self._items(start, stop)
        current = self.episodes[-1] if self.episodes else None
        if _SAME_AS_BEFORE.search(sentence):
            if current is not None:
                self._earlier(sentence, spans, current)
            return
        if items and not (
            current is not None and sentence.startswith("その後") and _within(items, current)
        ):
            first = spans[0].start if spans else (current.date if current else None)
            if first is None:
                return
            episode = _Episode(items=items, date=first)
            time = _TIME.search(sentence)
            episode.time_of_day = time.group() if time else None
            episode.position = _position(sentence)
            episode.follow(sentence, spans)
            self.episodes.append(episode)
            return
        if current is not None and (items or _ANAPHORA.search(sentence)):
            current.follow(sentence, spans)

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
        norm = self.body.norm
        items: list[_Item] = []
        position = start
        while position < stop:
            anchor = _ANCHOR.search(norm, position, stop)
            if anchor is None:
                break
            nationality = _NATION[anchor["nation"]]
            presumed = anchor["presumed"] is not None
            cursor = anchor.end()
            listed: list[_Item] = []
            while cursor < stop:
                switch = _ANCHOR.match(norm, cursor, stop)
                if switch is not None and listed:
                    nationality = _NATION[switch["nation"]]
                    presumed = switch["presumed"] is not None
                    cursor = switch.end()
                item, cursor_after = self._item(cursor, stop, nationality, presumed)
                if item is None:
                    break
                listed.append(item)
                cursor = cursor_after
                separator = _SEPARATOR.match(norm, cursor, stop)
                if separator is None:
                    break
                cursor = separator.end()
            items.extend(listed)
            position = max(cursor, anchor.end())
        return [item for item in items if not _is_reference(item)]

    def _item(
        self, cursor: int, stop: int, nationality: str, presumed: bool
    ) -> tuple[_Item | None, int]:
        norm = self.body.norm
        match = _LABEL.match(norm, cursor, stop)
        if match is None:
            return None, cursor
        label = match["label"] + (match["designation"] or "")
        written = self.body.written(match.start(), match.end())
        cursor = match.end()
        count: int | None = None
        air = match["label"].endswith(_AIR_NOUNS)
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
            label, written, nationality, count, tuple(hulls), entry, air, explicit, presumed
        )
        if entry is None and not _is_reference(item):
            self.unknown.record(written or label, self.source_name)
        return item, cursor

    def _earlier(self, sentence: str, spans: Sequence[_Span], episode: _Episode) -> None:
        """Earlier sightings of the same ships: each date in the sentence opens a clause whose
        straits belong to it; a hull number named before a date narrows the subject."""
        by_hull = {hull: item for item in episode.items for hull in item.hulls}
        subject = list(episode.items)
        seen = {(a.date, a.platform, a.strait) for a in self.earlier}
        for index, span in enumerate(spans):
            lead = sentence[spans[index - 1].position if index else 0 : span.position]
            named = [by_hull[h] for h in _HULL.findall(lead) if h in by_hull]
            if named:
                subject = list({id(item): item for item in named}.values())
            end = spans[index + 1].position if index + 1 < len(spans) else len(sentence)
            clause = sentence[span.position : end]
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
                key = (activity.date, activity.platform, activity.strait)
                if key not in seen:
                    seen.add(key)
                    self.earlier.append(activity)


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
    )


def _activities(episode: _Episode) -> list[PressActivity]:
    merged: dict[tuple[str, str], _Item] = {}
    for item in episode.items:
        key = (item.key, item.nationality)
        if key in merged:
            known = merged[key]
            merged[key] = _Item(
                known.label,
                known.written,
                known.nationality,
                (known.count or 0) + (item.count or 0) or None,
                tuple(dict.fromkeys(known.hulls + item.hulls)),
                known.entry,
                known.air,
                known.counted or item.counted,
                known.presumed or item.presumed,
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
        )
        for item in merged.values()
    ]
