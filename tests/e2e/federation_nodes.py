"""Real nodes for federation tests: made with the CLI, served as ``kuroshio serve`` processes,
each keeping its store in a SQLite file or in a schema of the PostgreSQL server."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg

from cli_run import kuroshio_command, run
from conftest import POSTGRES_SCHEMAS
from kuroshio.model import Observation

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
LOG_TAIL_CHARS = 20_000
POST_PATIENCE_S = 120.0
RETRY_PAUSE_S = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` (a guard against hangs, not a timing
    assertion: the limit is far above what any run needs)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in path.read_text().split()} if path.exists() else set()


def worker_roles(pid: int) -> dict[int, str]:
    """Each child of a supervisor and the role it serves (from its command line)."""
    roles = {}
    for child in _children(pid):
        with contextlib.suppress(OSError):  # one that just died and was reaped
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                words = handle.read().split(b"\0")
            if b"--role" in words:  # not a process that died and awaits its reaping
                roles[child] = words[words.index(b"--role") + 1].decode()
    return roles


class WaitingPost(threading.Thread):
    """A source posting ``observations`` to a node's operator API as NDJSON, on a thread of its
    own, so that the test goes on while the post waits (for the store, say); once joined,
    ``answer`` is the node's answer, or the error that ended the post."""

    def __init__(self, api_url: str, headers: dict[str, str], observations: Iterable[Observation]):
        super().__init__(daemon=True)
        self.url = f"{api_url}/api/observations"
        self.headers = {**headers, "content-type": "application/x-ndjson"}
        self.body = b"\n".join(msgspec.json.encode(item) for item in observations)
        self.answer: httpx.Response | httpx.HTTPError | None = None

    def run(self) -> None:
        try:
            self.answer = httpx.post(self.url, content=self.body, headers=self.headers, timeout=120)
        except httpx.HTTPError as error:
            self.answer = error


class StreamReader(threading.Thread):
    """A browser's view: the live stream of one node, collecting (id, version) as they come."""

    def __init__(self, url: str, expected: int, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = headers
        self.expected = expected
        self.seen: list[tuple[str, int]] = []
        self.connected = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(10.0, read=120.0), headers=self.headers
                ) as client,
                client.stream("GET", self.url) as response,
            ):
                response.raise_for_status()
                self.connected.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        item = json.loads(line[6:])
                        self.seen.append((item["id"], item["version"]))
                        if len(self.seen) >= self.expected:
                            return
        except BaseException as error:
            self.error = error
            self.connected.set()


