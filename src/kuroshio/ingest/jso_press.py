"""Importer for the text of Japan Joint Staff Office press releases: one observation per activity.

Reads a collection of release texts (``japan_mod_texts_dev.json``: ``{"texts": {name: {"url",
"text"}}}``) or one release as a ``.txt`` file, parses each with
:func:`kuroshio.ingest.jso_press_text.parse_press_release`, and turns every newly reported
activity (one platform type of one sighting) into an ``air`` / ``sea`` observation of origin JPN.
Releases about anything else (exercises with allies, disaster relief, scramble statistics) are
skipped with their title; earlier sightings a release repeats ("…と同一である") are not new and
give nothing. A correction (訂正) adds nothing either: it gives the records of the release it
corrects (read in the same import) again with a higher ``version`` (see
:mod:`kuroshio.ingest.jso_corrections`), and withdraws those the corrected release no longer has.
A ship's passage through a strait the release names is a ``strait_transit`` event
(:func:`transit_events`), derived here because the release says it, not the position. It stores
nothing.

Geometry: a release names places, not tracks, so each observation is a Point with a large
``source.uncertainty_m`` saying how far off it may be:

* a strait passed → the midpoint of that gate (from :mod:`kuroshio.geo` where it draws the gate,
  else a point in the strait); uncertainty half the gate's length, at least 20 km;
* else the sighting's position ("宮古島の南東約140km") → that bearing and distance from the named
  place; uncertainty 30 km plus a fifth of the distance (bearings are to 22.5°, distances rounded);
* else the first sea named ("東シナ海") → a coarse centre of that sea; uncertainty of its size;
* else, for a route that names no place of its own in its sentences, the first sea the release
  names (its title: "…の東シナ海及び太平洋における飛行について").

Time: the activity's first local day (Japan, UTC+9) at the hour the release gives ("午後4時頃"),
else from midnight, until the end of its last day.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, NamedTuple

import msgspec
import shapely

from kuroshio.errors import ImportFileError, ImportRecordError
from kuroshio.geo import event_id, observation_span
from kuroshio.geo import load as load_geography
from kuroshio.geo.shapes import GEOD
from kuroshio.ingest.jso_corrections import corrected_release, pair
from kuroshio.ingest.jso_press_text import (
    GEO_GATE_IDS,
    PressActivity,
    PressRelease,
    PressTransit,
    parse_press_release,
)
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import (
    JAPAN,
    MAX_RECORDS,
    PUBLIC_MARKING,
    Identify,
    SkippedRecord,
    catalogue_identify,
    local_days,
    platform,
    read_json,
    read_text,
    validated,
)
from kuroshio.model import Event, Kind, Observation, Point, Provenance, Source

IMPORTER: Final = "jso-press"
MAX_TEXT_CHARS: Final = 500_000
_KM: Final = 1_000.0

BEARINGS: Final[dict[str, float]] = {
    name: 22.5 * index
    for index, name in enumerate(
        (
            "北", "北北東", "北東", "東北東", "東", "東南東", "南東", "南南東",
            "南", "南南西", "南西", "西南西", "西", "西北西", "北西", "北北西",
        )
    )
}  # fmt: skip

PLACES: Final[dict[str, tuple[float, float]]] = {
    # Area-weighted island centroids of ../shared/data/geo (reference.geojson)
    "与那国島": (122.9892, 24.4552),
    "宮古島": (125.3330, 24.7734),
    "沖縄本島": (127.9589, 26.4950),
    "石垣島": (124.2050, 24.4331),
    "西表島": (123.8150, 24.3362),
    "多良間島": (124.6994, 24.6571),
    "奄美大島": (129.4257, 28.3115),
    "横当島": (128.9916, 28.7989),
    "屋久島": (130.5223, 30.3393),
    "種子島": (130.9746, 30.5794),
    "対馬": (129.3705, 34.5202),
    "壱岐": (129.7183, 33.7860),
    "台湾": (120.9696, 23.7473),
    # Approximate centres (gazetteer, to about 0.05°) of other places the releases measure from
    "久米島": (126.78, 26.34),
    "魚釣島": (123.47, 25.74),
    "尖閣諸島": (123.50, 25.75),
    "沖大東島": (131.23, 24.47),
    "北大東島": (131.30, 25.95),
    "南大東島": (131.25, 25.85),
    "沖ノ鳥島": (136.08, 20.42),
    "南硫黄島": (141.46, 24.23),
    "与論島": (128.42, 27.04),
    "沖永良部島": (128.60, 27.37),
    "口永良部島": (130.22, 30.47),
    "男女群島": (128.35, 31.98),
    "福江島": (128.78, 32.70),
    "五島列島": (128.85, 32.85),
    "見島": (131.36, 34.78),
    "隠岐": (133.20, 36.20),
    "隠岐諸島": (133.20, 36.20),
    "舳倉島": (136.90, 37.85),
    "佐渡島": (138.38, 38.05),
    "奥尻島": (139.45, 42.15),
    "礼文島": (141.03, 45.38),
    "宗谷岬": (141.94, 45.52),
    "竜飛崎": (140.34, 41.26),
    "大間崎": (140.91, 41.55),
    "襟裳岬": (143.25, 41.92),
    "知床岬": (145.32, 44.35),
}
"""Places releases measure positions from ("対馬の南西約110km") → (lon, lat)."""

STRAITS: Final[dict[str, tuple[float, float, float]]] = {
    # Straits the geography package draws no gate for: (lon, lat, uncertainty km)
    "tsushima": (129.47, 34.13, 80.0),
    "soya": (141.90, 45.70, 25.0),
    "tsugaru": (140.65, 41.45, 20.0),
    "tatar": (141.60, 52.00, 60.0),
    "nemuro": (145.25, 43.85, 30.0),
    "okinoerabu-yoron": (128.51, 27.20, 15.0),
    "okinawa-yoron": (128.25, 26.90, 20.0),
    "taiwan-strait": (119.90, 24.40, 200.0),
}

SEAS: Final[dict[str, tuple[float, float, float]]] = {
    # Coarse centres of the seas near Japan as the releases use them: (lon, lat, uncertainty km)
    "東シナ海": (125.0, 29.0, 450.0),
    "日本海": (135.0, 40.0, 550.0),
    "太平洋": (132.0, 25.0, 900.0),
    "フィリピン海": (132.0, 20.0, 900.0),
    "南シナ海": (114.0, 15.0, 900.0),
    "オホーツク海": (148.0, 50.0, 700.0),
    "黄海": (123.0, 35.5, 350.0),
    "渤海": (120.0, 38.5, 200.0),
    "ベーリング海": (178.0, 58.0, 1_000.0),
}

AIR_CLASSES: Final = frozenset(
    {
        "fighter", "bomber", "aew", "asw", "ew", "recon", "uav", "helicopter", "tanker",
        "transport", "other_aircraft", "balloon",
    }
)  # fmt: skip
_HOUR: Final = re.compile(r"(午前|午後)(\d{1,2})時(?:(\d{1,2})分)?")


class Placement(msgspec.Struct, frozen=True):
    """Where an activity is put, how far off that may be, and why there."""

    lon: float
    lat: float
    uncertainty_m: float
    basis: str


# --- where -----------------------------------------------------------------------------------


@functools.cache
def _gate(zone_id: str) -> tuple[float, float, float] | None:
    """Midpoint of a geo gate and half its length in km."""
    geography = load_geography()
    if zone_id not in geography:
        return None
    line = geography.zone(zone_id).geometry
    middle = line.interpolate(0.5, normalized=True)
    xy = shapely.get_coordinates(line)
    length_m = GEOD.line_length(xy[:, 0].tolist(), xy[:, 1].tolist())
    return float(middle.x), float(middle.y), length_m / 2 / _KM


def placement(activity: PressActivity, release_seas: Sequence[str] = ()) -> Placement:
    """A Point for an activity: its strait, else its position, else its sea, else the first sea
    the release names (``release_seas``); ValueError when there is none."""
    for strait in activity.straits:
        drawn = _gate(GEO_GATE_IDS[strait]) if strait in GEO_GATE_IDS else None
        known = drawn or STRAITS.get(strait)
        if known is not None:
            lon, lat, half_km = known
            return Placement(
                lon=lon,
                lat=lat,
                uncertainty_m=max(half_km, 20.0) * _KM,
                basis=f"the {strait} strait passed ({'gate midpoint' if drawn else 'strait'})",
            )
    position = activity.position
    if position is not None and position.reference in PLACES:
        lon, lat = PLACES[position.reference]
        basis = f"the position {position.text}"
        if position.bearing in BEARINGS and position.distance_km is not None:
            lon, lat, _ = GEOD.fwd(lon, lat, BEARINGS[position.bearing], position.distance_km * _KM)
            spread = 30.0 + position.distance_km / 5
        else:
            spread = 50.0
        return Placement(lon=float(lon), lat=float(lat), uncertainty_m=spread * _KM, basis=basis)
    for area in activity.areas:
        if area in SEAS:
            lon, lat, size_km = SEAS[area]
            return Placement(lon=lon, lat=lat, uncertainty_m=size_km * _KM, basis=f"the {area}")
    for area in release_seas:
        if area in SEAS:
            lon, lat, size_km = SEAS[area]
            basis = f"the {area}, the first sea the release names"
            return Placement(lon=lon, lat=lat, uncertainty_m=size_km * _KM, basis=basis)
    raise ValueError("the release names no strait, known place or sea for this activity")


# --- when and what ---------------------------------------------------------------------------


def _window(activity: PressActivity) -> tuple[dt.datetime, dt.datetime]:
    start, end = local_days(activity.date, activity.end_date or activity.date, JAPAN)
    hour = _HOUR.search(activity.time_of_day or "")
    if hour is not None:
        hours = int(hour[2]) % 12 + (12 if hour[1] == "午後" else 0)
        start = start.replace(hour=hours, minute=int(hour[3] or 0))
    elif (activity.time_of_day or "").startswith("正午"):
        start = start.replace(hour=12)
    return start, end


def _kind(activity: PressActivity) -> Kind:
    if activity.platform_class is not None:
        return "air" if activity.platform_class in AIR_CLASSES else "sea"
    return "air" if activity.label.rstrip().endswith(("機", "ヘリコプター", "ドローン")) else "sea"


def activity_observation(
    activity: PressActivity,
    release: PressRelease,
    *,
    number: int,
    record: str,
    url: str | None,
    identify: Identify,
) -> Observation:
    """One activity of a release as an observation (ValueError when it cannot be placed)."""
    where = placement(activity, release.areas)
    start, end = _window(activity)
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", release.source_name.removesuffix(".pdf"))
    count = activity.count or 1
    remarks = (
        f"JSO press release {release.source_name}"
        f" ({release.title or 'untitled'}): {activity.label} ×{count}"
        + (f" ({'/'.join(activity.hull_numbers)})" if activity.hull_numbers else "")
        + (f"; passed {', '.join(activity.straits)}" if activity.straits else "")
        + (f"; {', '.join(activity.directions)}" if activity.directions else "")
        + (f"; {activity.position.text}" if activity.position else "")
        + f". Placed at {where.basis}."
        + ("" if activity.count else " Count not given.")
        + (f" {url}" if url else "")
    )
    return validated(
        Observation(
            id=f"JPN:jso-press:{stem}:{number}",
            origin="JPN",
            kind=_kind(activity),
            observed_at=start,
            until=end,
            geometry=Point(coordinates=(where.lon, where.lat)),
            platform=platform(
                identify,
                [activity.label],
                count=count,
                nationality=activity.nationality,
                hull_numbers=activity.hull_numbers,
            ),
            source=Source(sensor="report", confidence=0.8, uncertainty_m=where.uncertainty_m),
            marking=PUBLIC_MARKING,
            remarks=remarks[:4000],
            provenance=Provenance(importer=IMPORTER, record=record),
        )
    )


def release_records(
    name: str, text: str, *, file_name: str, url: str | None, identify: Identify
) -> Iterator[Record]:
    """The records of one release: its activities' observations, or why it gives none."""
    release = parse_press_release(text, source_name=name)
    for where, item, _ in _release_records(
        release, file_name=file_name, url=url, identify=identify
    ):
        yield where, item


