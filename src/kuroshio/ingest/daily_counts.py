"""Importer for daily PLA activity counts: aircraft and vessels per day, carrier, strait passages.

Reads the pla-dashboard CSVs (``daily_counts_to_2024.csv``: Taiwan MND daily aircraft count and
Japan-reported strait passages; ``japan_strait_transits.csv``: the same per day with the vessel
count) into the ``daily_counts`` table of the node's store file. It is not an observation source.

Representation: a daily figure has no position, time of day or platform, so it is not an
Observation (which needs a geometry) and is not exchanged with partners. It is reference data
for reports: one row per (dataset, local date) in a table this module creates through
``store.transaction()``. A file is read row by row and written in one transaction (a file found
bad at its end stores nothing); re-importing
the same file changes nothing, and a corrected figure replaces the old one (counted as corrected).

Validation: each value is checked against what its column holds (a date, a count in 0..1000, a
0/1 flag, a country code, free text, the weekday of the date) instead of trusting its position.
When a row does not fit, the smallest shift of a block of cells by one column (into an empty
cell) that makes every value fit is taken, and only if every such smallest shift gives the same
figures; otherwise the row is rejected as shifted. A 0/1 in the carrier column beside an empty
aircraft count fits both readings and is kept where it stands.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from kuroshio.errors import ImportFileError, ImportRecordError
from kuroshio.ingest.load import LoadSummary
from kuroshio.ingest.source_files import MAX_RECORDS, CsvStream, SkippedRecord, whole_number
from kuroshio.store.backend import NodeStore
from kuroshio.store.daily_counts import FIGURES
from kuroshio.store.transaction import Transaction

IMPORTER: Final = "daily-counts"
MAX_DAILY_COUNT: Final = 1_000
"""Above any day on record (the most aircraft in one MND daily report is 153)."""
EARLIEST_DAY: Final = dt.date(2000, 1, 1)
LATEST_DAY: Final = dt.date(2100, 1, 1)


class DailyCount(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of one day in one dataset; None where the source gives nothing."""

    dataset: str
    day: dt.date
    aircraft: int | None = None
    vessels: int | None = None
    carrier: int | None = None
    yonaguni: int | None = None
    miyako: int | None = None
    osumi: int | None = None
    tsushima: int | None = None
    record: str = ""
    note: str | None = None
    """How the row was repaired, when it was (e.g. columns shifted back)."""

    def figures(self) -> tuple[int | None, ...]:
        return tuple(getattr(self, name) for name in FIGURES)


DailyRecord = tuple[str, DailyCount | ImportRecordError]


# --- what each column holds ------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CODE = re.compile(r"[A-Za-z]{2,3}")
_YEAR_MONTH = re.compile(r"(\d{2})-([A-Z][a-z]{2})")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAYS_ZH = tuple(f"星期{c}" for c in "一二三四五六日")
_FLAGS = {"0": 0, "0.0": 0, "1": 1, "1.0": 1, "False": 0, "True": 1}

Check = Callable[[str, dt.date | None], str | None]
"""A column's rule: the value (stripped, non-empty) and the row's date → a problem, or None."""


def parse_day(text: str) -> dt.date:
    """A date written Y/M/D (``2022/8/5``) or ISO; ValueError otherwise."""
    parts = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", text.strip())
    if parts is None:
        raise ValueError(f"date {text[:30]!r} is not Y/M/D")
    day = dt.date(int(parts[1]), int(parts[2]), int(parts[3]))
    if not EARLIEST_DAY <= day < LATEST_DAY:
        raise ValueError(f"date {text!r} is outside {EARLIEST_DAY.year}–{LATEST_DAY.year}")
    return day


def _count(value: str, _: dt.date | None) -> str | None:
    shown = value[:30] + ("…" if len(value) > 30 else "")
    if not _NUMBER.fullmatch(value):
        return f"{shown!r} is not a number"
    number = whole_number(value)
    if number is None or not 0 <= number <= MAX_DAILY_COUNT:
        return f"{shown!r} is not a whole count in 0..{MAX_DAILY_COUNT}"
    return None


