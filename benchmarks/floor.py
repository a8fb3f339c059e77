"""The floor for the exchange: the same records with none of kuroshio's guarantees but durability.

A client encodes each observation with msgspec (JSON body, batches of 1 000 in a MessagePack
frame), sends the frames over one mutual-TLS 1.3 loopback socket with four batches in flight, and
a server process inserts each batch into SQLite (WAL, synchronous=FULL, one transaction per batch)
and acknowledges it. No policy, no signatures, no Merkle tree, no audit, no validation on receipt.
Whatever kuroshio does beyond this is what its rate is compared against.

``python floor.py serve NODE_DIR DB`` runs the server (prints its port); :func:`measure` runs both.
"""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec

from kuroshio.pki import client_ssl_context, load_identity, server_ssl_context

BATCH = 1_000
WINDOW = 4
_frame = msgspec.msgpack.Decoder(list[tuple[str, int, bytes]])


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve(node_dir: Path, db: Path) -> None:
    identity = load_identity(node_dir)
    context = server_ssl_context(identity, [identity.ca_certificate_pem])
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS observations (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,"
        " version INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (id, version))"
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print(listener.getsockname()[1], flush=True)
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as tls:
            while True:
                try:
                    (size,) = struct.unpack("!I", _read_exactly(tls, 4))
                except ConnectionError:
                    return
                rows = _frame.decode(_read_exactly(tls, size))
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO observations (id, version, body) VALUES (?, ?, ?)", rows
                )
                conn.execute("COMMIT")
                tls.sendall(struct.pack("!I", len(rows)))


def measure(workdir: Path, node_dir: Path, count: int) -> float:
    """Records per second through the floor, from first encode to last acknowledgement."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_exchange import observation  # the same records as the exchange phases

    workdir.mkdir(parents=True, exist_ok=True)
    at = dt.datetime.now(dt.UTC)
    records = [observation(n, "floor", at) for n in range(count)]
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", str(node_dir), str(workdir / "floor.sqlite")],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        identity = load_identity(node_dir)
        context = client_ssl_context(identity, [identity.ca_certificate_pem])
        window = threading.Semaphore(WINDOW)
        acked = 0
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):

            def acks() -> None:
                nonlocal acked
                while acked < count:
                    (done,) = struct.unpack("!I", _read_exactly(tls, 4))
                    acked += done
                    window.release()

            encode_body = msgspec.json.Encoder().encode
            encode_frame = msgspec.msgpack.Encoder().encode
            reader = threading.Thread(target=acks, daemon=True)
            began = time.perf_counter()
            reader.start()
            for start in range(0, count, BATCH):
                frame = encode_frame(
                    [(o.id, o.version, encode_body(o)) for o in records[start : start + BATCH]]
                )
                window.acquire()
                tls.sendall(struct.pack("!I", len(frame)) + frame)
            reader.join()
            elapsed = time.perf_counter() - began
        return count / elapsed
    finally:
        server.wait(30)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: floor.py serve NODE_DIR DB")
