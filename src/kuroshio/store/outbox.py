"""The rows of the sending side of links: each partner's outbox and the batches sealed from it.

``outbox`` holds released items until their batch is signed for, their bytes as they will be
sent in ``outbox_items`` beside it (so that sealing a batch, which tags its rows, rewrites rows of
a few dozen bytes, not of the items'); ``sent_batches`` every sealed batch with the partner's
receipt once it comes. The rules (what is due, how a batch is sealed and bounded) live in
:mod:`kuroshio.exchange.outbox`; this module only reads and writes rows, inside the caller's
transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

from kuroshio.store.sql import insert_rows

GivenFields: TypeAlias = tuple[str, int, int, float | None, int, str | None]
"""What the reciprocity ledger keeps of an observation given to a partner, but the partner and
the time of receipt: kind, observed at (µs), sorties, grid km, retracted, source track."""

QueuedItem: TypeAlias = tuple[
    str, str, int, bytes, int | None, bytes | None, str | None, GivenFields | None
]
"""One released item: partner, id, version, bytes as sent, not before (µs since the epoch), the
origin's proof for an item relayed as is, the digest of the agreement it was released under,
and for an observation its ledger fields (None for a dialogue item)."""

_GIVEN_COLUMNS: Final = (
    "ledger_kind, ledger_observed_at, ledger_sorties, ledger_grid_km, ledger_retracted,"
    " ledger_track"
)

_NO_FIELDS: Final = (None,) * 6
_DUE: Final = "partner = ? AND seq IS NULL AND (not_before IS NULL OR not_before <= ?)"
_ITEMS: Final = "outbox o LEFT JOIN outbox_items i ON i.row = o.row"
"""Each outbox row with its item's bytes: in ``outbox_items``, or for an item queued before they
were kept apart, in the row itself."""
_ITEM: Final = "coalesce(i.item, o.item)"
_LAPSED: Final = "SELECT row, id, version, agreement FROM outbox"


class OutboxTable:
    """The outbox and sealed batches of every link, on one connection (``dialect``: ``sqlite``
    or ``postgres``)."""

    def __init__(self, conn: Any, dialect: str = "sqlite") -> None:
        self._conn = conn
        self._dialect = dialect

    def keep_link_status(self, rows: Sequence[tuple[str, bytes, int]]) -> None:
        """Write (partner, encoded status, at µs) of sending links, replacing earlier ones."""
        self._conn.executemany(
            "INSERT INTO link_status (partner, status, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (partner) DO UPDATE SET status = excluded.status,"
            " updated_at = excluded.updated_at",
            rows,
        )

    def link_statuses(self, since_us: int) -> list[tuple[str, bytes]]:
        """(partner, encoded status) of sending links written at ``since_us`` or later."""
        return [
            (str(partner), bytes(status))
            for partner, status in self._conn.execute(
                "SELECT partner, status FROM link_status WHERE updated_at >= ?", (since_us,)
            )
        ]

    def claim(self, partner: str) -> None:
        """Hold ``partner``'s link until the transaction ends, so one process at a time seals
        its next batch (numbered and chained to the one before): on PostgreSQL a lock per link
        and the due rows locked (``FOR UPDATE SKIP LOCKED``); a SQLite write transaction holds
        the whole file already."""
        if self._dialect == "postgres":
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.outbox.' || ?))",
                (partner,),
            )

    def queue(self, items: Sequence[QueuedItem]) -> None:
        """Queue released items, in order, each under a new row (higher than any before)."""
        if not items:
            return
        rows = self._new_rows(len(items))
        queued = [
            (row, *item[:3], b"", *item[4:7], *(item[7] or _NO_FIELDS))
            for row, item in zip(rows, items, strict=True)
        ]
        kept = [(row, item[3]) for row, item in zip(rows, items, strict=True)]
        queue_head = (
            "INSERT INTO outbox (row, partner, id, version, item, not_before, origin_proof,"
            f" agreement, {_GIVEN_COLUMNS})"
        )
        items_head = "INSERT INTO outbox_items (row, item)"
        if self._dialect == "postgres":
            self._conn.executemany(
                f"{queue_head} VALUES ({', '.join('?' * len(queued[0]))})", queued
            )
            self._conn.executemany(f"{items_head} VALUES (?, ?)", kept)
            return
        insert_rows(self._conn, queue_head, queued)
        insert_rows(self._conn, items_head, kept)

    def _new_rows(self, count: int) -> list[int]:
        """``count`` rows for items to queue, in increasing order, above every row used before:
        on PostgreSQL drawn from the table's sequence; on SQLite above the highest row the
        table has held (its write transaction holds the file)."""
        if self._dialect == "postgres":
            return [
                int(row)
                for (row,) in self._conn.execute(
                    "SELECT nextval((SELECT pg_get_serial_sequence('outbox', 'row')::regclass))"
                    " FROM generate_series(1, ?)",
                    (count,),
                ).fetchall()
            ]
        (highest,) = self._conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),"
            " coalesce((SELECT max(row) FROM outbox), 0))"
        ).fetchone()
        return list(range(int(highest) + 1, int(highest) + 1 + count))

    def lapsed(
        self, partner: str, at_us: int, in_force: str | None, civil: str | None = None
    ) -> list[tuple[int, str, int, str | None]]:
        """(row, id, version, agreement) of items due at ``at_us`` released under another
        agreement than the one ``in_force`` now or the ``civil`` one in force (their digests;
        both None: none is, so every due item). Items queued before agreements were recorded
        count as released under the one in force."""
        kept = sorted({digest for digest in (in_force, civil) if digest is not None})
        parameters: list[object]
        if not kept:
            statement, parameters = f"{_LAPSED} WHERE {_DUE}", [partner, at_us]
        else:
            # "Released under another agreement" as ranges between the kept digests, one
            # statement each, so each is a range of the index on unsealed rows by agreement:
            # this runs before every batch is sealed, over a backlog of any length.
            bounds: list[str | None] = [None, *kept, None]
            parts: list[str] = []
            parameters = []
            for low, high in itertools.pairwise(bounds):
                where = f"{_LAPSED} WHERE {_DUE}"
                parameters += [partner, at_us]
                if low is not None:
                    where += " AND agreement > ?"
                    parameters.append(low)
                if high is not None:
                    where += " AND agreement < ?"
                    parameters.append(high)
                parts.append(where)
            statement = " UNION ALL ".join(parts)
        return [
            (int(row), str(obs_id), int(version), agreement)
            for row, obs_id, version, agreement in self._conn.execute(
                f"{statement} ORDER BY row", parameters
            )
        ]

    def withdraw(self, rows: Sequence[int]) -> None:
        """Take unsealed items out of the outbox: they will not be sent."""
        self._conn.executemany(
            "DELETE FROM outbox_items WHERE row = ?"
            " AND EXISTS (SELECT 1 FROM outbox WHERE row = ? AND seq IS NULL)",
            [(row, row) for row in rows],
        )
        self._conn.executemany(
            "DELETE FROM outbox WHERE row = ? AND seq IS NULL", [(row,) for row in rows]
        )

    def holds(self, partner: str, item: str) -> bool:
        """Whether any version of ``item`` waits in ``partner``'s outbox."""
        row = self._conn.execute(
            "SELECT 1 FROM outbox WHERE partner = ? AND id = ? LIMIT 1", (partner, item)
        ).fetchone()
        return row is not None

    def versions_with_proof(self, partner: str, item: str) -> list[int]:
        """Versions of ``item`` waiting in ``partner``'s outbox with their origin's proof."""
        return [
            int(row[0])
            for row in self._conn.execute(
                "SELECT version FROM outbox WHERE partner = ? AND id = ?"
                " AND origin_proof IS NOT NULL ORDER BY version",
                (partner, item),
            )
        ]

    def last_sealed(self, partner: str) -> tuple[int, bytes] | None:
        """(seq, hash) of the last batch sealed for ``partner``."""
        row = self._conn.execute(
            "SELECT seq, hash FROM sent_batches WHERE partner = ? ORDER BY seq DESC LIMIT 1",
            (partner,),
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def due_count(self, partner: str, at_us: int, limit: int) -> int:
        row = self._conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM outbox WHERE {_DUE} LIMIT ?) AS due",
            (partner, at_us, limit),
        ).fetchone()
        return int(row[0])

    def first_held(self, partner: str, at_us: int) -> int | None:
        """When (µs) the first item held by a delay past ``at_us`` falls due (None: none)."""
        row = self._conn.execute(
            "SELECT min(not_before) FROM outbox WHERE partner = ? AND seq IS NULL"
            " AND not_before > ?",
            (partner, at_us),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def due(self, partner: str, at_us: int, limit: int) -> list[tuple[int, bytes, bytes | None]]:
        """(row, item, origin proof) of items due at ``at_us``, in release order."""
        locked = " FOR UPDATE OF o SKIP LOCKED" if self._dialect == "postgres" else ""
        return [
            (int(row), bytes(item), None if proof is None else bytes(proof))
            for row, item, proof in self._conn.execute(
                f"SELECT o.row, {_ITEM}, o.origin_proof FROM {_ITEMS} WHERE {_DUE}"
                " ORDER BY o.row LIMIT ?" + locked,
                (partner, at_us, limit),
            )
        ]

    def seal(
        self,
        partner: str,
        seq: int,
        *,
        at_us: int,
        first_row: int,
        last_row: int,
        count: int,
        header: bytes,
        signature: bytes,
        digest: bytes,
    ) -> None:
        """Tag the due rows up to ``last_row`` with batch ``seq`` and keep the sealed batch."""
        # The rows taken are exactly the due rows up to the last one taken (same condition, same
        # order), so one ranged statement tags them all with their batch.
        self._conn.execute(
            f"UPDATE outbox SET seq = ? WHERE {_DUE} AND row <= ?",
            (seq, partner, at_us, last_row),
        )
        self._conn.execute(
            "INSERT INTO sent_batches (partner, seq, first_row, last_row, count, header,"
            " signature, hash, sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (partner, seq, first_row, last_row, count, header, signature, digest, at_us),
        )

    def unacked(self, partner: str, seq: int) -> tuple[int, bytes, bytes, bytes] | None:
        """(count, header, signature, hash) of a sealed batch not yet signed for."""
        row = self._conn.execute(
            "SELECT count, header, signature, hash FROM sent_batches"
            " WHERE partner = ? AND seq = ? AND acked_at IS NULL",
            (partner, seq),
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3])

    def batch_items(self, partner: str, seq: int) -> list[tuple[bytes, bytes | None]]:
        """(item, origin proof) of a sealed batch, in batch order."""
        return [
            (bytes(item), None if proof is None else bytes(proof))
            for item, proof in self._conn.execute(
                f"SELECT {_ITEM}, o.origin_proof FROM {_ITEMS} WHERE partner = ? AND seq = ?"
                " ORDER BY o.row",
                (partner, seq),
            )
        ]

    def unlabelled_items(self, partner: str, seq: int) -> list[bytes]:
        """The items of sealed batch ``seq`` queued without their ledger fields (dialogue
        items, and observations queued before the outbox kept them), in batch order."""
        return [
            bytes(item)
            for (item,) in self._conn.execute(
                f"SELECT {_ITEM} FROM {_ITEMS} WHERE partner = ? AND seq = ?"
                " AND ledger_kind IS NULL ORDER BY o.row",
                (partner, seq),
            )
        ]

    def give(self, partner: str, seq: int, at_us: int) -> None:
        """Enter in the ledger as given to ``partner`` at ``at_us`` every observation of sealed
        batch ``seq`` queued with its ledger fields, in one statement (a version already
        entered is kept as first entered)."""
        self._conn.execute(
            "INSERT INTO ledger (flow, partner, item, version, kind, observed_at, at, sorties,"
            " grid_km, retracted, novel, track) SELECT 'given', partner, id, version,"
            " ledger_kind, ledger_observed_at, ?, ledger_sorties, ledger_grid_km,"
            " ledger_retracted, NULL, ledger_track FROM outbox"
            " WHERE partner = ? AND seq = ? AND ledger_kind IS NOT NULL ON CONFLICT DO NOTHING",
            (at_us, partner, seq),
        )

    def passed_whole(self, partner: str, seq: int) -> list[tuple[str, int]]:
        """(id, version) of the items of sealed batch ``seq`` passed on with their origin's
        proof."""
        return [
            (str(item), int(version))
            for item, version in self._conn.execute(
                "SELECT id, version FROM outbox WHERE partner = ? AND seq = ?"
                " AND origin_proof IS NOT NULL ORDER BY row",
                (partner, seq),
            )
        ]

    def acked_seq(self, partner: str) -> int:
        """The highest seq whose receipt is stored."""
        row = self._conn.execute(
            "SELECT max(seq) FROM sent_batches WHERE partner = ? AND acked_at IS NOT NULL",
            (partner,),
        ).fetchone()
        return int(row[0] or 0)

    def sealed(self, partner: str, seq: int) -> tuple[bytes, int, bool] | None:
        """(hash, count, acked) of sealed batch ``seq``."""
        row = self._conn.execute(
            "SELECT hash, count, acked_at FROM sent_batches WHERE partner = ? AND seq = ?",
            (partner, seq),
        ).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]), row[2] is not None)

    def acknowledge(
        self, partner: str, seq: int, receipt: bytes, signature: bytes, at_us: int
    ) -> None:
        """Keep the partner's receipt for batch ``seq``; its items leave the outbox."""
        self._conn.execute(
            "UPDATE sent_batches SET receipt = ?, receipt_signature = ?, acked_at = ?"
            " WHERE partner = ? AND seq = ?",
            (receipt, signature, at_us, partner, seq),
        )
        self._conn.execute(
            "DELETE FROM outbox_items WHERE row IN"
            " (SELECT row FROM outbox WHERE partner = ? AND seq = ?)",
            (partner, seq),
        )
        self._conn.execute("DELETE FROM outbox WHERE partner = ? AND seq = ?", (partner, seq))

    def receipts(
        self, partner: str, limit: int
    ) -> list[tuple[int, int, bytes, int, bytes | None, bytes | None, int | None]]:
        """(seq, count, hash, sealed at, receipt, receipt signature, acked at) of the newest
        ``limit`` sealed batches, oldest first."""
        newest = [
            (
                int(seq),
                int(count),
                bytes(digest),
                int(sealed_at),
                None if receipt is None else bytes(receipt),
                None if signature is None else bytes(signature),
                None if acked_at is None else int(acked_at),
            )
            for seq, count, digest, sealed_at, receipt, signature, acked_at in self._conn.execute(
                "SELECT seq, count, hash, sealed_at, receipt, receipt_signature, acked_at"
                " FROM sent_batches WHERE partner = ? ORDER BY seq DESC LIMIT ?",
                (partner, limit),
            )
        ]
        newest.reverse()
        return newest

    def counts(self, partner: str, at_us: int) -> tuple[int, int, int, int | None, int | None]:
        """(waiting, held by a delay at ``at_us``, items sealed but not signed for, last sealed
        at, last acked at) of one link.

        Read from the link's end alone, however many batches it has sealed (every one is kept):
        the partner takes batches in sequence, so it signs for them in sequence, and the batches
        not signed for are those after the last one signed for."""
        conn = self._conn
        pending, held = conn.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN not_before > ? THEN 1 ELSE 0 END), 0)"
            " FROM outbox WHERE partner = ? AND seq IS NULL",
            (at_us, partner),
        ).fetchone()
        last = conn.execute(
            "SELECT sealed_at FROM sent_batches WHERE partner = ? ORDER BY seq DESC LIMIT 1",
            (partner,),
        ).fetchone()
        acked = conn.execute(
            "SELECT seq, acked_at FROM sent_batches WHERE partner = ? AND acked_at IS NOT NULL"
            " ORDER BY seq DESC LIMIT 1",
            (partner,),
        ).fetchone()
        acked_seq, acked_at = (0, None) if acked is None else acked
        (unacked,) = conn.execute(
            "SELECT coalesce(sum(count), 0) FROM sent_batches WHERE partner = ? AND seq > ?",
            (partner, acked_seq),
        ).fetchone()
        sealed_at = None if last is None else last[0]
        return int(pending), int(held), int(unacked), sealed_at, acked_at


__all__ = ["GivenFields", "OutboxTable", "QueuedItem"]