def _flag(value: str, _: dt.date | None) -> str | None:
    return None if value in _FLAGS else f"{value[:30]!r} is not a 0/1 flag"


def _code(value: str, _: dt.date | None) -> str | None:
    return None if _CODE.fullmatch(value) else f"{value[:30]!r} is not a country code"


def _text(value: str, _: dt.date | None) -> str | None:
    if _NUMBER.fullmatch(value) or _CODE.fullmatch(value) or value in _FLAGS:
        return f"{value[:30]!r} looks like a value of another column, not text"
    return None


def _number(value: str, _: dt.date | None) -> str | None:
    return None if _NUMBER.fullmatch(value) else f"{value[:30]!r} is not a number"


def _anything(value: str, _: dt.date | None) -> str | None:
    return None


def _date_part(index: int) -> Check:
    def check(value: str, day: dt.date | None) -> str | None:
        if not _NUMBER.fullmatch(value):
            return f"{value[:30]!r} is not a number"
        if day is not None and whole_number(value) != (day.year, day.month, day.day)[index]:
            return f"{value[:30]!r} disagrees with the date {day.isoformat()}"
        return None

    return check


def _year_month(value: str, day: dt.date | None) -> str | None:
    if not _YEAR_MONTH.fullmatch(value):
        return f"{value[:30]!r} is not YY-Mon"
    if day is not None and value != day.strftime("%y-%b"):
        return f"{value!r} disagrees with the date {day.isoformat()}"
    return None


def _weekday(names: tuple[str, ...]) -> Check:
    def check(value: str, day: dt.date | None) -> str | None:
        if value not in names:
            return f"{value[:30]!r} is not a weekday"
        if day is not None and names.index(value) != day.weekday():
            return f"{value!r} is not the weekday of {day.isoformat()}"
        return None

    return check


class Schema(msgspec.Struct, frozen=True):
    """One CSV layout: its name, the columns it must have, what each column holds."""

    dataset: str
    required: tuple[str, ...]
    checks: dict[str, Check]
    figures: dict[str, str]
    """Figure name → column it is read from."""


MND_DAILY: Final = Schema(
    dataset="daily_counts",
    required=("date", "pla_aircraft_sorties"),
    checks={
        "year": _date_part(0),
        "month": _date_part(1),
        "day": _date_part(2),
        "year_month": _year_month,
        "weekday": _weekday(_WEEKDAYS),
        "weekday_zh": _weekday(_WEEKDAYS_ZH),
        "pla_aircraft_sorties": _count,
        "china_carrier_present": _flag,
        "country1": _code,
        "country2": _code,
        "US_Taiwan_interaction": _text,
        "Political_statement": _text,
        "Foreign_battleship": _text,
        "sentiment_score": _number,
        "sentiment_label": _text,
        "與那國": _flag,
        "宮古": _flag,
        "大禹": _flag,
        "對馬": _flag,
        "國家": _text,
    },
    figures={
        "aircraft": "pla_aircraft_sorties",
        "carrier": "china_carrier_present",
        "yonaguni": "與那國",
        "miyako": "宮古",
        "osumi": "大禹",
        "tsushima": "對馬",
    },
)
JAPAN_DAILY: Final = Schema(
    dataset="japan_strait_transits",
    required=(
        "date",
        "pla_aircraft_sorties",
        "plan_vessel_sorties",
        "與那國",
        "宮古",
        "大禹",
        "對馬",
    ),
    checks={
        "空中": _flag,
        "聯合演訓": _flag,
        "艦通過": _flag,
        "航母活動": _flag,
        "與那國": _flag,
        "宮古": _flag,
        "大禹": _flag,
        "對馬": _flag,
        "進": _flag,
        "出": _flag,
        "艦型": _text,
        "備考": _anything,
        "pla_aircraft_sorties": _count,
        "plan_vessel_sorties": _count,
        "remark": _anything,
        "國家": _text,
    },
    figures={
        "aircraft": "pla_aircraft_sorties",
        "vessels": "plan_vessel_sorties",
        "carrier": "航母活動",
        "yonaguni": "與那國",
        "miyako": "宮古",
        "osumi": "大禹",
        "tsushima": "對馬",
    },
)


