"""``kuroshio serve --workers N``: one node as several processes sharing its PostgreSQL schema.

The supervising process binds the operator API's socket once and starts N API workers that all
accept on it, and one exchange process (the federation listener, the inbox and the sending
links). With ``--receivers M`` it binds the federation socket too and splits the exchange: M
receiving processes accept partners' links on it (a link is taken in by whichever process holds
its connection; a lock per link in the store keeps its batches in order and taken in once) and
one sending process runs every sending link. It restarts any worker that dies (a crash,
``kill -9``, a lost database connection) with back-off and jitter, and stops them all on SIGINT
or SIGTERM. Every worker writes through its own transactions, so a worker killed at any moment
loses and doubles nothing; the locks of :mod:`kuroshio.store.postgres` keep the audit chain and
each link's batches in order. It starts processes and watches them; the work itself is
:func:`kuroshio.federation.serve.serve`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Final

import msgspec

from kuroshio.errors import ConfigError
from kuroshio.federation.serve import FORCED_EXIT, Role, ServeInfo, check_api_binding
from kuroshio.node import Node, exclusive

logger = logging.getLogger("kuroshio.workers")

READY_TIMEOUT_S: Final = 60.0
RESTART_MIN_S: Final = 0.2
RESTART_MAX_S: Final = 10.0
RESTART_FACTOR: Final = 2.0
RESTART_JITTER: Final = 0.25
"""Up to this share of a restart wait is added at random, so workers that died together (a
database restart) do not all come back at the same instant."""
STEADY_S: Final = 30.0
"""A worker that ran this long before it died is restarted at once, not after a long wait."""
STOP_TIMEOUT_S: Final = 30.0
REBALANCE_AGAIN_S: Final = 2.0
"""After a receiving process comes up, the others are asked to pass on links beyond their share
at once and once more this much later (a connection in its handshake the first time is not
counted yet)."""


class Worker:
    """One child process of the node and how to start it again."""

    def __init__(self, name: str, role: Role, command: Sequence[str], pass_fds: tuple[int, ...]):
        self.name = name
        self.role = role
        self.command = list(command)
        self.pass_fds = pass_fds
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.wait_s = RESTART_MIN_S
        self.restarts = 0
        self.info: ServeInfo | None = None

    def start(self) -> None:
        self.info = None
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            pass_fds=self.pass_fds,
            env={**os.environ, "KUROSHIO_WORKER": self.name},
        )
        self.started_at = time.monotonic()

    def ready(self, deadline: float) -> ServeInfo:
        """The worker's ready line (where it listens); raises ConfigError when it exits or
        stays silent."""
        process = self.process
        assert process is not None and process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([process.stdout], [], [], max(remaining, 0.0))
            if not readable:
                raise ConfigError(f"worker {self.name} did not start in {READY_TIMEOUT_S:.0f} s")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise ConfigError(f"worker {self.name} exited ({process.wait()}) while starting")
            line += chunk
        self.info = msgspec.json.decode(line, type=ServeInfo)
        return self.info

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def next_wait(self) -> float:
        """How long to wait before starting this worker again (grows while it keeps dying)."""
        if time.monotonic() - self.started_at >= STEADY_S:
            self.wait_s = RESTART_MIN_S
        wait = self.wait_s * (1.0 + random.uniform(0.0, RESTART_JITTER))
        self.wait_s = min(self.wait_s * RESTART_FACTOR, RESTART_MAX_S)
        return wait

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, no waiting: what a second Ctrl+C asks for."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def reap(self) -> None:
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class _Stop(Exception):
    """SIGINT or SIGTERM."""


def _api_socket(node: Node) -> socket.socket:
    api = node.config.api
    return _listening(api.host, api.port, f"the operator API {api.url()}")


def _listening(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket the workers inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"{what} could not listen: {error}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _federation_socket(node: Node) -> socket.socket:
    """The federation port, bound once here and accepted on by every receiving process (TLS
    runs in them)."""
    federation = node.config.federation
    return _listening(federation.host, federation.port, f"federation {federation.url()}")


def _command(
    node: Node,
    role: Role,
    *,
    api_fd: int | None = None,
    federation_fd: int | None = None,
    receivers: int = 0,
) -> list[str]:
    command = [sys.executable, "-m", "kuroshio", "serve", "--node", str(node.directory)]
    command += ["--role", role, "--json"]
    if api_fd is not None:
        command += ["--api-fd", str(api_fd)]
    if federation_fd is not None:
        command += ["--federation-fd", str(federation_fd), "--receivers", str(receivers)]
    return command


def _team(
    node: Node, workers: int, receivers: int, api: int, federation: int | None
) -> list[Worker]:
    """The workers of a node: the exchange (or its sending and receiving processes) and the API."""
    if federation is None:
        team = [Worker("exchange", "exchange", _command(node, "exchange"), ())]
    else:
        team = [Worker("send", "send", _command(node, "send"), ())]
        team += [
            Worker(
                f"receive-{n}",
                "receive",
                _command(node, "receive", federation_fd=federation, receivers=receivers),
                (federation,),
            )
            for n in range(1, receivers + 1)
        ]
    team += [
        Worker(f"api-{n}", "api", _command(node, "api", api_fd=api), (api,))
        for n in range(1, workers + 1)
    ]
    return team


def supervise(
    node: Node,
    workers: int,
    *,
    receivers: int = 0,
    on_ready: Callable[[ServeInfo], None] | None = None,
) -> None:
    """Serve ``node`` as ``workers`` API processes and one exchange process (or, with
    ``receivers``, that many receiving processes and one sending process) until SIGINT or
    SIGTERM, restarting any that dies."""
    if node.config.store.backend != "postgres":
        raise ConfigError(
            f"{node.directory}: several processes share a node on PostgreSQL only; set"
            ' [store] backend = "postgres" (kuroshio init --store postgres), or serve without'
            " --workers and --receivers"
        )
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if receivers < 0:
        raise ConfigError("--receivers must be 0 (one exchange process) or more")
    check_api_binding(node)
    with exclusive(node), contextlib.ExitStack() as sockets:
        sock = sockets.enter_context(_api_socket(node))
        federation = None
        if receivers:
            federation = sockets.enter_context(_federation_socket(node))
        team = _team(
            node,
            workers,
            receivers,
            sock.fileno(),
            None if federation is None else federation.fileno(),
        )
        previous = {
            signum: signal.signal(signum, _raise_stop) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for worker in team:
                worker.start()
            deadline = time.monotonic() + READY_TIMEOUT_S
            infos = {worker.name: worker.ready(deadline) for worker in team}
            if on_ready is not None:
                on_ready(
                    ServeInfo(
                        party=node.party,
                        node=node.config.node.name,
                        federation_url=next(
                            i.federation_url for i in infos.values() if i.federation_url
                        ),
                        api_url=infos["api-1"].api_url,
                        pid=os.getpid(),
                    )
                )
            _watch(team, rebalance=[time.monotonic(), time.monotonic() + REBALANCE_AGAIN_S])
        except _Stop:
            pass
        finally:
            # Stopping, as a single process does: Ctrl+C again stops every process at once;
            # SIGTERM again (systemd signals every process of the unit) changes nothing.
            signal.signal(signal.SIGINT, _forcing(team))
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                for worker in team:
                    worker.stop()
                for worker in team:
                    worker.reap()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _forcing(team: list[Worker]) -> Callable[[int, FrameType | None], None]:
    """The supervisor's SIGINT handler while it stops: kill every worker and exit at once, as
    ``kill -9`` of the whole node would (nothing committed is lost; a transaction a worker had
    open is rolled back by the server)."""

    def force(signum: int, frame: FrameType | None) -> None:
        logger.warning("Ctrl+C again: stopping every process of the node now, without waiting")
        for worker in team:
            worker.kill()
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(FORCED_EXIT)

    return force


def _rebalance(team: list[Worker]) -> None:
    """Ask every running receiving process to pass on the links it holds beyond its share."""
    for worker in team:
        if worker.role == "receive" and worker.info is not None and worker.exited() is None:
            assert worker.process is not None
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGUSR1)


def _watch(team: list[Worker], rebalance: list[float]) -> None:
    """Restart workers as they die, until stopped; spread the links over the receiving
    processes at the ``rebalance`` times and whenever one of them has started again."""
    due: dict[str, float] = {}
    while True:
        now = time.monotonic()
        if rebalance and now >= rebalance[0]:
            rebalance.pop(0)
            _rebalance(team)
        for worker in team:
            code = worker.exited()
            if code is not None and worker.name not in due:
                wait = worker.next_wait()
                logger.warning(
                    "worker %s exited (%s); restarting in %.1f s", worker.name, code, wait
                )
                worker.reap()
                due[worker.name] = now + wait
            elif worker.name in due and now >= due[worker.name]:
                del due[worker.name]
                worker.restarts += 1
                worker.start()
                with contextlib.suppress(ConfigError):
                    # Its ready line is read so that its pipe never fills; a worker that cannot
                    # start is seen dead on the next round and waits longer.
                    worker.ready(time.monotonic() + READY_TIMEOUT_S)
                    if worker.role == "receive":
                        later = time.monotonic()
                        rebalance[:] = sorted([*rebalance, later, later + REBALANCE_AGAIN_S])
        time.sleep(0.1)


__all__ = ["Worker", "supervise"]