def _release_records(
    release: PressRelease, *, file_name: str, url: str | None, identify: Identify
) -> Iterator[tuple[str, Observation | ImportRecordError, PressActivity | None]]:
    location = f"{file_name}#{release.source_name}"
    if not release.activities:
        what = {
            "scramble_statistics": "scramble statistics (tallies, no new sighting)",
            "other": "not about foreign military activity",
        }.get(release.kind, "no new foreign activity reported")
        reason = f"{what}: {release.title or 'untitled release'}"
        yield location, SkippedRecord(location, reason), None
        return
    for number, activity in enumerate(release.activities, start=1):
        where = f"{location}[{number}]"
        try:
            observation = activity_observation(
                activity, release, number=number, record=where, url=url, identify=identify
            )
        except ValueError as exc:
            yield where, ImportRecordError(where, str(exc)), None
            continue
        yield where, observation, activity


# --- corrections ------------------------------------------------------------------------------


class _Read(NamedTuple):
    """A release as read from its file."""

    file_name: str
    url: str | None
    release: PressRelease


def _correction_records(
    read: _Read,
    releases: Sequence[_Read],
    version: int,
    identify: Identify,
) -> Iterator[tuple[str, Observation | ImportRecordError, PressActivity | None]]:
    """A correction as new versions of the records of the release it corrects."""
    release, correction = read.release, read.release.correction
    assert correction is not None
    location = f"{read.file_name}#{release.source_name}"
    found = corrected_release(correction, [r.release for r in releases], issued=release)
    if found is None:
        named = f"「{correction.title}」" if correction.title else "an untitled release"
        dated = f" of {correction.release_date}" if correction.release_date else ""
        reason = (
            f"a correction of {named}{dated}, which is not among the releases imported with it: "
            "nothing is stored (a correction only supersedes records, it adds none)"
        )
        yield location, ImportRecordError(location, reason), None
        return
    target = next(r for r in releases if r.release is found)
    pairing = pair(found, correction)
    for problem in pairing.problems:
        yield location, ImportRecordError(location, problem), None
    note = f" Corrected by {release.source_name} ({release.title or 'untitled'})."
    for number, activity in enumerate(found.activities, start=1):
        corrected = pairing.corrected.get(number)
        withdrawn = number in pairing.withdrawn
        if corrected is None and not withdrawn:
            continue
        where = f"{location}[{number}]"
        try:
            observation = activity_observation(
                corrected or activity,
                found,
                number=number,
                record=where,
                url=target.url,
                identify=identify,
            )
        except ValueError as exc:
            yield where, ImportRecordError(where, str(exc)), None
            continue
        remarks = ((observation.remarks or "") + note)[:4000]
        observation = msgspec.structs.replace(
            observation, version=version, retracted=withdrawn, remarks=remarks
        )
        yield where, validated(observation), corrected