class ServedNode:
    """One node directory and, while started, its ``kuroshio serve`` process."""

    def __init__(self, root: Path, party: str, backend: str = "sqlite") -> None:
        self.party = party
        self.backend = backend
        self.directory = root / party.lower()
        self.federation_port = free_port()
        self.api_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / f"{party.lower()}-serve.log"
        store: list[str] = []
        if backend == "postgres":
            # The server is named by KUROSHIO_STORE_DSN, which the backend fixture sets.
            self.schema = f"e2e_{uuid.uuid4().hex[:10]}_{party.lower()}"
            POSTGRES_SCHEMAS.append(self.schema)
            store = ["--store", "postgres", "--store-schema", self.schema]
        run(
            "init",
            "--party",
            party,
            "--port",
            self.federation_port,
            *store,
            self.directory,
            check=True,
        )
        config = self.directory / "kuroshio.toml"
        # The operator API port is the user's to choose in the config file.
        config.write_text(config.read_text().replace("port = 8080", f"port = {self.api_port}"))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read this node's store from outside, while its processes run (a missing table reads
        as empty)."""
        if self.backend == "postgres":
            return query_postgres(self.schema, sql, parameters)
        return query(self.directory / "store.sqlite", sql, parameters)

    @property
    def headers(self) -> dict[str, str]:
        """Credentials of the node's admin (the token ``kuroshio init`` made) for its API."""
        token = (self.directory / "keys" / "admin.token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def card(self) -> Path:
        path = self.directory.parent / f"{self.party.lower()}.card.json"
        run("partner", "card", "--node", self.directory, "--out", path, check=True)
        return path

    def pin(self, other: ServedNode) -> None:
        """Pin ``other`` (nothing is released to it until an agreement says so)."""
        run("partner", "add", other.card(), "--node", self.directory, check=True)

    def install(self, agreement: Path) -> str:
        """``kuroshio agreement install``, as the liaison officer would; its output."""
        return run("agreement", "install", agreement, "--node", self.directory, check=True).stdout

    def start(self, *options: str) -> dict[str, Any]:
        """Start serving (``options``: more of ``kuroshio serve``'s); the ready line."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*kuroshio_command(), "serve", "--node", str(self.directory), "--json", *options],
                stdout=subprocess.PIPE,
                stderr=log,
                env={**os.environ, "NO_COLOR": "1"},
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(remaining, 0))
            if not ready:
                self.kill()
                raise AssertionError(f"{self.party} node did not start:\n{self.log.read_text()}")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"{self.party} node exited:\n{self.log.read_text()}")
            line += chunk
        info: dict[str, Any] = json.loads(line)
        return info

    def stop(self) -> int:
        """SIGTERM, as an operator would; the exit status. A node still serving
        :data:`STOP_TIMEOUT_S` later is killed and fails the test with the end of its log, where
        it says what it was waiting for."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.party} node did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; "
                f"the end of its log:\n{self.log.read_text(errors='replace')[-LOG_TAIL_CHARS:]}"
            ) from None
        self._drop()
        return code

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)
        self._drop()

    def _drop(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def add(self, observations: Iterable[Observation], path: Path | None = None) -> None:
        """``kuroshio add`` of NDJSON, as an operator would."""
        source = path or self.directory.parent / f"{self.party.lower()}-add.ndjson"
        write_ndjson(source, observations)
        run("add", "--node", self.directory, source, "--json", check=True)

    def versions(self, prefix: str) -> set[tuple[str, int]]:
        """Every stored (id, version) whose id starts with ``prefix`` (history included)."""
        return {
            (str(i), int(v))
            for i, v in self.query(
                "SELECT id, version FROM observation_versions WHERE id LIKE ?",
                (prefix + "%",),
            )
        }

    def count(self, prefix: str) -> int:
        rows = self.query(
            "SELECT count(*) FROM observation_versions WHERE id LIKE ?",
            (prefix + "%",),
        )
        return int(rows[0][0]) if rows else 0

    def audit(self, kind: str) -> list[dict[str, Any]]:
        return [
            {"subject": subject, **json.loads(details)}
            for subject, details in self.query(
                "SELECT subject, details FROM audit_log WHERE kind = ? ORDER BY seq",
                (kind,),
            )
        ]


def post_reports(
    client: httpx.Client, url: str, items: Sequence[Observation], headers: dict[str, str]
) -> int:
    """POST ``items`` to ``url``'s ``/api/observations`` as a source would: again after a lost
    connection or a 5xx answer (a worker died, the store is away) until accepted, since taking
    the same reports twice changes nothing; how many tries failed. A 4xx answer fails at once."""
    body = b"\n".join(msgspec.json.encode(item) for item in items)
    headers = {**headers, "content-type": "application/x-ndjson"}
    deadline = time.monotonic() + POST_PATIENCE_S
    failed = 0
    while True:
        try:
            response = client.post(f"{url}/api/observations", content=body, headers=headers)
            why = f"{response.status_code} {response.text}"
        except httpx.TransportError as error:
            response, why = None, repr(error)
        if response is not None and response.status_code == 200:
            return failed
        if response is not None and response.status_code < 500:
            raise AssertionError(f"{url} refused the reports: {why}")
        failed += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} took no reports in {POST_PATIENCE_S:.0f} s: {why}")
        time.sleep(RETRY_PAUSE_S)


def agree(nodes: Sequence[ServedNode], text: str, name: str = "agreement") -> Path:
    """Every node signs the agreement ``text`` with ``kuroshio agreement sign`` and installs it;
    the signed file."""
    path = nodes[0].directory.parent / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    for node in nodes:
        run("agreement", "sign", path, "--node", node.directory, check=True)
    for node in nodes:
        node.install(path)
    return path


def query(path: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read another process's store without disturbing it (read-only; a missing table reads
    as empty)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            return list(conn.execute(sql, parameters))
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise


def query_postgres(schema: str, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The same read on a node's PostgreSQL schema (``?`` placeholders, as for SQLite)."""
    with psycopg.connect(os.environ["KUROSHIO_STORE_DSN"], autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        try:
            return list(conn.execute(sql.replace("%", "%%").replace("?", "%s"), parameters))
        except psycopg.errors.UndefinedTable:
            return []


def write_ndjson(path: Path, observations: Iterable[Observation]) -> None:
    encoder = msgspec.json.Encoder()
    with path.open("wb") as out:
        for item in observations:
            out.write(encoder.encode(item) + b"\n")
