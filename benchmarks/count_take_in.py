"""Taking batches in, counted in figures that do not move with the machine's load: instructions
per item on SQLite (callgrind) and bytes of WAL per item on PostgreSQL.

The set-up is ``profile_take_in``'s: TWN seals batches of 1 000 of ``bench_exchange``'s records
for JPN, JPN opens them all, then takes them in one by one as its inbox does; only the take-in
is counted, or with ``open`` only the opening (signature, Merkle root, every item decoded,
validated and checked canonical, the rows made).

- ``sqlite``: the script runs itself under ``valgrind --tool=callgrind`` with instrumentation off,
  and switches it on (``callgrind_control``) around the take-in alone; it prints the
  instructions per item. Needs valgrind (Debian's ``valgrind`` package); slow (about 20 s for 4
  batches).
- ``open``: the same under callgrind, around the opening of the batches alone.
- ``pgnode``: the same under callgrind, on a schema of the PostgreSQL server
  (``KUROSHIO_BENCH_POSTGRES``): the instructions per item of the node's side of the take-in
  (kuroshio and psycopg; the server's own work is in its processes, not counted).
- ``seal`` and ``receipt``: the sending side on SQLite, under callgrind: TWN's sealing of each
  batch (``seal_next`` in its transaction), or its keeping of JPN's receipt for it
  (``Node.take_receipt``), counted alone; JPN takes each batch in between, uncounted.
- ``send-bytes``: the same two stages, each counted in bytes this process writes (``wchar`` of
  ``/proc/self/io``, so Linux only): the store's log and the checkpoints that copy it into the
  file. No valgrind; about 30 s.
- ``postgres``: the server's WAL position (``pg_current_wal_lsn()``) before and after the take-in
  on a schema of the server (``KUROSHIO_BENCH_POSTGRES``); it prints the WAL bytes per item.

Usage: ``python benchmarks/count_take_in.py
sqlite|open|seal|receipt|send-bytes|pgnode|postgres [BATCHES]`` (default 4, 20 for ``postgres``
and ``send-bytes``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

import bench_exchange as bench
from kuroshio.exchange.receipt import read_receipt
from kuroshio.federation.inbox import Inbox
from kuroshio.node import open_node
from profile_take_in import DSN, ITEMS, seal, seal_one

_UNDER_CALLGRIND = "KUROSHIO_COUNT_UNDER_CALLGRIND"


def _take_in(
    store: dict[str, Any] | None, batches: int, around: Callable[[bool], int], *, opening: bool
) -> int:
    """Take ``batches`` opened batches in between ``around(False)`` (before) and
    ``around(True)`` (after), or with ``opening`` open them there; the difference of what the
    two return."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nodes = bench.make_nodes(root, store=store)
        bench.install_agreement(nodes, root)
        twn, jpn = open_node(nodes["TWN"].directory), open_node(nodes["JPN"].directory)
        try:
            frames = seal(twn, batches + 1)
            inbox, partner = Inbox(jpn), jpn.partners["TWN"]
            inbox.take_in(partner, inbox.open(partner, frames[0]))  # warm: caches, statements
            if opening:
                start = around(False)
                for frame in frames[1:]:
                    inbox.open(partner, frame)
                return around(True) - start
            opened = [inbox.open(partner, frame) for frame in frames[1:]]
            start = around(False)
            for batch in opened:
                inbox.take_in(partner, batch)
            return around(True) - start
        finally:
            twn.close()
            jpn.close()


def _send(batches: int, around: Callable[[bool], int], *, receipt: bool) -> int:
    """Seal ``batches`` batches at TWN, each taken in at JPN and its receipt kept at TWN, and
    count (``around``, as :func:`_take_in`) the sealing alone or, with ``receipt``, the keeping
    of the receipts alone."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nodes = bench.make_nodes(root)
        bench.install_agreement(nodes, root)
        twn, jpn = open_node(nodes["TWN"].directory), open_node(nodes["JPN"].directory)
        try:
            at = dt.datetime.now(dt.UTC)
            twn.ingest([bench.observation(n, "bulk", at) for n in range((batches + 1) * ITEMS)])
            inbox, partner = Inbox(jpn), jpn.partners["TWN"]
            counted = 0
            for number in range(batches + 1):  # the first warms caches and statements
                start = around(False) if number and not receipt else 0
                sealed = seal_one(twn)
                if number and not receipt:
                    counted += around(True) - start
                signed = inbox.take_in(partner, inbox.open(partner, sealed.frame()))
                start = around(False) if number and receipt else 0
                twn.take_receipt("JPN", read_receipt(signed), signed)
                if number and receipt:
                    counted += around(True) - start
            return counted
        finally:
            twn.close()
            jpn.close()


def _callgrind(after: bool) -> int:
    """Switch callgrind's instrumentation of this process on (before) or off (after)."""
    subprocess.run(
        ["callgrind_control", "-i", "off" if after else "on", str(os.getpid())],
        check=True,
        capture_output=True,
    )
    return 0


