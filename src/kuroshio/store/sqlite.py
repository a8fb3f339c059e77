"""The embedded store: one SQLite file per node, WAL journal, every version kept.

``observation_versions`` is the append-only history (id, version, digest, canonical body);
``current`` indexes the highest version of each id for queries. Opening a file takes it through
the numbered migrations of :mod:`kuroshio.store.schema`; every other table the node keeps (links,
ledger, audit, daily counts) is written through the unit of work :meth:`SQLiteStore.transaction`
yields, and read through :meth:`SQLiteStore.reader`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from kuroshio.errors import StoreError
from kuroshio.model import Event, Observation
from kuroshio.store import AppendResult, schema
from kuroshio.store.reads import Reads
from kuroshio.store.transaction import Transaction

CACHE_KIB = 32 * 1024


def _null(value: None) -> None:
    return value


# The sqlite3 module binds only exact ints, floats, strings and bytearrays without first looking
# for an adapter; bytes, None and bools are bound only after the look-up fails, which raises and
# clears an AttributeError each time. Adapters registered for them (each giving its value as
# bound anyway) end the look-up at once: a received item binds about eight such values.
sqlite3.register_adapter(bytes, bytes)
sqlite3.register_adapter(type(None), _null)
sqlite3.register_adapter(bool, int)


class _SQLiteReads(Reads):
    """The shared queries on this backend's connection (``_conn`` under ``_lock``)."""

    _conn: sqlite3.Connection
    _lock: threading.Lock | threading.RLock

    @contextlib.contextmanager
    def _qmark(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        """Every table as of one moment (a read transaction)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield Transaction(self._conn)
            finally:
                self._conn.execute("COMMIT")


class SQLiteStore(_SQLiteReads):
    """The embedded :class:`~kuroshio.store.Store` on one SQLite file.

    Safe to share between threads (one connection, serialised by a lock); a second process may
    read the same file while this one writes (WAL).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                # Only the node's owner may read it; SQLite gives its journal the same mode.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when append() returns, even across power loss.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # Deleted content is zeroed on the pages a write rewrites anyway, but a page freed
            # whole is not written again only to zero it (Debian's SQLite zeroes it by default):
            # a partner's receipt frees the pages that held its batch's items, about half the
            # log a receipt wrote.
            self._conn.execute("PRAGMA secure_delete=FAST")
            # 32 MiB of page cache (the default is 2 MiB): the indexes of a store holding
            # millions of observations stay in memory while batches are appended.
            self._conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        """Take the file through every migration it has not taken, one transaction each."""
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} is at schema version {version}, made by a newer kuroshio;"
                f" this one reads up to {schema.SCHEMA_VERSION}"
            )
        for number, step in schema.pending(int(version)):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                schema.apply(self._conn, step, "sqlite")
                # Older kuroshio reads the version from meta and refuses a newer store.
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(number),),
                )
                self._conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # --- the unit of work ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error) over every
        table."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(self._conn)
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            tx.committed()

    def announce(self, news: str = "") -> None:
        """Nothing to do: one process serves an embedded store, and readers of the file from
        other processes poll it."""

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None] | None:
        """None: an embedded store has no other processes to hear from."""
        return None

    def reader(self) -> StoreReader:
        """A reading connection of its own on the same file, for work that must not wait for
        the writer (a link polling its outbox, the API): see :class:`StoreReader`."""
        return StoreReader(self)

    # --- observations -------------------------------------------------------------------------

    def append(self, observations: Sequence[Observation]) -> AppendResult:
        with self.transaction() as tx:
            return tx.observations.append(observations)

    # --- events -------------------------------------------------------------------------------

    def put_events(self, events: Sequence[Event]) -> int:
        with self.transaction() as tx:
            return tx.observations.put_events(events)

    def integrity_problems(self) -> list[str]:
        """What SQLite's integrity check finds wrong with the file (empty: nothing)."""
        with self._lock:
            found = [str(row[0]) for row in self._conn.execute("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found

    def backup(self, target: Path) -> None:
        """Copy the whole store, as of one moment, into a new file ``target`` (readable by the
        node's owner alone), while other processes go on writing the store: SQLite's online
        backup, in one step (a read transaction, which in WAL mode holds up no writer). The copy
        is written beside ``target`` and renamed into place once it is on disk, so ``target``
        is never a part of a copy. Raises :class:`StoreError` if ``target`` exists."""
        partial = target.with_name(f".{target.name}.partial")
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise StoreError(f"{target} exists: a backup never replaces a file") from None
        os.close(descriptor)
        try:
            partial.unlink(missing_ok=True)
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            copy = sqlite3.connect(partial)
            try:
                with self._lock:
                    self._conn.backup(copy)
            finally:
                copy.close()
            descriptor = os.open(partial, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(partial, target)
            folder = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename, too, survives a power loss
            finally:
                os.close(folder)
        except BaseException as error:
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            if isinstance(error, sqlite3.Error | OSError):
                raise StoreError(f"backup of {self.path} into {target}: {error}") from None
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreReader(_SQLiteReads):
    """A read-only connection of its own on a store file, shared between threads (one at a
    time). Each :meth:`snapshot` sees one consistent state of the file, committed by any
    process; nothing read through it can write."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                f"file:{store.path}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read store {store.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