# --- events the release states ----------------------------------------------------------------

STRAIT_ZONES: Final[Mapping[str, tuple[str, str, str]]] = {
    # Straits the geography draws no gate for: (zone id, name, "one side|the other side")
    "tsushima": ("strait-tsushima", "Tsushima Strait", "East China Sea|Sea of Japan"),
    "soya": ("strait-soya", "Soya Strait", "Sea of Japan|Sea of Okhotsk"),
    "tsugaru": ("strait-tsugaru", "Tsugaru Strait", "Sea of Japan|Pacific"),
    "tatar": ("strait-tatar", "Strait of Tartary", "Sea of Japan|Sea of Okhotsk"),
    "nemuro": ("strait-nemuro", "Nemuro Strait", "Sea of Okhotsk|Pacific"),
    "okinoerabu-yoron": (
        "strait-okinoerabu-yoron",
        "Okinoerabu–Yoron passage",
        "East China Sea|Pacific",
    ),
    "okinawa-yoron": ("strait-okinawa-yoron", "Okinawa–Yoron passage", "East China Sea|Pacific"),
    "taiwan-strait": ("strait-taiwan", "Taiwan Strait", "East China Sea|South China Sea"),
}
SEA_NAMES: Final[Mapping[str, str]] = {
    "東シナ海": "East China Sea",
    "日本海": "Sea of Japan",
    "太平洋": "Pacific",
    "フィリピン海": "Pacific",
    "オホーツク海": "Sea of Okhotsk",
    "南シナ海": "South China Sea",
    "黄海": "Yellow Sea",
    "渤海": "Bohai Sea",
    "ベーリング海": "Bering Sea",
}
HEADINGS: Final[Mapping[str, str]] = {
    "北": "north", "北北東": "north-northeast", "北東": "northeast", "東北東": "east-northeast",
    "東": "east", "東南東": "east-southeast", "南東": "southeast", "南南東": "south-southeast",
    "南": "south", "南南西": "south-southwest", "南西": "southwest", "西南西": "west-southwest",
    "西": "west", "西北西": "west-northwest", "北西": "northwest", "北北西": "north-northwest",
}  # fmt: skip


