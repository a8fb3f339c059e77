"""Daily counts (pla-dashboard CSVs): values checked against their columns, shifts repaired."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kuroshio.errors import ImportRecordError
from kuroshio.ingest.daily_counts import (
    DailyCount,
    DailyRecord,
    daily_figures,
    read_daily_counts,
    store_daily_counts,
)
from kuroshio.ingest.source_files import SkippedRecord
from kuroshio.store.sqlite import SQLiteStore

DAILY = "pla-dashboard/daily_counts_to_2024.csv"
JAPAN = "pla-dashboard/japan_strait_transits.csv"
HEADER = (
    "date,year,month,day,year_month,weekday,weekday_zh,pla_aircraft_sorties,"
    "china_carrier_present,country1,country2,US_Taiwan_interaction,Political_statement,"
    "Foreign_battleship,sentiment_score,sentiment_label,與那國,宮古,大禹,對馬,國家"
)


def _days(records: list[DailyRecord]) -> dict[dt.date, DailyCount]:
    return {item.day: item for _, item in records if isinstance(item, DailyCount)}


@pytest.fixture(scope="module")
def daily(shared_data: Path) -> list[DailyRecord]:
    return read_daily_counts(shared_data / DAILY)


def test_every_day_is_read_and_repeated_rows_are_skipped(daily: list[DailyRecord]) -> None:
    assert len(daily) == 1448
    days = _days(daily)
    assert len(days) == 1435
    skipped = [item for _, item in daily if isinstance(item, SkippedRecord)]
    assert len(skipped) == 13
    assert all(s.reason.startswith("repeated row: ") for s in skipped)
    assert days[dt.date(2022, 8, 5)].aircraft == 49
    assert days[dt.date(2022, 8, 4)].aircraft == 22


def test_rows_shifted_right_in_the_text_columns_are_put_back(daily: list[DailyRecord]) -> None:
    repaired = {d.day: d for d in _days(daily).values() if d.note}
    assert sorted(repaired) == [
        dt.date(2024, 10, 10),
        dt.date(2024, 10, 14),
        dt.date(2024, 10, 26),
        dt.date(2024, 12, 21),
    ]
    joint_sword = repaired[dt.date(2024, 10, 14)]
    # 153 aircraft and a Miyako passage that Japan also reports that day (japan_strait_transits)
    assert (joint_sword.aircraft, joint_sword.carrier, joint_sword.miyako) == (153, 1, 1)
    assert joint_sword.yonaguni is None
    assert joint_sword.note is not None and "country1" in joint_sword.note


def test_japan_file_gives_vessel_counts(shared_data: Path) -> None:
    records = read_daily_counts(shared_data / JAPAN)
    days = _days(records)
    assert len(days) == len(records) == 1970
    assert (days[dt.date(2022, 8, 6)].aircraft, days[dt.date(2022, 8, 6)].vessels) == (20, 14)
    assert days[dt.date(2024, 10, 14)].miyako == 1


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "daily.csv"
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


def test_a_count_one_column_right_is_recovered_and_nonsense_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        # the sortie count sits in china_carrier_present, leaving its own cell empty
        "2023/9/13,2023.0,9.0,13.0,23-Sep,Wednesday,星期三,,68.0,,,,,,,,,,,,",
        # a weekday that is not the date's weekday cannot be put right by a shift
        "2023/9/14,2023.0,9.0,14.0,23-Sep,Monday,星期一,18.0,,,,,,,,,,,,,",
        "2023/9/15,,,,,,,-3,,,,,,,,,,,,,",
    )
    records = read_daily_counts(path)
    days = _days(records)
    assert days[dt.date(2023, 9, 13)].aircraft == 68
    assert days[dt.date(2023, 9, 13)].carrier is None
    refused = [str(item) for _, item in records if isinstance(item, ImportRecordError)]
    assert len(refused) == 2
    assert "daily.csv:3" in refused[0] and "weekday" in refused[0]
    assert "daily.csv:4" in refused[1] and "'-3'" in refused[1]


def test_store_is_idempotent_and_counts_corrections(
    tmp_path: Path, daily: list[DailyRecord]
) -> None:
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        first = store_daily_counts(store, daily)
        assert (first.inserted, first.unchanged, len(first.rejected)) == (1435, 0, 13)
        again = store_daily_counts(store, daily)
        assert (again.inserted, again.superseded, again.unchanged) == (0, 0, 1435)
        corrected = [
            (loc, DailyCount(dataset=d.dataset, day=d.day, aircraft=50, record=d.record))
            for loc, d in daily
            if isinstance(d, DailyCount) and d.day == dt.date(2022, 8, 5)
        ]
        assert store_daily_counts(store, corrected).superseded == 1
        assert daily_figures(store)[dt.date(2022, 8, 5)].aircraft == 50
