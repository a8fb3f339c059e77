"""The audit log on a real SQLite file: it verifies when whole and says where and why when not."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuroshio.audit import (
    AUDIT_KINDS,
    SECRET_KEY_WORDS,
    SIGNATURE_CONTEXT,
    AuditHead,
    AuditLog,
    entry_hash,
    log_head,
    verify_log,
)
from kuroshio.errors import AuditError
from kuroshio.pki import create_identity, public_key_bytes_of
from kuroshio.store.sqlite import SQLiteStore

KINDS = sorted(AUDIT_KINDS)


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "node.sqlite"


def _fill(path: Path, key: ed25519.Ed25519PrivateKey, count: int = 1_000) -> AuditHead:
    store = SQLiteStore(path)
    log = AuditLog(store, key, "TWN")
    for start in range(0, count, 100):
        with store.transaction() as tx:
            log.append_many(
                tx,
                [
                    (
                        KINDS[seq % len(KINDS)],
                        f"batch JPN/{seq}",
                        {"partner": "JPN", "items": seq % 50, "released": seq % 3 != 0},
                    )
                    for seq in range(start + 1, min(start + 100, count) + 1)
                ],
            )
    head = log.head()
    store.close()
    return head


def _tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """What someone with write access to the file can do: drop the guards and rewrite rows."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        for sql, parameters in statements:
            conn.execute(sql, parameters)
    conn.close()


def _verify(
    path: Path, key: ed25519.Ed25519PrivateKey, known_head: AuditHead | None = None
) -> list[tuple[int, str]]:
    with SQLiteStore(path) as store, store.transaction() as tx:
        report = verify_log(tx.audit, public_key_bytes_of(key), known_head=known_head)
    return [(problem.seq, problem.reason) for problem in report.problems]


def test_a_thousand_entries_verify(database: Path, key: ed25519.Ed25519PrivateKey) -> None:
    head = _fill(database, key)
    log = AuditLog(SQLiteStore(database), key, "TWN")

    report = log.verify(known_head=head)

    assert report.ok and report.problems == []
    assert report.checked == 1_000
    assert report.head == head == log.head()
    assert [entry.seq for entry in log.entries()] == list(range(1, 1_001))