@functools.cache
def _strait_zone(gate: str) -> tuple[str, str, tuple[str, str] | None, tuple[float, float] | None]:
    """(zone id, name, its two sides, a point in it) of a strait the releases name."""
    if gate in GEO_GATE_IDS:
        from_geo = _geo_zone(GEO_GATE_IDS[gate])
        if from_geo is not None:
            return from_geo
    zone_id, name, sides = STRAIT_ZONES.get(gate, (f"strait-{gate}", gate, ""))
    first, _, second = sides.partition("|")
    where = STRAITS.get(gate)
    return zone_id, name, (first, second) if second else None, where[:2] if where else None


def _geo_zone(
    zone_id: str,
) -> tuple[str, str, tuple[str, str] | None, tuple[float, float] | None] | None:
    geography = load_geography()
    if zone_id not in geography:
        return None
    zone = geography.zone(zone_id)
    gate = _gate(zone_id)
    sides = None
    if zone.left_side is not None and zone.right_side is not None:
        sides = (zone.left_side.name, zone.right_side.name)
    return zone.id, zone.name, sides, (gate[0], gate[1]) if gate else None


def _direction(transit: PressTransit, sides: tuple[str, str] | None) -> str | None:
    """``East China Sea to Sea of Japan`` when it headed for a side of the strait; else the
    heading the release gives (``northeastbound``)."""
    toward = SEA_NAMES.get(transit.toward or "")
    if sides is not None and toward in sides:
        return f"{sides[0] if toward == sides[1] else sides[1]} to {toward}"
    word = (transit.heading or "").removesuffix("進")
    return f"{HEADINGS[word]}bound" if word in HEADINGS else None


