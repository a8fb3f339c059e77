"""Importer for the Taiwan MND activity maps since 2024-01-16: areas, balloons, closest approaches.

Reads The Reporter's digitisation of these maps (``20240116-20240331_v2.geojson``: one feature per
drawn shape, its ``category`` saying which) and turns each map into observations of origin TWN:

* every group of aircraft an area's description names (``0719-1500時殲擊機主戰機及無人機計5架次
  （其中2架次過中線）``) is one ``area`` observation: the polygon, the time window, the count, the
  classes the text and the ``if_…`` flags give, and ``crossed_median_line`` when the text says how
  many of them crossed the median line (the event is derived in :mod:`kuroshio.geo.events`);
* an area holding several groups (``polygon_#multi``, ``；`` between them) gives one observation
  per group. The same groups drawn again as areas of their own (``polygon_#separate``) are
  matched to them and lend them their own, tighter outline; they are never counted again;
* a balloon (start ellipse, arrow, end ellipse; ``_N`` for the day's Nth) is one ``air`` track
  from the centre of the start ellipse along the arrow to the centre of the end ellipse, with its
  times (``balloon_start``/``balloon_end``) and altitude (``balloon_height``, feet as written:
  ``3萬0,000呎`` is 30 000 ft);
* a closest-approach line (``約43浬`` from 基隆 to a ``flight`` or a ``balloon``) is kept in the
  ``approaches`` of the observation of that map it points at.

Time: the map dated D reports the activity of the day before (its balloons are timed ``2/9 7:09``
on the map of 2024-02-10), so a window ``0719-1500時`` is 07:19 to 15:00 on D-1, Taiwan time, and
a window whose end comes before its start (``1614-0005時``) ends on D. A group without a window
is given the whole span these maps cover, 00:00 on D-1 to 06:00 on D.

It reads one file's features and stores nothing; it derives no events.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import shapely

from kuroshio.catalogue import lookup
from kuroshio.errors import ImportRecordError
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import (
    PUBLIC_MARKING,
    TAIWAN,
    Identify,
    area_geometry,
    catalogue_identify,
    platform,
    validated,
)
from kuroshio.model import (
    ClosestApproach,
    Kinematics,
    LineString,
    Observation,
    Platform,
    Polygon,
    Provenance,
    Source,
)

IMPORTER: Final = "mnd-areas"
AREA_PREFIX: Final = "TWN:mnd-area:"
BALLOON_PREFIX: Final = "TWN:mnd-balloon:"
EACH: Final = "polygon_#each"
MULTI: Final = "polygon_#multi"
SEPARATE: Final = "polygon_#separate"
BALLOON: Final = "balloon"
DISTANCE: Final = "distance"
CATEGORIES: Final = (EACH, MULTI, SEPARATE, BALLOON, DISTANCE)
AREA_UNCERTAINTY_M: Final = 20_000.0
"""Outlines traced by hand from the map images, as the tracks before them (tens of km)."""
BALLOON_UNCERTAINTY_M: Final = 20_000.0
MAX_AIRCRAFT: Final = 500
MAX_FEET: Final = 150_000
FOOT_M: Final = 0.3048
MAP_DAY_ENDS: Final = dt.time(6, 0)
"""The span of a map's day ends at 06:00 on the map's date."""

CLASS_ORDER: Final = ("fighter", "uav", "helicopter", "main_combat", "support")
"""MND's classes of aircraft on these maps; named types (殲10, 運8反潛機) add their own."""
CLASS_WORDS: Final = (
    ("無人機", "uav"),
    ("直升機", "helicopter"),
    ("直昇機", "helicopter"),
    ("殲擊機", "fighter"),
    ("戰鬥機", "fighter"),
)
FLAG_CLASSES: Final[Mapping[str, str]] = {
    "if_殲擊機": "fighter",
    "if_無人機": "uav",
    "if_直升機": "helicopter",
    "if_主戰機": "main_combat",
    "if_輔戰機": "support",
}