def test_edited_details_are_found_at_their_seq(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    _fill(database, key)
    _tamper(
        database,
        (
            "UPDATE audit_log SET details = replace(details, ?, ?) WHERE seq = ?",
            ('"items":7', '"items":0', 507),
        ),
    )
    assert _verify(database, key) == [(507, "edited")]


def test_a_deleted_entry_is_found_as_missing(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    _fill(database, key)
    _tamper(database, ("DELETE FROM audit_log WHERE seq = ?", (321,)))
    assert _verify(database, key) == [(321, "missing")]


def test_swapped_entries_are_found_as_reordered(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    _fill(database, key)
    columns = "at, party, kind, subject, details, prev_hash, hash, signature"
    conn = sqlite3.connect(database)
    first = conn.execute(f"SELECT {columns} FROM audit_log WHERE seq = 300").fetchone()
    second = conn.execute(f"SELECT {columns} FROM audit_log WHERE seq = 700").fetchone()
    conn.close()
    assignments = ", ".join(f"{column} = ?" for column in columns.split(", "))
    _tamper(
        database,
        (f"UPDATE audit_log SET {assignments} WHERE seq = ?", (*second, 300)),
        (f"UPDATE audit_log SET {assignments} WHERE seq = ?", (*first, 700)),
    )

    with SQLiteStore(database) as store, store.transaction() as tx:
        report = verify_log(tx.audit, public_key_bytes_of(key))
    assert [(p.seq, p.reason) for p in report.problems] == [(300, "reordered"), (700, "reordered")]
    assert "signed as seq 700 is stored at seq 300" in report.problems[0].detail


def test_adjacent_swap_is_found_as_reordered(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    _fill(database, key, count=20)
    columns = "at, party, kind, subject, details, prev_hash, hash, signature"
    conn = sqlite3.connect(database)
    rows = {
        seq: conn.execute(f"SELECT {columns} FROM audit_log WHERE seq = ?", (seq,)).fetchone()
        for seq in (10, 11)
    }
    conn.close()
    assignments = ", ".join(f"{column} = ?" for column in columns.split(", "))
    _tamper(
        database,
        (f"UPDATE audit_log SET {assignments} WHERE seq = ?", (*rows[11], 10)),
        (f"UPDATE audit_log SET {assignments} WHERE seq = ?", (*rows[10], 11)),
    )
    assert _verify(database, key) == [(10, "reordered"), (11, "reordered")]


def test_a_truncated_tail_is_found_against_the_remembered_head(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    head = _fill(database, key)
    _tamper(database, ("DELETE FROM audit_log WHERE seq > ?", (990,)))

    # Cut at the end, the chain is whole by itself; the remembered head is what gives it away.
    assert _verify(database, key) == []
    assert _verify(database, key, known_head=head) == [(991, "truncated")]


def test_a_truncated_then_regrown_log_fails_at_the_remembered_head(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    head = _fill(database, key)
    _tamper(database, ("DELETE FROM audit_log WHERE seq > ?", (990,)))
    with SQLiteStore(database) as store:
        log = AuditLog(store, key, "TWN")
        with store.transaction() as tx:
            for seq in range(991, 1_001):
                log.append(tx, "decision", f"observation {seq}", {"release": False})

    assert _verify(database, key, known_head=head) == [(1_000, "head_mismatch")]


def test_a_flipped_signature_bit_is_found(database: Path, key: ed25519.Ed25519PrivateKey) -> None:
    _fill(database, key)
    conn = sqlite3.connect(database)
    signature = bytearray(
        conn.execute("SELECT signature FROM audit_log WHERE seq = 42").fetchone()[0]
    )
    conn.close()
    signature[17] ^= 0x04
    _tamper(database, ("UPDATE audit_log SET signature = ? WHERE seq = ?", (bytes(signature), 42)))

    assert _verify(database, key) == [(42, "bad_signature")]


def test_an_edit_rehashed_and_signed_with_another_key_is_found(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    _fill(database, key)
    forger = ed25519.Ed25519PrivateKey.generate()
    conn = sqlite3.connect(database)
    at, party, kind, subject, prev_hash = conn.execute(
        "SELECT at, party, kind, subject, prev_hash FROM audit_log WHERE seq = 250"
    ).fetchone()
    conn.close()
    details = b'{"items":0,"partner":"JPN","released":false}'
    digest = entry_hash(
        seq=250,
        at=at,
        party=party,
        kind=kind,
        subject=subject,
        details=details,
        prev_hash=prev_hash,
    )
    _tamper(
        database,
        (
            "UPDATE audit_log SET details = ?, hash = ?, signature = ? WHERE seq = 250",
            (details.decode(), digest, forger.sign(SIGNATURE_CONTEXT + digest)),
        ),
    )
    assert _verify(database, key) == [(250, "bad_signature")]


def test_an_entry_replaced_and_resigned_by_the_node_breaks_the_next_link(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    # Even the key holder cannot rewrite one entry quietly: its successor still names the old one.
    _fill(database, key)
    conn = sqlite3.connect(database)
    at, prev_hash = conn.execute("SELECT at, prev_hash FROM audit_log WHERE seq = 600").fetchone()
    conn.close()
    details = b'{"reason":"rewritten"}'
    digest = entry_hash(
        seq=600,
        at=at,
        party="TWN",
        kind="decision",
        subject="observation 600",
        details=details,
        prev_hash=prev_hash,
    )
    _tamper(
        database,
        (
            "UPDATE audit_log SET kind = 'decision', subject = 'observation 600', details = ?,"
            " hash = ?, signature = ? WHERE seq = 600",
            (details.decode(), digest, key.sign(SIGNATURE_CONTEXT + digest)),
        ),
    )
    assert _verify(database, key) == [(601, "broken_link")]


def test_append_commits_with_the_callers_transaction(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    store = SQLiteStore(database)
    log = AuditLog(store, key, "TWN")
    queued = ("JPN", "TWN:test:1", 1, b"{}", None, None, None, None)

    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.outbox.queue([queued])
        log.append(tx, "send", "batch JPN/1", {"items": 12})
        raise RuntimeError("transport gone before commit")
    assert log.head() == AuditHead(0, bytes(32))
    with store.transaction() as tx:
        assert not tx.outbox.holds("JPN", "TWN:test:1")

    with store.transaction() as tx:
        tx.outbox.queue([queued])
        entry = log.append(tx, "send", "batch JPN/1", {"items": 12})
    with store.reader() as reader, reader.snapshot() as snapshot:
        assert log_head(snapshot.audit) == (1, entry.hash)
        assert snapshot.outbox.holds("JPN", "TWN:test:1")


def test_uncommitted_entries_are_invisible_to_other_connections(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    store = SQLiteStore(database)
    log = AuditLog(store, key, "TWN")
    reader = store.reader()
    with store.transaction() as tx:
        log.append(tx, "ingest", "mnd_tracks 2024-05-23", {"records": 111})
        assert reader.read(lambda snapshot: log_head(snapshot.audit)).seq == 0
    assert reader.read(lambda snapshot: log_head(snapshot.audit)).seq == 1
    reader.close()


def test_the_table_refuses_updates_and_deletes(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    store = SQLiteStore(database)
    log = AuditLog(store, key, "TWN")
    with store.transaction() as tx:
        log.append(tx, "agreement_change", "TWN-JPN v2", {"version": 2})
    store.close()
    conn = sqlite3.connect(database)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET subject = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log")


def test_entries_filter_by_kind_time_and_seq(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    times = iter(
        dt.datetime(2024, 5, 23, 8, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=m) for m in range(10)
    )
    store = SQLiteStore(database)
    log = AuditLog(store, key, "JPN", clock=lambda: next(times))
    with store.transaction() as tx:
        written = log.append_many(
            tx,
            [
                ("receive", "batch TWN/1", {"items": 3}),
                ("verify_failure", "batch TWN/2", {"reason": "chain"}),
                ("receive", "batch TWN/3", {"items": 5}),
                ("receipt", "batch TWN/3", {"acked": 3}),
            ],
        )

    assert [e.seq for e in log.entries(kind="receive")] == [1, 3]
    assert [e.seq for e in log.entries(since=dt.datetime(2024, 5, 23, 8, 2, tzinfo=dt.UTC))] == [
        3,
        4,
    ]
    assert [e.seq for e in log.entries(after_seq=2)] == [3, 4]
    assert list(log.entries()) == written
    assert written[1].details == {"reason": "chain"}
    assert written[1].at == dt.datetime(2024, 5, 23, 8, 1, tzinfo=dt.UTC)


def test_a_node_identity_signs_the_log(tmp_path: Path) -> None:
    identity = create_identity(tmp_path / "node", "TWN", "twn-node-1")
    store = SQLiteStore(tmp_path / "node.sqlite")
    log = AuditLog(store, identity, identity.party)
    with store.transaction() as tx:
        log.append(tx, "ingest", "jso_tracks 2024-05-24", {"records": 9})
    assert log.verify().ok
    with store.transaction() as tx:
        assert verify_log(tx.audit, identity.public_key_bytes).ok
        assert not verify_log(tx.audit, ed25519.Ed25519PrivateKey.generate().public_key()).ok


def test_bad_records_are_refused_before_anything_is_written(
    database: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    store = SQLiteStore(database)
    log = AuditLog(store, key, "TWN")
    good = ("ingest", "file a", {"records": 1})

    with store.transaction() as tx:
        with pytest.raises(AuditError, match="looks like a secret"):
            log.append_many(tx, [good, ("send", "batch", {"link": {"api_token": "abc"}})])
        with pytest.raises(AuditError, match="private key"):
            log.append(tx, "agreement_change", "v3", {"note": "-----BEGIN PRIVATE KEY-----\nMC4C"})
        with pytest.raises(AuditError, match="kind 'deleted'"):
            log.append_many(tx, [good, ("deleted", "x", {})])
        with pytest.raises(AuditError, match="keep it under"):
            log.append(tx, "ingest", "file b", {"rows": list(range(5_000))})
        with pytest.raises(AuditError, match="subject"):
            log.append(tx, "ingest", "", {})
    with pytest.raises(AuditError, match="party"):
        AuditLog(store, key, "Taiwan")
    assert log.head().seq == 0


# --- property: any sequence verifies; any single tampering is found where it happened ----------

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: not any(word in k for word in SECRET_KEY_WORDS)
)
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20).filter(lambda t: "PRIVATE KEY-----" not in t),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)
_records = st.tuples(
    st.sampled_from(KINDS),
    st.text(min_size=1, max_size=30),
    st.dictionaries(_keys, _values, max_size=4),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_records, min_size=1, max_size=30),
    chunk=st.integers(1, 7),
    tamper=st.sampled_from(["details", "subject", "kind", "at", "delete", "signature"]),
    data=st.data(),
)
def test_any_log_verifies_and_any_single_tampering_is_found_where_it_happened(
    records: list[tuple[str, str, dict[str, object]]],
    chunk: int,
    tamper: str,
    data: st.DataObject,
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as folder:
        _any_log(Path(folder) / "node.sqlite", key, records, chunk, tamper, data)


def _any_log(
    path: Path,
    key: ed25519.Ed25519PrivateKey,
    records: list[tuple[str, str, dict[str, object]]],
    chunk: int,
    tamper: str,
    data: st.DataObject,
) -> None:
    store = SQLiteStore(path)
    log = AuditLog(store, key, "PHL")
    written = []
    for start in range(0, len(records), chunk):
        with store.transaction() as tx:
            written += log.append_many(tx, records[start : start + chunk])

    head = log.head()
    assert [entry.seq for entry in written] == list(range(1, len(records) + 1))
    assert list(log.entries()) == written
    assert log.verify(known_head=head).ok

    seq = data.draw(st.integers(1, len(records)), label="seq")
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    if tamper == "delete":
        conn.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
        expected = "truncated" if seq == len(records) else "missing"
    elif tamper == "signature":
        conn.execute(
            "UPDATE audit_log SET signature = ? WHERE seq = ?",
            (key.sign(b"something else"), seq),
        )
        expected = "bad_signature"
    else:
        replacement = {
            "details": '{"tampered":true}',
            "subject": "tampered",
            "kind": "receipt" if written[seq - 1].kind != "receipt" else "send",
            "at": "2000-01-01T00:00:00.000000Z",
        }[tamper]
        if tamper in ("details", "subject"):
            current = conn.execute(f"SELECT {tamper} FROM audit_log WHERE seq = ?", (seq,))
            if current.fetchone()[0] == replacement:
                replacement = replacement.replace("tampered", "changed")
        conn.execute(f"UPDATE audit_log SET {tamper} = ? WHERE seq = ?", (replacement, seq))
        expected = "edited"
    conn.commit()
    conn.close()

    report = log.verify(known_head=head)
    assert [(p.seq, p.reason) for p in report.problems] == [(seq, expected)]