def schema_for(header: Sequence[str]) -> Schema:
    """The layout a header belongs to (the Japan file is the one with a vessel count)."""
    return JAPAN_DAILY if "plan_vessel_sorties" in header else MND_DAILY


# --- rows ------------------------------------------------------------------------------------


def row_problems(schema: Schema, header: Sequence[str], cells: Sequence[str]) -> list[str]:
    """Every value that does not fit its column, as 'column: problem'."""
    values = dict(zip(header, (cell.strip() for cell in cells), strict=True))
    try:
        day: dt.date | None = parse_day(values.get("date", ""))
    except ValueError as exc:
        return [f"date: {exc}"]
    problems = []
    for column, value in values.items():
        check = schema.checks.get(column)
        if value and check is not None:
            problem = check(value, day)
            if problem is not None:
                problems.append(f"{column}: {problem}")
    return problems


def _shifted_back(cells: Sequence[str]) -> list[tuple[int, list[str]]]:
    """Every way of moving one block of cells by one column into an empty cell, with its length.

    A block shifted right by one left an empty cell at its start and used up an empty cell after
    it; moving it back takes the empty cell out at ``start`` and puts one in at ``end``. The
    reverse (a block shifted left) likewise. Rows one cell too long or short are covered by
    taking out or putting in one empty cell.
    """
    width = len(cells)
    out: list[tuple[int, list[str]]] = []
    for start in range(width):
        if cells[start].strip():
            continue
        for end in range(start + 1, width + 1):
            moved_left = [*cells[:start], *cells[start + 1 : end], "", *cells[end:]]
            out.append((end - start, moved_left))
        for end in range(start):
            moved_right = [*cells[:end], "", *cells[end:start], *cells[start + 1 :]]
            out.append((start - end, moved_right))
    return out


def _figures(schema: Schema, header: Sequence[str], cells: Sequence[str]) -> dict[str, int | None]:
    values = dict(zip(header, (cell.strip() for cell in cells), strict=True))
    figures: dict[str, int | None] = {}
    for name, column in schema.figures.items():
        value = values.get(column, "")
        if not value:
            figures[name] = None
        elif name in ("aircraft", "vessels"):
            figures[name] = whole_number(value)
        else:
            figures[name] = _FLAGS[value]
    return figures


def _fit(
    schema: Schema, header: Sequence[str], cells: Sequence[str]
) -> tuple[list[str], str | None]:
    """The row's cells as they fit the columns, and how they were moved (None: as written).

    Raises ValueError naming the values that do not fit when no unambiguous shift exists.
    """
    width = len(header)
    candidates: list[tuple[int, list[str]]]
    if len(cells) == width:
        problems = row_problems(schema, header, cells)
        if not problems:
            return list(cells), None
        candidates = _shifted_back(cells)
    elif len(cells) == width + 1:
        problems = [f"{len(cells)} fields where the header has {width}"]
        candidates = [(0, [*cells[:i], *cells[i + 1 :]]) for i, c in enumerate(cells) if not c]
    elif len(cells) == width - 1:
        problems = [f"{len(cells)} fields where the header has {width}"]
        candidates = [(0, [*cells[:i], "", *cells[i:]]) for i in range(len(cells) + 1)]
    else:
        raise ValueError(f"{len(cells)} fields where the header has {width}")
    fitting = [(size, c) for size, c in candidates if not row_problems(schema, header, c)]
    if not fitting:
        raise ValueError("values do not fit their columns: " + "; ".join(problems[:4]))
    smallest = min(size for size, _ in fitting)
    best = [c for size, c in fitting if size == smallest]
    if len({tuple(_figures(schema, header, c).items()) for c in best}) > 1:
        raise ValueError(
            "columns are shifted and the figures could be read more than one way: "
            + "; ".join(problems[:4])
        )
    moved = [header[i] for i, (a, b) in enumerate(zip(cells, best[0], strict=False)) if a != b]
    return best[0], f"shifted columns put back ({', '.join(moved[:6])}): " + problems[0]