_CLOCK = r"(?:\d{4}|\d{1,2}[:時]\d{2}分?)"
_WINDOW: Final = re.compile(rf"(?P<start>{_CLOCK})時?\s*(?:[-~～－—]|至|到)\s*(?P<end>{_CLOCK})時?")
_COUNT: Final = re.compile(r"(?:計|共)?(?P<each>各)?(?P<count>\d+)架(?:次)?(?:\d+次)?")
_CROSSED: Final = re.compile(r"(?P<count>\d+)架(?:次)?[^()]{0,6}?(?:過|逾越|越過|跨越)中線")
_BRACKETED: Final = re.compile(r"\(([^()]*)\)")
_AIRFIELDS: Final = re.compile(r"[一-龥]{1,8}?等?機場")
_SEPARATORS: Final = re.compile(r"等|及|、|和|與|暨|,")
_BALLOON_PART: Final = re.compile(r"(?P<part>ellipse_#start|ellipse_#end|arrow)(?:_(?P<n>\d+))?")
_BALLOON_TIME: Final = re.compile(
    r"(?P<m>\d{1,2})[/月](?P<d>\d{1,2})日?\s*(?P<h>\d{1,2})[:時](?P<min>\d{2})分?"
)
_FEET: Final = re.compile(r"(?:(?P<wan>\d+)萬)?(?:(?P<qian>\d+)千)?(?P<rest>\d*)(?:呎|英尺|ft)?")
_NMI: Final = re.compile(r"(?P<nmi>\d+(?:\.\d+)?)\s*(?:浬|海浬|海里|nmi)")


# --- descriptions -----------------------------------------------------------------------------


class AreaGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One group of aircraft as an area's description gives it."""

    text: str
    """The group as written."""
    window: tuple[int, int] | None = None
    """Start and end, minutes after midnight (the end may be the next day's)."""
    count: int | None = None
    crossed: int | None = None
    """How many crossed the median line, when the text says."""
    label: str = ""
    """The aircraft as written, between the window and the count (``殲擊機等主、輔戰機``)."""
    classes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    """Catalogue codes of the types the text names (殲10 → J-10)."""
    unknown: tuple[str, ...] = ()
    """Words for aircraft that neither MND's classes nor the catalogue know."""
    note: bool = False
    """A bracketed note standing alone (``（7架逾越中線進入西南空域）``): it says more about the
    group before it and counts no aircraft of its own."""