def count_instructions(
    batches: int, *, opening: bool = False, postgres: bool = False, sending: str = ""
) -> None:
    """Instructions per item of this process under callgrind: the take-in on SQLite, the
    opening (``opening``), the node's side of the take-in on PostgreSQL (``postgres``), or the
    sender's sealing or keeping of receipts (``sending``: ``seal`` or ``receipt``)."""
    stage = sending or ("open" if opening else "pgnode" if postgres else "sqlite")
    if os.environ.get(_UNDER_CALLGRIND):
        if sending:
            _send(batches, _callgrind, receipt=sending == "receipt")
            return
        if not postgres:
            _take_in(None, batches, _callgrind, opening=opening)
            return
        with _postgres_jpn() as store:
            _take_in(store, batches, _callgrind, opening=False)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit(f"count_take_in {stage} needs valgrind (apt install valgrind)")
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={folder}/callgrind.out",
                sys.executable,
                __file__,
                stage,
                str(batches),
            ],
            env={**os.environ, _UNDER_CALLGRIND: "1"},
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind reported no count:\n{done.stderr[-2000:]}")
    per_item = int(found.group(1)) / (batches * ITEMS)
    what = {"seal": "sealing", "receipt": "keeping receipts"}.get(
        sending, "opening" if opening else "take-in (the node's side)" if postgres else "take-in"
    )
    print(f"{stage}: {what} {per_item:,.0f} instructions per item ({batches} batches of {ITEMS})")


@contextlib.contextmanager
def _postgres_jpn() -> Iterator[dict[str, Any]]:
    """JPN's store on a schema of its own on the server (``DSN``), dropped afterwards."""
    os.environ["KUROSHIO_STORE_DSN"] = DSN
    schema = f"bench_{uuid.uuid4().hex[:10]}_jpn"
    try:
        yield {"JPN": {"backend": "postgres", "schema": schema}}
    finally:
        with psycopg.connect(DSN, autocommit=True) as side:
            side.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _written(_after: bool) -> int:
    """Bytes this process has written so far (``wchar`` of ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise SystemExit("no wchar in /proc/self/io")


def count_send_bytes(batches: int) -> None:
    sealing = _send(batches, _written, receipt=False) / (batches * ITEMS)
    receipts = _send(batches, _written, receipt=True) / (batches * ITEMS)
    print(
        f"send-bytes: sealing {sealing:,.0f}, keeping receipts {receipts:,.0f} bytes written per"
        f" item ({batches} batches of {ITEMS})"
    )


def count_postgres(batches: int) -> None:
    with _postgres_jpn() as store, psycopg.connect(DSN, autocommit=True) as side:

        def wal(_after: bool) -> int:
            row = side.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')").fetchone()
            return int(row[0]) if row else 0

        written = _take_in(store, batches, wal, opening=False)
    per_item = written / (batches * ITEMS)
    print(f"postgres: take-in {per_item:,.0f} bytes of WAL per item ({batches} batches of {ITEMS})")


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    if backend in ("sqlite", "open"):
        count_instructions(int(sys.argv[2]) if len(sys.argv) > 2 else 4, opening=backend == "open")
    elif backend == "send-bytes":
        count_send_bytes(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    elif backend in ("seal", "receipt"):
        count_instructions(int(sys.argv[2]) if len(sys.argv) > 2 else 4, sending=backend)
    elif backend == "pgnode":
        count_instructions(int(sys.argv[2]) if len(sys.argv) > 2 else 4, postgres=True)
    elif backend == "postgres":
        count_postgres(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    else:
        raise SystemExit(
            "usage: count_take_in.py sqlite|open|seal|receipt|send-bytes|pgnode|postgres [BATCHES]"
        )


if __name__ == "__main__":
    main()