def transit_events(activity: PressActivity, observation: Observation) -> list[Event]:
    """The ``strait_transit`` events of a ship's passages the release names, one per strait.

    Their time is the observation's (estimated within its span); the location is the strait's.
    """
    if observation.kind != "sea" or observation.retracted:
        return []
    transits = activity.transits or tuple(PressTransit(gate=gate) for gate in activity.straits)
    events: list[Event] = []
    for transit in transits:
        zone_id, name, sides, where = _strait_zone(transit.gate)
        span = observation_span(observation)
        words = "".join(filter(None, (transit.heading, transit.toward and f"→{transit.toward}")))
        events.append(
            Event(
                id=event_id(observation, "strait_transit", zone_id, 0),
                kind="strait_transit",
                at=observation.observed_at,
                zone=name,
                direction=_direction(transit, sides),
                location=Point(coordinates=where) if where else None,
                observations=(observation.key,),
                origin=observation.origin,
                platform=observation.platform,
                remarks=f"{zone_id}: the passage as the release reports it"
                + (f" ({words})" if words else ""),
                interval=span or msgspec.UNSET,
                estimated=True if span else msgspec.UNSET,
            )
        )
    return events


def _texts(path: Path, max_records: int) -> list[tuple[str, str, str | None]]:
    """(release name, text, url) of every release in a file."""
    if path.suffix.lower() == ".txt":
        return [(path.name, read_text(path), None)]
    document = read_json(path)
    texts = document.get("texts") if isinstance(document, dict) else None
    if not isinstance(texts, dict):
        raise ImportFileError(f"{path}: no 'texts' object (release name → {{url, text}})")
    if len(texts) > max_records:
        raise ImportFileError(f"{path}: {len(texts)} releases, more than {max_records}")
    found: list[tuple[str, str, str | None]] = []
    for name, entry in texts.items():
        text = entry.get("text") if isinstance(entry, dict) else entry
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(text, str):
            raise ImportFileError(f"{path}: release {name!r} has no text")
        if len(text) > MAX_TEXT_CHARS:
            raise ImportFileError(f"{path}: release {name!r} is longer than {MAX_TEXT_CHARS}")
        found.append((str(name), text, url if isinstance(url, str) else None))
    return found