def _normal(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _minutes(clock: str) -> int:
    """Minutes after midnight of ``0719``, ``7:19`` or ``7時19分``."""
    digits = re.findall(r"\d+", clock)
    hhmm = digits[0] if len(digits) == 1 else f"{int(digits[0]):02d}{digits[1]}"
    hours, minutes = int(hhmm[:2]), int(hhmm[2:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"time {hhmm!r} is not HHMM")
    return hours * 60 + minutes


def _aircraft_words(phrase: str) -> tuple[list[str], list[str], list[str]]:
    """Classes, catalogue types and unknown words of the aircraft a phrase lists."""
    classes: list[str] = []
    types: list[str] = []
    unknown: list[str] = []
    phrase = _AIRFIELDS.sub("", phrase.replace("偵獲", ""))
    for token in (t.strip("計共") for t in _SEPARATORS.split(phrase)):
        if not token:
            continue
        named = [name for word, name in CLASS_WORDS if word in token]
        named += [
            name for name, word in (("main_combat", "主"), ("support", "輔")) if word in token
        ]
        if named:
            classes.extend(named)
        elif (entry := lookup(token, nationality="CHN")) is not None:
            classes.append(entry.platform_class)
            if entry.precision != "class":
                types.append(entry.code)
        else:
            unknown.append(token)
    return classes, types, unknown


def parse_group(text: str) -> AreaGroup:
    """One ``；``-separated group of an area's description (ValueError when it cannot be read)."""
    norm = _normal(text)
    if not norm:
        raise ValueError("an empty group")
    crossed_match = _CROSSED.search(norm)
    crossed = int(crossed_match["count"]) if crossed_match else None
    if _BRACKETED.fullmatch(norm):
        if crossed is None:
            raise ValueError(f"a bracketed note {text!r} that says no number of aircraft")
        return AreaGroup(text=text, crossed=crossed, note=True)
    body = _BRACKETED.sub("", norm)
    lead = body.removeprefix("偵獲")
    window = None
    found = _WINDOW.match(lead)
    if found is not None:
        window = (_minutes(found["start"]), _minutes(found["end"]))
        lead = lead[found.end() :]
    elif (later := _WINDOW.search(norm)) is not None:
        # The window written after the aircraft (…計5架次（0719-1500時）).
        window = (_minutes(later["start"]), _minutes(later["end"]))
    counted = _COUNT.search(lead)
    if counted is None:
        raise ValueError(f"no number of aircraft (…架) in {text!r}")
    phrase = lead[: counted.start()].removeprefix("偵獲")
    classes, types, unknown = _aircraft_words(phrase)
    count = int(counted["count"])
    if counted["each"]:
        count *= max(1, len(classes) + len(unknown))  # 無人機及運8反潛機各1架次: one of each
    if not 1 <= count <= MAX_AIRCRAFT:
        raise ValueError(f"{count} aircraft in {text!r}, not 1..{MAX_AIRCRAFT}")
    if crossed is not None and crossed > count:
        raise ValueError(f"{crossed} of {count} aircraft crossed the median line in {text!r}")
    return AreaGroup(
        text=text,
        window=window,
        count=count,
        crossed=crossed,
        label=phrase,
        classes=tuple(dict.fromkeys(classes)),
        types=tuple(dict.fromkeys(types)),
        unknown=tuple(unknown),
    )


def parse_description(description: str, *, lone_note: bool = False) -> list[AreaGroup]:
    """The groups of an area's description, a bracketed note merged into the group before it.

    ``lone_note``: a description that is only a note (an area drawn separately for what the
    note says) gives that note as its one group.
    """
    groups: list[AreaGroup] = []
    parts = [part for part in re.split(r"[；;]", description) if part.strip()]
    if not parts:
        raise ValueError("no description")
    for number, part in enumerate(parts, start=1):
        try:
            group = parse_group(part)
        except ValueError as exc:
            raise ValueError(f"group {number}: {exc}") from None
        if group.note and groups:
            before = groups[-1]
            crossed = (before.crossed or 0) + (group.crossed or 0)
            if before.count is not None and crossed > before.count:
                raise ValueError(f"group {number}: more crossings than aircraft in group before")
            groups[-1] = msgspec.structs.replace(
                before, crossed=crossed, text=f"{before.text}；{group.text}"
            )
        elif group.note and not (lone_note and len(parts) == 1):
            raise ValueError(f"group {number}: a bracketed note with no group before it")
        else:
            groups.append(group)
    return groups


def parse_feet(text: str) -> int:
    """A height as the maps write it (``3萬0,000呎``, ``2萬呎``, ``21,000呎``) in feet."""
    norm = _normal(text).replace(",", "")
    found = _FEET.fullmatch(norm)
    if not norm or found is None or not any(found.group("wan", "qian", "rest")):
        raise ValueError(f"height {text[:30]!r} is not feet as 3萬0,000呎")
    feet = int(found["wan"] or 0) * 10_000 + int(found["qian"] or 0) * 1_000
    feet += int(found["rest"] or 0)
    if not 0 < feet <= MAX_FEET:
        raise ValueError(f"height {text!r} is not 1..{MAX_FEET} ft")
    return feet


def parse_nmi(text: str | None, number: Any) -> float:
    """A distance as written (``約43浬``), else the ``distance_num`` beside it, in nmi."""
    if text:
        found = _NMI.search(_normal(text))
        if found is not None:
            return float(found["nmi"])
    if isinstance(number, int | float) and not isinstance(number, bool) and number >= 0:
        return float(number)
    raise ValueError(f"distance {str(text)[:30]!r} gives no nautical miles (約43浬)")


# --- times ------------------------------------------------------------------------------------


def activity_day(map_day: dt.date) -> dt.date:
    """The day a map reports: the day before its date."""
    return map_day - dt.timedelta(days=1)


def window_times(map_day: dt.date, window: tuple[int, int] | None) -> tuple[dt.datetime, ...]:
    """Start and end of a group's window, or of the span the map covers when it gives none."""
    day = dt.datetime.combine(activity_day(map_day), dt.time(), tzinfo=TAIWAN)
    if window is None:
        return day, dt.datetime.combine(map_day, MAP_DAY_ENDS, tzinfo=TAIWAN)
    start, end = window
    if end < start:
        end += 24 * 60
    return day + dt.timedelta(minutes=start), day + dt.timedelta(minutes=end)


def balloon_time(text: Any, map_day: dt.date) -> dt.datetime:
    """``2/9 7:09`` on the map of ``map_day``: the year that puts it nearest the map."""
    found = _BALLOON_TIME.fullmatch(_normal_spaced(text))
    if found is None:
        raise ValueError(f"balloon time {str(text)[:30]!r} is not M/D H:MM")
    month, day = int(found["m"]), int(found["d"])
    hour, minute = int(found["h"]), int(found["min"])
    if hour > 23 or minute > 59:
        raise ValueError(f"balloon time {text!r} is not a time of day")
    candidates = []
    for year in (map_day.year - 1, map_day.year, map_day.year + 1):
        try:
            candidates.append(dt.date(year, month, day))
        except ValueError:
            continue
    if not candidates:
        raise ValueError(f"balloon time {text!r} is not a date")
    date = min(candidates, key=lambda c: abs((c - map_day).days))
    if not -3 <= (date - map_day).days <= 1:
        raise ValueError(f"balloon time {text!r} is not within the days of the map of {map_day}")
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=TAIWAN)


def _normal_spaced(text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"balloon time {str(text)[:30]!r} is not text")
    return " ".join(unicodedata.normalize("NFKC", text).split())


# --- features ---------------------------------------------------------------------------------


def is_area_map(features: Sequence[Any]) -> bool:
    """True when the features are of this format (each has a ``category`` of it)."""
    return bool(features) and all(
        isinstance(f, dict)
        and isinstance(f.get("properties"), dict)
        and f["properties"].get("category") in CATEGORIES
        for f in features[:50]
    )


@dataclass
class _Feature:
    index: int
    location: str
    day: dt.date
    category: str
    properties: dict[str, Any]
    geometry: Any

    @property
    def number(self) -> str:
        """The feature's own number (``$133`` → ``133``), or its place in the file."""
        written = str(self.properties.get("id") or "")
        digits = "".join(c for c in written if c.isascii() and c.isdigit())
        return digits.lstrip("0").zfill(3) if digits else f"i{self.index}"


@dataclass
class _Area:
    """One group of aircraft on its way to becoming an observation."""

    feature: _Feature
    group: AreaGroup
    group_number: int | None
    """Its place in a description of several groups (1, 2 …), None when alone."""
    flags: tuple[str, ...]
    shape: Polygon
    drawn_separately: _Feature | None = None
    approaches: list[ClosestApproach] = field(default_factory=list)

    @property
    def outline(self) -> Polygon:
        """The tightest outline drawn for the group."""
        if self.drawn_separately is not None:
            return area_geometry(self.drawn_separately.geometry)
        return self.shape

    @property
    def id(self) -> str:
        suffix = f"-{self.group_number}" if self.group_number is not None else ""
        return f"{AREA_PREFIX}{self.feature.day.isoformat()}:{self.feature.number}{suffix}"


@dataclass
class _Balloon:
    day: dt.date
    number: int
    parts: dict[str, _Feature] = field(default_factory=dict)
    track: LineString | None = None
    approaches: list[ClosestApproach] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{BALLOON_PREFIX}{self.day.isoformat()}:{self.number}"


def _feature(index: int, location: str, raw: Any) -> _Feature:
    if not isinstance(raw, dict) or not isinstance(raw.get("properties"), dict):
        raise ValueError("not a GeoJSON Feature with properties")
    properties: dict[str, Any] = raw["properties"]
    category = properties.get("category")
    if category not in CATEGORIES:
        raise ValueError(f"category {str(category)[:40]!r} is not one of {', '.join(CATEGORIES)}")
    written = properties.get("date")
    try:
        day = dt.date.fromisoformat(str(written).strip())
    except ValueError:
        raise ValueError(f"date {str(written)[:30]!r} is not YYYY-MM-DD") from None
    if not 2000 <= day.year <= 2100:
        raise ValueError(f"date {written!r} gives the implausible year {day.year}")
    return _Feature(index, location, day, category, properties, raw.get("geometry"))


def _flags(properties: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        name for flag, name in FLAG_CLASSES.items() if str(properties.get(flag)).strip() == "1"
    )


def _description(feature: _Feature, *, lone_note: bool = False) -> list[AreaGroup]:
    text = feature.properties.get("description")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an area without a description")
    return parse_description(text, lone_note=lone_note)


def _is_part_of(area: _Area, group: AreaGroup) -> bool:
    """The group reads as the area's group, or as a note merged into it."""
    text = _normal(group.text)
    return _normal(area.group.text) == text or text in map(_normal, area.group.text.split("；"))


def _match_separate(
    groups: Sequence[AreaGroup], areas: Sequence[_Area], taken: set[int]
) -> list[tuple[_Area, AreaGroup]]:
    """The day's #multi groups that a #separate area's groups are: the same text, else the
    same window and count, else the only one with that count; [] when one has no match."""
    matched: list[tuple[_Area, AreaGroup]] = []
    for group in groups:
        free = [n for n in range(len(areas)) if n not in taken]
        same_text = [n for n in range(len(areas)) if _is_part_of(areas[n], group)]
        same_window = [
            n
            for n in free
            if (areas[n].group.window, areas[n].group.count) == (group.window, group.count)
        ]
        same_count = [n for n in free if areas[n].group.count == group.count]
        found = same_text[:1] or (same_window if len(same_window) == 1 else [])
        found = found or (same_count if len(same_count) == 1 and not group.note else [])
        if not found:
            return []
        if not group.note:
            taken.add(found[0])
        matched.append((areas[found[0]], group))
    return matched


class _Map:
    """The features of one map (one date), read into areas and balloons."""

    def __init__(self, day: dt.date) -> None:
        self.day = day
        self.areas: list[_Area] = []
        self.multi: list[_Area] = []
        self.separate: list[_Feature] = []
        self.balloons: dict[int, _Balloon] = {}
        self.distances: list[_Feature] = []
        self.errors: list[ImportRecordError] = []
        self.notes: dict[str, list[str]] = {}

    def add(self, feature: _Feature) -> None:
        category = feature.category
        if category in (EACH, MULTI):
            shape = area_geometry(feature.geometry)
            groups = _description(feature)
            numbered = len(groups) > 1
            flags = _flags(feature.properties) if not numbered else ()
            for number, group in enumerate(groups, start=1):
                area = _Area(feature, group, number if numbered else None, flags, shape)
                self.areas.append(area)
                if category == MULTI:
                    self.multi.append(area)
        elif category == SEPARATE:
            area_geometry(feature.geometry)
            _description(feature, lone_note=True)
            self.separate.append(feature)
        elif category == BALLOON:
            self._balloon_part(feature)
        else:
            self.distances.append(feature)

    def _balloon_part(self, feature: _Feature) -> None:
        written = str(feature.properties.get("category_figma_2") or "").strip()
        found = _BALLOON_PART.fullmatch(written)
        if found is None:
            raise ValueError(f"balloon part {written[:40]!r} is not ellipse_#start/end or arrow")
        number = int(found["n"] or 1)
        balloon = self.balloons.setdefault(number, _Balloon(self.day, number))
        part = found["part"]
        if part in balloon.parts:
            raise ValueError(f"a second {written} on the map of {self.day}")
        balloon.parts[part] = feature

    def settle(self) -> None:
        """Match each separately drawn area to the group of the #multi area it draws again; one
        that matches none is refused, unless the map has no #multi area to match."""
        taken: set[int] = set()
        for feature in self.separate:
            groups = _description(feature, lone_note=True)
            matched = _match_separate(groups, self.multi, taken) if self.multi else []
            if matched:
                for area, group in matched:
                    if group.note or len(matched) > 1 or area.drawn_separately is not None:
                        self.notes.setdefault(area.id, []).append(
                            f"{group.text.strip()} also drawn as {feature.location}"
                        )
                    else:
                        area.drawn_separately = feature
                continue
            if self.multi:
                self.errors.append(
                    ImportRecordError(
                        feature.location,
                        "a separately drawn area that matches no group of the map's #multi "
                        "area: not counted, as it may be the same aircraft",
                    )
                )
                continue
            # No #multi area on this map: the separately drawn area is the only record of them.
            shape = area_geometry(feature.geometry)
            numbered = len(groups) > 1
            if any(group.note for group in groups):
                self.errors.append(
                    ImportRecordError(feature.location, "a note about aircraft counted nowhere")
                )
                continue
            for number, group in enumerate(groups, start=1):
                flags = _flags(feature.properties) if not numbered else ()
                self.areas.append(_Area(feature, group, number if numbered else None, flags, shape))

    def place_balloons(self) -> None:
        for balloon in list(self.balloons.values()):
            try:
                balloon.track = _balloon_track(balloon)
            except ValueError as exc:
                where = "+".join(str(f.index) for f in balloon.parts.values())
                location = next(iter(balloon.parts.values())).location.split("#")[0]
                self.errors.append(ImportRecordError(f"{location}#{where}", str(exc)))
                del self.balloons[balloon.number]

    def attach(self, feature: _Feature) -> None:
        """A closest-approach line onto the observation of this map it points at."""
        properties = feature.properties
        line = LineString(coordinates=_line(feature.geometry))
        approach = ClosestApproach(
            place=str(properties.get("distance_ref_location") or "").strip()[:200] or "?",
            distance_nmi=parse_nmi(properties.get("distance"), properties.get("distance_num")),
            line=line,
        )
        target = str(properties.get("distance_target") or "").strip()
        ends = [shapely.Point(line.coordinates[0]), shapely.Point(line.coordinates[-1])]
        if target == "flight":
            shapes = [
                (area.approaches, shapely.Polygon(*_rings(area.outline))) for area in self.areas
            ]
        elif target == "balloon":
            shapes = [
                (b.approaches, shapely.LineString(b.track.coordinates))
                for b in self.balloons.values()
                if b.track is not None
            ]
        else:
            raise ValueError(f"distance_target {target[:30]!r} is neither flight nor balloon")
        if not shapes:
            raise ValueError(
                f"a closest approach to a {target}, but the map of {self.day} has none to "
                "attach it to"
            )
        # The far end of the line is at the target: the end nearest any of them.
        _, holder = min(
            ((min(end.distance(shape) for end in ends), n) for n, (_, shape) in enumerate(shapes)),
        )
        shapes[holder][0].append(approach)


def _rings(shape: Polygon) -> tuple[Any, list[Any]]:
    return shape.coordinates[0], list(shape.coordinates[1:])


def _line(geometry: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
        raise ValueError("a closest approach that is not a LineString")
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        raise ValueError("a closest-approach line of fewer than two positions")
    positions: list[tuple[float, float]] = []
    for raw in coordinates:
        if not isinstance(raw, list | tuple) or len(raw) < 2:
            raise ValueError("a position that is not [lon, lat]")
        lon, lat = raw[0], raw[1]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
            raise ValueError("a position that is not numeric")
        positions.append((float(lon), float(lat)))
    return tuple(positions)


def _centre(feature: _Feature) -> tuple[float, float]:
    shape = area_geometry(feature.geometry)
    centre = shapely.Polygon(*_rings(shape)).centroid
    return float(centre.x), float(centre.y)


def _balloon_track(balloon: _Balloon) -> LineString:
    """Start ellipse's centre → the arrow → end ellipse's centre."""
    positions: list[tuple[float, float]] = []
    if "ellipse_#start" in balloon.parts:
        positions.append(_centre(balloon.parts["ellipse_#start"]))
    if "arrow" in balloon.parts:
        positions.extend(_line(balloon.parts["arrow"].geometry))
    if "ellipse_#end" in balloon.parts:
        positions.append(_centre(balloon.parts["ellipse_#end"]))
    kept = [p for n, p in enumerate(positions) if n == 0 or p != positions[n - 1]]
    if len(kept) < 2:
        raise ValueError(f"balloon {balloon.number} of {balloon.day}: too few parts for a track")
    return LineString(coordinates=tuple(kept))


# --- observations -----------------------------------------------------------------------------


def _classes(area: _Area) -> tuple[str, ...]:
    found = set(area.group.classes) | set(area.flags)
    if area.drawn_separately is not None:
        found |= set(_flags(area.drawn_separately.properties))
    ordered = [c for c in CLASS_ORDER if c in found]
    return (*ordered, *sorted(found - set(CLASS_ORDER)))


def _area_platform(group: AreaGroup, classes: tuple[str, ...], identify: Identify) -> Platform:
    """The catalogue's type when the group names one type alone; else the one class it names;
    else ``other_aircraft`` for a mix (or MND's main combat / support aircraft) with every class
    in ``classes``; unknown (reported) when it names no aircraft the importer knows."""
    count = group.count or 1
    label = (group.label or group.text).strip()[:200]
    if len(group.types) == 1 and len(group.classes) == 1 and not group.unknown:
        known = platform(identify, [label, group.types[0]], count=count, nationality="CHN")
        if known.type is not None:
            return msgspec.structs.replace(known, classes=classes)
    mnd_only = {"main_combat", "support"}
    single = classes[0] if len(classes) == 1 and classes[0] not in mnd_only else None
    return Platform(
        platform_class=single or ("other_aircraft" if classes else None),
        count=count,
        nationality="CHN",
        label=label or None,
        classes=classes,
    )


def area_observation(area: _Area, notes: Sequence[str], identify: Identify) -> Observation:
    """One group of aircraft as an ``area`` observation."""
    feature = area.feature
    group = area.group
    start, end = window_times(feature.day, group.window)
    classes = _classes(area)
    where = feature.location
    if area.group_number is not None:
        where += f" group {area.group_number}"
    if area.drawn_separately is not None:
        where += f" (outline {area.drawn_separately.location})"
    remarks = (
        f"Taiwan MND activity map of {feature.day.isoformat()} (local), traced by The Reporter: "
        f"{group.text.strip()}"
        + ("" if group.window else "; no time window given: the span the map covers")
        + (f"; {'; '.join(notes)}" if notes else "")
        + (f"; words not known: {', '.join(group.unknown)}" if group.unknown else "")
    )
    observation = Observation(
        id=area.id,
        origin="TWN",
        kind="area",
        observed_at=start,
        until=end,
        geometry=area.outline,
        platform=_area_platform(area.group, classes, identify),
        source=Source(sensor="digitised_map", confidence=0.6, uncertainty_m=AREA_UNCERTAINTY_M),
        marking=PUBLIC_MARKING,
        remarks=remarks[:4000],
        provenance=Provenance(importer=IMPORTER, record=where),
    )
    if group.crossed is not None:
        observation = msgspec.structs.replace(observation, crossed_median_line=group.crossed)
    if area.approaches:
        observation = msgspec.structs.replace(observation, approaches=tuple(area.approaches))
    return validated(observation)


def _balloon_value(balloon: _Balloon, name: str) -> Any:
    values = {str(f.properties.get(name) or "").strip() for f in balloon.parts.values()}
    values.discard("")
    if len(values) > 1:
        raise ValueError(f"the parts of balloon {balloon.number} disagree on {name}")
    return values.pop() if values else None


def balloon_observation(balloon: _Balloon, file_name: str, identify: Identify) -> Observation:
    """One balloon as an ``air`` track with its times and altitude."""
    assert balloon.track is not None
    start = balloon_time(_balloon_value(balloon, "balloon_start"), balloon.day)
    end = balloon_time(_balloon_value(balloon, "balloon_end"), balloon.day)
    if end < start:
        raise ValueError(f"balloon {balloon.number} ends ({end}) before it starts ({start})")
    height = _balloon_value(balloon, "balloon_height")
    kinematics = None
    if height is not None:
        kinematics = Kinematics(altitude_m=round(parse_feet(height) * FOOT_M, 1))
    parts = sorted(balloon.parts.values(), key=lambda f: f.index)
    remarks = (
        f"Taiwan MND activity map of {balloon.day.isoformat()} (local), traced by The Reporter: "
        f"balloon {balloon.number} of the day, {_balloon_value(balloon, 'balloon_start')} to "
        f"{_balloon_value(balloon, 'balloon_end')}" + (f" at {height}" if height else "")
    )
    observation = Observation(
        id=balloon.id,
        origin="TWN",
        kind="air",
        observed_at=start,
        until=end,
        geometry=balloon.track,
        platform=platform(identify, ["氣球"], count=1, nationality="CHN"),
        kinematics=kinematics,
        source=Source(sensor="digitised_map", confidence=0.6, uncertainty_m=BALLOON_UNCERTAINTY_M),
        marking=PUBLIC_MARKING,
        remarks=remarks,
        provenance=Provenance(
            importer=IMPORTER, record=f"{file_name}#" + "+".join(str(f.index) for f in parts)
        ),
    )
    if balloon.approaches:
        observation = msgspec.structs.replace(observation, approaches=tuple(balloon.approaches))
    return validated(observation)


def read_area_map(
    path: Path, features: Sequence[Any], *, identify: Identify = catalogue_identify
) -> list[Record]:
    """Every map of one file of this format: observations, and each record refused with why.

    Parts of one thing (a balloon's ellipses and arrow, a closest-approach line, an area drawn
    again separately) give no record of their own; the observation names them in its
    provenance or remarks.
    """
    maps: dict[dt.date, _Map] = {}
    records: list[tuple[int, Record]] = []
    for index, raw in enumerate(features):
        location = f"{path.name}#{index}"
        try:
            feature = _feature(index, location, raw)
            day_map = maps.setdefault(feature.day, _Map(feature.day))
            day_map.add(feature)
        except ValueError as exc:
            records.append((index, (location, ImportRecordError(location, str(exc)))))
    for day_map in maps.values():
        records.extend(_map_records(day_map, path.name, identify))
    records.sort(key=lambda item: item[0])
    return [record for _, record in records]


def _map_records(day_map: _Map, file_name: str, identify: Identify) -> Iterable[tuple[int, Record]]:
    day_map.settle()
    day_map.place_balloons()
    for feature in day_map.distances:
        try:
            day_map.attach(feature)
        except ValueError as exc:
            day_map.errors.append(ImportRecordError(feature.location, str(exc)))
    for error in day_map.errors:
        index = int(error.location.rsplit("#", 1)[1].split("+")[0])
        yield index, (error.location, error)
    for area in day_map.areas:
        location = area.feature.location
        try:
            observation = area_observation(area, day_map.notes.get(area.id, ()), identify)
        except ValueError as exc:
            yield area.feature.index, (location, ImportRecordError(location, str(exc)))
            continue
        yield area.feature.index, (location, observation)
    for balloon in day_map.balloons.values():
        first = min(f.index for f in balloon.parts.values())
        location = f"{file_name}#{first}"
        try:
            observation = balloon_observation(balloon, file_name, identify)
        except ValueError as exc:
            yield first, (location, ImportRecordError(location, str(exc)))
            continue
        yield first, (location, observation)


def map_day(observation_id: str) -> dt.date | None:
    """The date of the map an observation of this importer comes from (from its id)."""
    for prefix in (AREA_PREFIX, BALLOON_PREFIX):
        if observation_id.startswith(prefix):
            try:
                return dt.date.fromisoformat(observation_id[len(prefix) :][:10])
            except ValueError:
                return None
    return None
