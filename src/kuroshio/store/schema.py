"""Every table a node keeps, and the numbered migrations that bring a store file up to date.

One list, :data:`MIGRATIONS`, for every backend: each step is SQL written once in a portable
subset (SQLite's types and ``WITHOUT ROWID``, translated for PostgreSQL by :func:`for_postgres`)
or a function of an open connection for steps that move data. A SQLite store counts the steps
it has taken in ``PRAGMA user_version``; the PostgreSQL store keeps the same count in its
``meta`` table. Steps only add: a table or column once shipped is never changed in place.

A store made before migrations were numbered (its tables created on demand by each part of the
node) is recognised by its tables and taken from step 0 like a new one: every ``CREATE`` here is
``IF NOT EXISTS`` and every later step checks before it changes anything, so no row is lost.
This module holds the schema; it opens nothing itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, Protocol

from kuroshio.merkle import appended_nodes


class Connection(Protocol):
    """What a migration step needs of a DB-API connection (sqlite3 or psycopg)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


class Migration(NamedTuple):
    """One numbered step: ``NNNN_name`` and its statements (or a function that moves data)."""

    name: str
    statements: Sequence[str] = ()
    run: Callable[[Connection, str], None] | None = None
    """A data step: called with the connection and the dialect (``sqlite`` or ``postgres``)."""


