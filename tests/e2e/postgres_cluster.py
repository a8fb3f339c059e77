"""A PostgreSQL cluster of a test's own: ``initdb`` and ``pg_ctl`` of the machine's PostgreSQL, a
data directory of its own and a free port, so that a test may crash and restart the server
without disturbing the shared one on 5432. It runs the server; it knows nothing of kuroshio."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final, Literal

import psycopg
from federation_nodes import free_port

SERVER_PROGRAMS: Final = ("initdb", "pg_ctl", "postgres")
SERVER_OWNER: Final = "postgres"
"""The system user that runs the cluster when the tests run as root (initdb refuses root)."""
SUPERUSER: Final = "postgres"
PG_CTL_TIMEOUT_S: Final = 60
"""How long pg_ctl waits for the server to start or stop (a guard against hangs)."""
ShutdownMode = Literal["smart", "fast", "immediate"]


def _version(bindir: Path) -> int:
    """The major version a ``/usr/lib/postgresql/<major>/bin`` directory holds (0 if unnamed)."""
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(found.stdout.strip())


def server_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: where the ``pg_ctl`` on
    PATH really lives, ``pg_config --bindir``, then the newest ``/usr/lib/postgresql/*/bin``."""
    candidates: list[Path] = []
    for program in ("pg_ctl", "initdb"):
        found = shutil.which(program)
        if found is not None:
            candidates.append(Path(found).resolve().parent)
    bindir = _pg_config_bindir()
    if bindir is not None:
        candidates.append(bindir)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    for candidate in candidates:
        if all(os.access(candidate / program, os.X_OK) for program in SERVER_PROGRAMS):
            return candidate
    return None


def missing_requirement(bindir: Path | None) -> str | None:
    """Why a private cluster cannot run on this machine (``bindir``: :func:`server_bindir`), or
    None when it can."""
    if bindir is None:
        return (
            "initdb, pg_ctl and postgres not found (on PATH, by pg_config --bindir or in"
            " /usr/lib/postgresql/*/bin); install PostgreSQL's server package"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_OWNER)
        except KeyError:
            return f"running as root, and there is no {SERVER_OWNER!r} system user to run initdb"
        if shutil.which("runuser") is None and shutil.which("su") is None:
            return f"running as root, and neither runuser nor su can run initdb as {SERVER_OWNER}"
    return None


class PostgresCluster:
    """One private cluster: made by :meth:`create`, served on 127.0.0.1 with trust
    authentication, restarted and removed by the test."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        # Not under the test's tmp_path: as root that is private to root, and the server runs
        # as the postgres user, who must reach its data directory.
        self.root = Path(tempfile.mkdtemp(prefix="kuroshio-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._owner = pwd.getpwnam(SERVER_OWNER) if os.geteuid() == 0 else None
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"

    def _run(self, program: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs as the cluster's owner; fail with its output and the
        server's log."""
        command = [str(self.bindir / program), *map(str, args)]
        if self._owner is not None:
            if shutil.which("runuser") is not None:
                command = ["runuser", "-u", SERVER_OWNER, "--", *command]
            else:
                command = ["su", SERVER_OWNER, "-s", "/bin/sh", "-c", shlex.join(command)]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.root,  # the owner may not reach the test's working directory
            timeout=PG_CTL_TIMEOUT_S * 2,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(map(str, args))} exited {result.returncode}\n"
                f"{result.stdout}{result.stderr}\nserver log:\n{self.server_log()}"
            )
        return result

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(none)"

    def create(self) -> None:
        """initdb, then start the server."""
        self._run(
            "initdb",
            "--pgdata",
            self.data,
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        # In the configuration file, so that every restart keeps them. Without fsync a crash of
        # the server (what a test does) still loses nothing committed: the kernel holds what
        # was written; only a crash of the machine would.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\n"
            )
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, *options: str) -> None:
        self._run(
            "pg_ctl",
            action,
            "--pgdata",
            self.data,
            "--log",
            self.log,
            "--wait",
            "--timeout",
            str(PG_CTL_TIMEOUT_S),
            *options,
        )

    def restart(self, mode: ShutdownMode) -> None:
        """Stop the server (``immediate``: a crash, recovered from the WAL on start; ``fast``:
        every session cut, then a clean shutdown) and start it again; returns once it accepts
        connections."""
        self._pg_ctl("restart", "--mode", mode)

    def stop(self) -> None:
        """Stop the server (``fast``: every session cut, then a clean shutdown)."""
        self._pg_ctl("stop", "--mode", "fast")

    def start(self) -> None:
        """Start the stopped server again; returns once it accepts connections."""
        self._pg_ctl("start")

    def started_at(self) -> dt.datetime:
        """When the server now running started (a restart changes it)."""
        with psycopg.connect(self.dsn, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
        assert row is not None and isinstance(row[0], dt.datetime)
        return row[0]

    def remove(self) -> None:
        """Stop the server (if it runs) and delete the cluster."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "--mode", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