class PressImport(NamedTuple):
    """What the releases of an import give: records, and the events they state."""

    records: list[Record]
    events: dict[tuple[str, int], list[Event]]
    """Events by the (id, version) of the observation they rest on."""


def read_jso_press_reported(
    paths: Sequence[Path],
    *,
    identify: Identify = catalogue_identify,
    max_records: int = MAX_RECORDS,
) -> PressImport:
    """Every release in the files, as observations, skipped releases and refusals, with the
    strait transits they state. Corrections apply to the releases read with them.

    Every file is read and checked first: a truncated or mis-encoded file raises
    :class:`ImportFileError` and yields nothing.
    """
    texts = [(path.name, entry) for path in paths for entry in _texts(path, max_records)]
    reads = [
        _Read(file_name, url, parse_press_release(text, source_name=name))
        for file_name, (name, text, url) in texts
    ]
    records: list[Record] = []
    events: dict[tuple[str, int], list[Event]] = {}
    corrections: Counter[str] = Counter()
    order = {id(read): number for number, read in enumerate(reads)}
    for read in sorted(reads, key=lambda r: _in_order(r, order[id(r)])):
        if read.release.correction is None:
            produced = _release_records(
                read.release, file_name=read.file_name, url=read.url, identify=identify
            )
        else:
            target = corrected_release(
                read.release.correction, [r.release for r in reads], issued=read.release
            )
            key = target.source_name if target is not None else read.release.source_name
            corrections[key] += 1
            produced = _correction_records(read, reads, 1 + corrections[key], identify)
        for where, item, activity in produced:
            records.append((where, item))
            if isinstance(item, Observation) and activity is not None:
                found = transit_events(activity, item)
                if found:
                    events[item.key] = found
    return PressImport(records=records, events=events)


def _in_order(read: _Read, number: int) -> tuple[bool, str, int]:
    """Releases as the files have them, then the corrections in the order they were issued."""
    release = read.release
    if release.correction is None:
        return (False, "", number)
    issued = release.release_date.isoformat() if release.release_date else ""
    return (True, issued, number)


def read_jso_press(
    path: Path, *, identify: Identify = catalogue_identify, max_records: int = MAX_RECORDS
) -> list[Record]:
    """Every release in one file, as observations, skipped releases and refusals.

    The whole file is read and checked first: a truncated or mis-encoded file raises
    :class:`ImportFileError` and yields nothing.
    """
    return read_jso_press_reported([path], identify=identify, max_records=max_records).records