_INITIAL: Final = (
    # --- observations: every version kept, the current one indexed -------------------------
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS observation_versions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        digest BLOB NOT NULL,
        body BLOB NOT NULL,
        stored_at INTEGER NOT NULL,
        UNIQUE (id, version)
    )""",
    """CREATE TABLE IF NOT EXISTS current (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        seq INTEGER NOT NULL REFERENCES observation_versions (seq),
        origin TEXT NOT NULL,
        kind TEXT NOT NULL,
        t0 INTEGER NOT NULL,
        t1 INTEGER NOT NULL,
        min_lon REAL NOT NULL,
        min_lat REAL NOT NULL,
        max_lon REAL NOT NULL,
        max_lat REAL NOT NULL,
        platform_class TEXT,
        platform_type TEXT,
        retracted INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS current_time ON current (t0, id)",
    "CREATE INDEX IF NOT EXISTS current_origin ON current (origin, t0)",
    """CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        at INTEGER NOT NULL,
        zone TEXT NOT NULL,
        origin TEXT NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS events_at ON events (at, id)",
    # --- the sending side of links -----------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS outbox (
        row INTEGER PRIMARY KEY AUTOINCREMENT,
        partner TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        item BLOB NOT NULL,
        not_before INTEGER,
        seq INTEGER,
        origin_proof BLOB
    )""",
    """CREATE TABLE IF NOT EXISTS sent_batches (
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        first_row INTEGER NOT NULL,
        last_row INTEGER NOT NULL,
        count INTEGER NOT NULL,
        header BLOB NOT NULL,
        signature BLOB NOT NULL,
        hash BLOB NOT NULL,
        sealed_at INTEGER NOT NULL,
        receipt BLOB,
        receipt_signature BLOB,
        acked_at INTEGER,
        PRIMARY KEY (partner, seq)
    ) WITHOUT ROWID""",
    # --- the receiving side of links ---------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS inbox_links (
        partner TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        last_hash BLOB NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS inbox_batches (
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        header BLOB NOT NULL,
        signature BLOB NOT NULL,
        leaves BLOB NOT NULL,
        receipt BLOB NOT NULL,
        receipt_signature BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (partner, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS inbox_items (
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        position INTEGER NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        sent_provenance BLOB NOT NULL,
        PRIMARY KEY (partner, seq, position)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS inbox_items_by_id ON inbox_items (id, version)",
    """CREATE TABLE IF NOT EXISTS origin_proofs (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        origin TEXT NOT NULL,
        proof BLOB NOT NULL,
        verified INTEGER NOT NULL,
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID""",
    # --- the reciprocity ledger --------------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS ledger (
        flow TEXT NOT NULL,
        partner TEXT NOT NULL,
        item TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        observed_at INTEGER NOT NULL,
        at INTEGER NOT NULL,
        sorties INTEGER NOT NULL,
        grid_km REAL,
        retracted INTEGER NOT NULL,
        novel INTEGER,
        PRIMARY KEY (flow, partner, item, version)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger (partner, at)",
    """CREATE TABLE IF NOT EXISTS reciprocity_state (
        partner TEXT PRIMARY KEY,
        agreement TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        changed_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # --- the audit log -----------------------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        party TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        signature BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_kind ON audit_log (kind, seq)",
    # --- the public daily counts -------------------------------------------------------------
    """CREATE TABLE IF NOT EXISTS daily_counts (
        dataset TEXT NOT NULL,
        day TEXT NOT NULL,
        aircraft INTEGER,
        vessels INTEGER,
        carrier INTEGER,
        yonaguni INTEGER,
        miyako INTEGER,
        osumi INTEGER,
        tsushima INTEGER,
        record TEXT NOT NULL,
        PRIMARY KEY (dataset, day)
    ) WITHOUT ROWID""",
)

_SQLITE_AUDIT_GUARDS: Final = (
    # The chain detects tampering; the triggers stop honest code from doing it by mistake.
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)
_POSTGRES_AUDIT_GUARDS: Final = (
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
)


def _columns(conn: Connection, dialect: str, table: str) -> set[str]:
    if dialect == "sqlite":
        return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    ).fetchall()
    return {str(row[0]) for row in rows}


def _outbox_columns(conn: Connection, dialect: str) -> None:
    """Outboxes from before delays and relayed proofs get their columns, sealed items their
    batch (a no-op on any outbox made since)."""
    columns = _columns(conn, dialect, "outbox")
    if "seq" not in columns:
        conn.execute("ALTER TABLE outbox ADD COLUMN not_before INTEGER")
        conn.execute("ALTER TABLE outbox ADD COLUMN seq INTEGER")
        conn.execute(
            "UPDATE outbox SET seq = (SELECT b.seq FROM sent_batches b WHERE b.partner ="
            " outbox.partner AND outbox.row BETWEEN b.first_row AND b.last_row)"
        )
    if "origin_proof" not in columns:
        conn.execute("ALTER TABLE outbox ADD COLUMN origin_proof BLOB")
    conn.execute("DROP INDEX IF EXISTS outbox_by_partner")
    conn.execute("CREATE INDEX IF NOT EXISTS outbox_by_batch ON outbox (partner, seq, row)")


def _audit_guards(conn: Connection, dialect: str) -> None:
    for statement in _SQLITE_AUDIT_GUARDS if dialect == "sqlite" else _POSTGRES_AUDIT_GUARDS:
        conn.execute(statement)


_OUTBOX_AGREEMENT: Final = (
    # The digest of the agreement each item was released under; NULL for items queued before.
    "ALTER TABLE outbox ADD COLUMN agreement TEXT",
)

_OPERATORS: Final = (
    # Who may use the operator API: local operators, their bearer tokens and browser sessions
    # (tokens and sessions as the SHA-256 of the secret only).
    """CREATE TABLE IF NOT EXISTS operators (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT,
        created_at INTEGER NOT NULL,
        disabled INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS operator_tokens (
        digest BLOB PRIMARY KEY,
        label TEXT NOT NULL,
        operator TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        UNIQUE (operator, label)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS operator_sessions (
        digest BLOB PRIMARY KEY,
        operator TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

_AUDIT_TREE: Final = (
    # The audit log's Merkle tree: every complete subtree's hash (level 0: the leaves).
    """CREATE TABLE IF NOT EXISTS audit_tree (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    # The heads of its own log this node signed (in receipts it gave), and to whom.
    """CREATE TABLE IF NOT EXISTS audit_heads (
        size INTEGER NOT NULL,
        root BLOB NOT NULL,
        partner TEXT NOT NULL,
        signed_at INTEGER NOT NULL,
        PRIMARY KEY (partner, size)
    ) WITHOUT ROWID""",
    # The heads of their logs partners signed for this node (in their receipts), as received.
    """CREATE TABLE IF NOT EXISTS partner_heads (
        partner TEXT NOT NULL,
        size INTEGER NOT NULL,
        root BLOB NOT NULL,
        seq INTEGER NOT NULL,
        receipt BLOB NOT NULL,
        signature BLOB NOT NULL,
        consistent INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (partner, size)
    ) WITHOUT ROWID""",
)


def _audit_tree(conn: Connection, dialect: str) -> None:
    """The Merkle tree of the entries already in the log (leaf: the entry's hash)."""
    hashes = [bytes(row[0]) for row in conn.execute("SELECT hash FROM audit_log ORDER BY seq")]
    rows = appended_nodes(0, hashes, {})
    marks = "?, ?, ?" if dialect == "sqlite" else "%s, %s, %s"
    for row in rows:
        conn.execute(f"INSERT INTO audit_tree (level, idx, hash) VALUES ({marks})", row)


_HELLO_NONCES: Final = (
    # Link hellos' nonces seen lately, so that a restart does not open the door to a replay.
    """CREATE TABLE IF NOT EXISTS hello_nonces (
        nonce TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS hello_nonces_by_time ON hello_nonces (seen_at)",
)

_REVOCATIONS: Final = (
    # Partner keys revoked (key: a fingerprint, or * for every key of the party), and why.
    """CREATE TABLE IF NOT EXISTS revocations (
        party TEXT NOT NULL,
        key TEXT NOT NULL,
        reason TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        PRIMARY KEY (party, key)
    ) WITHOUT ROWID""",
)

_TRACKS_AND_FEEDS: Final = (
    # --- tracks: the newest update of each source track, for events derived along it --------
    """CREATE TABLE IF NOT EXISTS track_heads (
        origin TEXT NOT NULL,
        track TEXT NOT NULL,
        at INTEGER NOT NULL,
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        obs_id TEXT NOT NULL,
        obs_version INTEGER NOT NULL,
        first_at INTEGER NOT NULL,
        updates INTEGER NOT NULL,
        PRIMARY KEY (origin, track)
    ) WITHOUT ROWID""",
    # --- feeds: the status the process running them last reported ----------------------------
    """CREATE TABLE IF NOT EXISTS feed_status (
        feed TEXT PRIMARY KEY,
        reported_at INTEGER NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID""",
)

_LEDGER_TRACK: Final = (
    # The source track a ledger item is an update of: a track's updates are one sortie.
    "ALTER TABLE ledger ADD COLUMN track TEXT",
)

_MESSAGES: Final = (
    # --- the dialogue channel: every message sent or received, and where it stands ----------
    """CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        direction TEXT NOT NULL,
        partner TEXT NOT NULL,
        thread TEXT NOT NULL,
        kind TEXT NOT NULL,
        precedence TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        deadline INTEGER,
        state TEXT NOT NULL,
        escalations INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS messages_thread ON messages (thread, sent_at)",
    "CREATE INDEX IF NOT EXISTS messages_open ON messages (direction, state, deadline)",
    # --- standing requests a partner made of this node, or this node of a partner -----------
    """CREATE TABLE IF NOT EXISTS standing_requests (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        partner TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        cancelled_at INTEGER,
        body BLOB NOT NULL
    ) WITHOUT ROWID""",
    # --- search-and-rescue and disaster incidents, every version kept ------------------------
    """CREATE TABLE IF NOT EXISTS incidents (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        opened_by TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID""",
)

_OUTBOX_BY_AGREEMENT: Final = (
    # Before each batch is sealed, unsealed items released under an agreement no longer in
    # force are looked for: a range of this index, not a scan of the whole backlog.
    "CREATE INDEX IF NOT EXISTS outbox_unsealed_by_agreement ON outbox (partner, agreement)"
    " WHERE seq IS NULL",
)

_INBOX_ITEMS_BY_ITEM: Final = (
    # Where each received item sat, kept in the one order it is looked up in (an item version
    # and the partner that sent it): one B-tree per row instead of a table and an index.
    """CREATE TABLE inbox_item_places (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        position INTEGER NOT NULL,
        sent_provenance BLOB NOT NULL,
        PRIMARY KEY (id, version, partner, seq, position)
    ) WITHOUT ROWID""",
    "INSERT INTO inbox_item_places (id, version, partner, seq, position, sent_provenance)"
    " SELECT id, version, partner, seq, position, sent_provenance FROM inbox_items",
    "DROP TABLE inbox_items",
    "ALTER TABLE inbox_item_places RENAME TO inbox_items",
)


_CURRENT_WITHOUT_KEY: Final = (
    # ``current.seq`` names the history row written beside it in the same statement batch; the
    # foreign key checked that per row again (a seek into the history on SQLite, a trigger and a
    # query of its own on PostgreSQL: about a seventh of the server's work per item taken in).
    # The one place that writes both (``append`` of each store) keeps them together instead.
    """CREATE TABLE current_rows (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        origin TEXT NOT NULL,
        kind TEXT NOT NULL,
        t0 INTEGER NOT NULL,
        t1 INTEGER NOT NULL,
        min_lon REAL NOT NULL,
        min_lat REAL NOT NULL,
        max_lon REAL NOT NULL,
        max_lat REAL NOT NULL,
        platform_class TEXT,
        platform_type TEXT,
        retracted INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "INSERT INTO current_rows SELECT * FROM current",
    "DROP TABLE current",
    "ALTER TABLE current_rows RENAME TO current",
    "CREATE INDEX current_time ON current (t0, id)",
    "CREATE INDEX current_origin ON current (origin, t0)",
)


def _current_without_key(conn: Connection, dialect: str) -> None:
    """On SQLite the table is made again without the key (a constraint cannot be dropped from
    it); PostgreSQL drops the constraint in place."""
    if dialect == "sqlite":
        for statement in _CURRENT_WITHOUT_KEY:
            conn.execute(statement)
    else:
        conn.execute("ALTER TABLE current DROP CONSTRAINT IF EXISTS current_seq_fkey")


_GIVEN_WHOLE: Final = (
    # Item versions of other origins passed on to a partner unchanged, with their origin's proof:
    # the partner keeps them under the origin's own id, so a retraction must reach it there.
    """CREATE TABLE given_whole (
        partner TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (partner, id, version)
    ) WITHOUT ROWID""",
)


_LINK_STATUS: Final = (
    # What each sending link is doing now, as the process running the links last wrote it, for
    # the node's other processes (API workers) and ``kuroshio link status``.
    """CREATE TABLE link_status (
        partner TEXT PRIMARY KEY,
        status BLOB NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
)


_HISTORY_PLACES: Final = (
    # Where a received version sat in the batch that first brought it (sender, batch, position,
    # provenance as sent), in the history row it is stored with: one row fewer per item taken
    # in. ``inbox_items`` keeps the places of versions that arrive again (from another partner,
    # or once more), and every place kept before this step.
    "ALTER TABLE observation_versions ADD COLUMN sent_by TEXT",
    "ALTER TABLE observation_versions ADD COLUMN sent_seq INTEGER",
    "ALTER TABLE observation_versions ADD COLUMN sent_position INTEGER",
    "ALTER TABLE observation_versions ADD COLUMN sent_provenance BLOB",
)


_LEDGER_BY_PARTNER: Final = (
    # The ledger keyed by partner first: its reads (a partner's window, whether a partner was
    # given an item) are ranges of the key, so the second index a row took, by partner and
    # time, goes; a window is put in time order as it is read. The columns are written out
    # again, as each step that makes a table again does: a step, once shipped, never changes.
    """CREATE TABLE ledger_rows (
        flow TEXT NOT NULL,
        partner TEXT NOT NULL,
        item TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        observed_at INTEGER NOT NULL,
        at INTEGER NOT NULL,
        sorties INTEGER NOT NULL,
        grid_km REAL,
        retracted INTEGER NOT NULL,
        novel INTEGER,
        track TEXT,
        PRIMARY KEY (partner, flow, item, version)
    ) WITHOUT ROWID""",
    "INSERT INTO ledger_rows (flow, partner, item, version, kind, observed_at, at, sorties,"
    " grid_km, retracted, novel, track) SELECT flow, partner, item, version, kind, observed_at,"
    " at, sorties, grid_km, retracted, novel, track FROM ledger",
    "DROP TABLE ledger",
    "ALTER TABLE ledger_rows RENAME TO ledger",
)


_CURRENT_SPANS: Final = (
    # How long the current rows' intervals (t1 - t0) are, each rounded up to a power of two
    # (microseconds): the longest bounds how far before a window a current row can start and
    # still meet it, so that a window's query is a range of the start-time indexes, not a scan
    # of every row that started before the window's end. Rows are only added (a few dozen at
    # most, in a store's life), never updated: writers never wait on one another here.
    "CREATE TABLE current_spans (bucket INTEGER PRIMARY KEY)",
)


def span_bucket(span_us: int) -> int:
    """The bucket an interval of ``span_us`` microseconds (> 0) is counted in: the least power
    of two at least as long."""
    return 1 << (span_us - 1).bit_length()


LONG_SPAN_US: Final = 1 << 32
"""Current rows whose interval (t1 - t0) is longer than this (µs, about 72 minutes: a daily
report, a navigation warning of weeks) are found by their end time through an index of their
own (``current_long``, migration ``0026``), not through the start-time indexes; ``current_spans``
counts only the shorter ones. One warning of three months would otherwise make every window's
range reach three months back."""


def _current_spans(conn: Connection, dialect: str) -> None:
    """The bucket of the longest interval already stored."""
    row = conn.execute("SELECT max(t1 - t0) FROM current").fetchone()
    longest = int(row[0]) if row is not None and row[0] is not None else 0
    if longest > 0:
        marker = "?" if dialect == "sqlite" else "%s"
        conn.execute(
            f"INSERT INTO current_spans (bucket) VALUES ({marker})", (span_bucket(longest),)
        )


def _history_transactions(conn: Connection, dialect: str) -> None:
    """On PostgreSQL, each history row names the transaction that stored it, indexed: several
    processes' transactions commit in any order of their seqs, and which versions were stored
    since a reading (the novelty's kept own reports) is which transactions it did not see
    committed. Rows stored before are older than any reading. On SQLite, one writer at a time
    gives seqs in commit order: nothing to add."""
    if dialect != "postgres":
        return
    conn.execute("ALTER TABLE observation_versions ADD COLUMN xact xid8")
    conn.execute(
        "ALTER TABLE observation_versions ALTER COLUMN xact SET DEFAULT pg_current_xact_id()"
    )
    conn.execute("CREATE INDEX observation_versions_by_xact ON observation_versions (xact)")


def _text_bytewise(conn: Connection, dialect: str) -> None:
    """On PostgreSQL, every text column compares byte-wise (collation ``C``), as SQLite's do and
    ids already did: a key's order and a query's ``ORDER BY`` no longer depend on the server's
    default locale, and the server compares the keys of the ledger and of ``current`` without
    calling the C library's ``strcoll`` for each comparison (about a twentieth of its time on a
    batch's rows went to comparing text in their indexes). Each table is written again once."""
    if dialect != "postgres":
        return
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND data_type = 'text'"
        " AND collation_name IS DISTINCT FROM 'C' ORDER BY table_name, ordinal_position"
    ).fetchall():
        columns.setdefault(str(table), []).append(str(column))
    for table, names in columns.items():
        altered = ", ".join(f'ALTER COLUMN {name} TYPE TEXT COLLATE "C"' for name in names)
        conn.execute(f"ALTER TABLE {table} {altered}")


def _own_rows_by_origin(conn: Connection, dialect: str) -> None:
    """Index by origin (and, on PostgreSQL, by transaction) only the rows not received from a
    partner. Those indexes serve one reading, the node's own reports in a window (and those
    stored since the last such reading), and a received item is never the node's own: every
    item taken in wrote an entry to each that no query of them could want (on SQLite one
    B-tree insert in six, on PostgreSQL two index entries in seven, about a fourteenth of the
    server's log per item). ``current`` says which rows came from a partner (``received``,
    set from the item's provenance); a history row says so by its sender (``sent_by``). Rows
    stored before this step count as not received, which keeps every one of the node's own in
    the new indexes; the received among them only cost their entry, as before."""
    if dialect == "sqlite":
        columns = {row[1] for row in conn.execute("PRAGMA table_info(current)").fetchall()}
        if "received" not in columns:
            conn.execute("ALTER TABLE current ADD COLUMN received INTEGER NOT NULL DEFAULT 0")
        conn.execute("DROP INDEX IF EXISTS current_origin")
    else:
        conn.execute(
            "ALTER TABLE current ADD COLUMN IF NOT EXISTS received BIGINT NOT NULL DEFAULT 0"
        )
        conn.execute("DROP INDEX IF EXISTS current_by_origin")
        conn.execute("DROP INDEX IF EXISTS observation_versions_by_xact")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS observation_versions_not_received_by_xact"
            " ON observation_versions (xact) WHERE sent_by IS NULL"
        )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS current_not_received ON current (origin, t0) WHERE received = 0"
    )


_OUTBOX_LEDGER_FIELDS: Final = (
    ("ledger_kind", "TEXT"),
    ("ledger_observed_at", "INTEGER"),
    ("ledger_sorties", "INTEGER"),
    ("ledger_grid_km", "REAL"),
    ("ledger_retracted", "INTEGER"),
    ("ledger_track", "TEXT"),
)


def _outbox_ledger_fields(conn: Connection, dialect: str) -> None:
    """What the ledger keeps of each observation queued, written when it is queued: when its
    batch's receipt comes, one statement enters the batch in the ledger as given, where the
    items were read back and decoded. NULL for dialogue items and for items queued before (a
    no-op on an outbox that has the columns)."""
    have = _columns(conn, dialect, "outbox")
    for column, kind in _OUTBOX_LEDGER_FIELDS:
        if column not in have:
            statement = f"ALTER TABLE outbox ADD COLUMN {column} {kind}"
            conn.execute(statement if dialect == "sqlite" else for_postgres(statement))


_OUTBOX_ITEMS: Final = (
    # The bytes of each item queued, apart from its outbox row: sealing a batch tags its rows
    # with the batch's seq, and a row of a few dozen bytes is rewritten where one carrying the
    # item's (about 700) took a page for every five. Items queued before stay in their row.
    "CREATE TABLE IF NOT EXISTS outbox_items (row INTEGER PRIMARY KEY, item BLOB NOT NULL)",
)


_BATCH_TABLES: Final = ("sent_batches", "inbox_batches")
"""Every batch a link seals or takes in is kept for proofs, one row each: a header, a signature,
a receipt (its audit proof grows with the log) and, taken in, 32 bytes of leaf hash per item.
In a table without rowids a row over about a kilobyte takes an overflow page of its own (4.7 KB
of file for a batch of 20 items); in a rowid table rows up to about 4 KB stay in their page,
several to a page."""
_WITHOUT_ROWID: Final = re.compile(r"\)\s*WITHOUT ROWID\s*$")


def _batch_rows_in_pages(conn: Connection, dialect: str) -> None:
    """SQLite's batch tables made again as rowid tables, each from its own definition with
    ``WITHOUT ROWID`` left out, every row copied (PostgreSQL keeps every table so)."""
    if dialect != "sqlite":
        return
    for table in _BATCH_TABLES:
        (made,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        rows = f"{table}_rows"
        conn.execute(_WITHOUT_ROWID.sub(")", made.replace(table, rows, 1)))
        conn.execute(f"INSERT INTO {rows} SELECT * FROM {table} ORDER BY partner, seq")
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {rows} RENAME TO {table}")


_LONG_ROWS_AND_HELD_COUNT: Final = (
    # Long rows by their end time (see LONG_SPAN_US); the index holds those rows only.
    f"CREATE INDEX IF NOT EXISTS current_long ON current (t1) WHERE t1 - t0 > {LONG_SPAN_US}",
    # How many current rows are not retracted, as the sum of its rows: each append that changes
    # it adds one row of its change, and an append now and then folds them into one (several
    # processes' appends add rows without waiting on one another).
    "CREATE TABLE IF NOT EXISTS current_held (n INTEGER NOT NULL)",
)


def _long_rows_and_held_count(conn: Connection, dialect: str) -> None:
    """``current_spans`` counted again over the rows not longer than :data:`LONG_SPAN_US`, and
    the count of rows not retracted taken once."""
    conn.execute("DELETE FROM current_spans")
    row = conn.execute(
        f"SELECT max(t1 - t0) FROM current WHERE t1 - t0 <= {LONG_SPAN_US}"
    ).fetchone()
    longest = int(row[0]) if row is not None and row[0] is not None else 0
    marker = "?" if dialect == "sqlite" else "%s"
    if longest > 0:
        conn.execute(
            f"INSERT INTO current_spans (bucket) VALUES ({marker})", (span_bucket(longest),)
        )
    conn.execute("DELETE FROM current_held")
    conn.execute(
        "INSERT INTO current_held (n) SELECT count(*) FROM current WHERE retracted = 0"
        " HAVING count(*) > 0"
    )


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration("0001_initial", _INITIAL),
    Migration("0002_outbox_columns", run=_outbox_columns),
    Migration("0003_audit_append_only", run=_audit_guards),
    Migration("0004_outbox_agreement", _OUTBOX_AGREEMENT),
    Migration("0005_operators", _OPERATORS),
    Migration("0006_audit_tree", _AUDIT_TREE, run=_audit_tree),
    Migration("0007_hello_nonces", _HELLO_NONCES),
    Migration("0008_revocations", _REVOCATIONS),
    Migration("0009_tracks_and_feeds", _TRACKS_AND_FEEDS),
    Migration("0010_ledger_track", _LEDGER_TRACK),
    Migration("0011_messages", _MESSAGES),
    Migration("0012_outbox_by_agreement", _OUTBOX_BY_AGREEMENT),
    Migration("0013_inbox_items_by_item", _INBOX_ITEMS_BY_ITEM),
    Migration("0014_current_without_key", run=_current_without_key),
    Migration("0015_given_whole", _GIVEN_WHOLE),
    Migration("0016_link_status", _LINK_STATUS),
    Migration("0017_history_places", _HISTORY_PLACES),
    Migration("0018_ledger_by_partner", _LEDGER_BY_PARTNER),
    Migration("0019_current_spans", _CURRENT_SPANS, run=_current_spans),
    Migration("0020_history_transactions", run=_history_transactions),
    Migration("0021_text_bytewise", run=_text_bytewise),
    Migration("0022_own_rows_by_origin", run=_own_rows_by_origin),
    Migration("0023_outbox_ledger_fields", run=_outbox_ledger_fields),
    Migration("0024_outbox_items", _OUTBOX_ITEMS),
    Migration("0025_batch_rows_in_pages", run=_batch_rows_in_pages),
    Migration(
        "0026_long_rows_and_held_count", _LONG_ROWS_AND_HELD_COUNT, run=_long_rows_and_held_count
    ),
)
"""Every step, in order; a store at version N has taken the first N."""

SCHEMA_VERSION: Final = len(MIGRATIONS)


_POSTGRES_TYPES: Final = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGSERIAL PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
    # CURRENT_TIME is a reserved word in PostgreSQL.
    (re.compile(r"\bcurrent_time ON\b"), "current_by_time ON"),
    (re.compile(r"\bcurrent_origin ON\b"), "current_by_origin ON"),
    # Ids compare byte-wise on both backends, so cursor pages come in the same order.
    (re.compile(r"^(\s*id) TEXT\b", re.M), r'\1 TEXT COLLATE "C"'),
)


def for_postgres(statement: str) -> str:
    """A statement of :data:`MIGRATIONS` in PostgreSQL's types."""
    for pattern, replacement in _POSTGRES_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def pending(version: int) -> list[tuple[int, Migration]]:
    """The steps after ``version`` with the version each leaves the store at."""
    return [(number, step) for number, step in enumerate(MIGRATIONS, start=1) if number > version]


def apply(conn: Connection, step: Migration, dialect: str) -> None:
    """Take one step on ``conn`` inside the caller's transaction."""
    for statement in step.statements:
        conn.execute(statement if dialect == "sqlite" else for_postgres(statement))
    if step.run is not None:
        step.run(conn, dialect)


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "apply",
    "for_postgres",
    "pending",
]