def read_daily_counts(path: Path, *, max_records: int = MAX_RECORDS) -> list[DailyRecord]:
    """Every row of a daily-counts CSV: a validated day, a skipped duplicate, or a refusal.

    The whole file is read; a mis-encoded or truncated file, or one missing required columns,
    raises :class:`ImportFileError`.
    """
    return list(stream_daily_counts(path, max_records=max_records))


def stream_daily_counts(path: Path, *, max_records: int = MAX_RECORDS) -> Iterator[DailyRecord]:
    """The rows of a daily-counts CSV as they are read: a validated day, a skipped duplicate, or
    a refusal. A file missing required columns raises :class:`ImportFileError` at once; a
    mis-encoded or truncated one where it shows (store the rows in one transaction, as
    :func:`store_daily_counts` does). Memory holds one row and one entry per day.
    """
    table = CsvStream(path, ("date", "pla_aircraft_sorties"), max_records=max_records)
    schema = schema_for(table.header)
    missing = [name for name in schema.required if name not in table.header]
    if missing:
        raise ImportFileError(f"{path}: missing required column(s) {', '.join(missing)}")
    header = table.header
    by_day: dict[dt.date, tuple[tuple[int | None, ...], str]] = {}
    for line, cells in table.rows():
        location = table.location(line)
        try:
            fitted, note = _fit(schema, header, cells)
            day = parse_day(dict(zip(header, fitted, strict=True))["date"])
            count = DailyCount(
                dataset=schema.dataset,
                day=day,
                record=location,
                note=note,
                **_figures(schema, header, fitted),
            )
        except ValueError as exc:
            yield location, ImportRecordError(location, str(exc))
            continue
        first = by_day.get(day)
        if first is None:
            by_day[day] = (count.figures(), location)
            yield location, count
        elif first[0] == count.figures():
            reason = f"repeated row: the figures of {day.isoformat()} again, as on {first[1]}"
            yield location, SkippedRecord(location, reason)
        else:
            reason = f"conflicting rows: figures of {day.isoformat()} differ from {first[1]}"
            yield location, ImportRecordError(location, reason)


# --- the table ------------------------------------------------------------------------------


def store_daily_counts(store: NodeStore, records: Iterable[DailyRecord]) -> LoadSummary:
    """Write the validated days in one transaction; counts are new / corrected / unchanged."""
    summary = LoadSummary()
    with store.transaction() as tx:
        for _, item in records:
            summary.read += 1
            if isinstance(item, ImportRecordError):
                summary.rejected.append(item)
                continue
            _upsert(tx, item, summary)
    return summary


def _upsert(tx: Transaction, count: DailyCount, summary: LoadSummary) -> None:
    day = count.day.isoformat()
    stored = tx.daily_counts.figures(count.dataset, day)
    if stored == count.figures():
        summary.unchanged += 1
        return
    tx.daily_counts.put(count.dataset, day, count.figures(), count.record)
    if stored is None:
        summary.inserted += 1
    else:
        summary.superseded += 1


def daily_figures(store: NodeStore, dataset: str = MND_DAILY.dataset) -> dict[dt.date, DailyCount]:
    """The stored days of one dataset (empty when nothing was imported)."""
    with store.transaction() as tx:
        rows = tx.daily_counts.days(dataset)
    result: dict[dt.date, DailyCount] = {}
    for day, figures, record in rows:
        values: dict[str, Any] = dict(zip(FIGURES, figures, strict=True))
        result[dt.date.fromisoformat(day)] = DailyCount(
            dataset=dataset, day=dt.date.fromisoformat(day), record=record, **values
        )
    return result
