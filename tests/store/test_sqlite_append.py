"""The embedded store appends a whole call at once; each outcome must be as if one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuroshio.errors import StoreError
from kuroshio.model import Observation
from kuroshio.store import ObservationFilter, Outcome
from kuroshio.store.observations import prepare
from kuroshio.store.sqlite import SQLiteStore
from observations import observation


def _mixed_call() -> list[Observation]:
    return [
        observation(1),
        observation(1),  # the same record again: unchanged
        observation(1, remarks="edited"),  # same id and version, other content: conflict
        observation(2, version=2),
        observation(2, version=1),  # lower than current: history only
        observation(3, version=1),
        observation(3, version=2),  # supersedes inside the same call
        observation(4, version=3),
    ]


def test_one_call_gives_the_outcomes_and_rows_of_one_by_one_appends(tmp_path: Path) -> None:
    records = _mixed_call()
    with (
        SQLiteStore(tmp_path / "together.sqlite") as together,
        SQLiteStore(tmp_path / "apart.sqlite") as apart,
    ):
        together.append([observation(4, version=2)])
        apart.append([observation(4, version=2)])
        result = together.append(records)
        singles = [apart.append([record]).outcomes[0] for record in records]
        assert result.outcomes == singles
        assert result.outcomes == [
            Outcome.INSERTED,
            Outcome.UNCHANGED,
            Outcome.CONFLICT,
            Outcome.INSERTED,
            Outcome.STALE,
            Outcome.INSERTED,
            Outcome.SUPERSEDED,
            Outcome.SUPERSEDED,
        ]
        assert [c[:2] for c in result.conflicts] == [("TWN:test:1", 1)]
        for store in (together, apart):
            current = {o.id: o for o in store.iter_query(ObservationFilter())}
            assert {key: o.version for key, o in current.items()} == {
                "TWN:test:1": 1,
                "TWN:test:2": 2,
                "TWN:test:3": 2,
                "TWN:test:4": 3,
            }
            assert current["TWN:test:1"].remarks == observation(1).remarks
            assert [o.version for o in store.history("TWN:test:2")] == [1, 2]
        assert together.count_versions() == apart.count_versions() == 7


def test_a_large_call_gives_the_rows_of_one_by_one_appends(tmp_path: Path) -> None:
    """A call of many records (written several dozen rows to a statement) stores what the same
    records appended one by one store: every version, the same current rows."""
    records = [observation(n, version=1 + n % 2) for n in range(230)]
    records += [observation(n, version=3, lon=121.0) for n in range(0, 230, 9)]
    records += [observation(n, version=1) for n in range(1, 230, 4)]  # stale or unchanged
    with (
        SQLiteStore(tmp_path / "together.sqlite") as together,
        SQLiteStore(tmp_path / "apart.sqlite") as apart,
    ):
        result = together.append(records)
        singles = [apart.append([record]).outcomes[0] for record in records]
        assert result.outcomes == singles
        for store in (together, apart):
            assert store.count_versions() == len({(r.id, r.version) for r in records})
        current = {o.id: o for o in together.iter_query(ObservationFilter())}
        assert current == {o.id: o for o in apart.iter_query(ObservationFilter())}
        assert len(current) == 230
        assert current["TWN:test:9"].version == 3
        assert current["TWN:test:9"].geometry == observation(9, lon=121.0).geometry


def test_current_rows_point_at_their_own_history_rows_after_earlier_appends(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.append([observation(n) for n in range(5)])
        store.append([observation(n, version=2, lon=120.0 + n) for n in range(3, 8)])
        for n in range(8):
            stored = store.get(f"TWN:test:{n}")
            assert stored is not None
            assert stored.version == (2 if n >= 3 else 1)
            if n >= 3:
                assert stored.geometry == observation(n, lon=120.0 + n).geometry


def test_rows_prepared_before_the_transaction_store_what_an_append_stores(
    tmp_path: Path,
) -> None:
    records = _mixed_call()
    with (
        SQLiteStore(tmp_path / "prepared.sqlite") as early,
        SQLiteStore(tmp_path / "plain.sqlite") as plain,
    ):
        rows = prepare(records)
        with early.transaction() as tx:
            outcomes = tx.observations.append(records, rows).outcomes
        assert outcomes == plain.append(records).outcomes
        for record in records:
            assert early.history(record.id) == plain.history(record.id)
        with (
            pytest.raises(StoreError, match="7 prepared rows for 8 observations"),
            early.transaction() as tx,
        ):
            tx.observations.append(records, rows[:-1])
        assert early.count_versions() == plain.count_versions()
