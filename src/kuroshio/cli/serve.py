"""``kuroshio serve``: run the node (federation endpoint, operator API, links) until stopped.

It runs :func:`kuroshio.federation.serve.serve` (or, with ``--workers``, the supervisor of
:mod:`kuroshio.federation.workers`), logs to standard error and prints where the node listens.
The web server comes in with this module only, so other commands start without it.
"""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import gc
import logging
import os
import socket
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import msgspec
import typer

from kuroshio.cli.common import NodeDir
from kuroshio.federation.serve import ServeInfo, serve
from kuroshio.federation.workers import supervise
from kuroshio.node import open_node

app = typer.Typer(add_completion=False)
logger = logging.getLogger("kuroshio.serve")

STOP_REPORT_S: Final = 10.0
"""A node still stopping this long after the signal says where each of its threads is."""
STOP_REPORT_AGAIN_S: Final = 30.0


class SlowStopReport:
    """Started when the node is told to stop: while the process has not ended, after
    :data:`STOP_REPORT_S` and then every :data:`STOP_REPORT_AGAIN_S`, a warning in the log and
    where each thread is (Python's own traceback dump, which needs no lock another thread may
    hold). A stop that hangs then says what it waits for. It runs on a daemon thread, so it
    ends with the process, wherever the process was waiting (threads are joined last of all)."""

    def __init__(
        self, first_s: float = STOP_REPORT_S, again_s: float = STOP_REPORT_AGAIN_S
    ) -> None:
        self._first_s, self._again_s = first_s, again_s
        self._since: float | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = time.monotonic()
            threading.Thread(target=self._run, name="slow stop report", daemon=True).start()

    def _run(self) -> None:
        assert self._since is not None
        wait = self._first_s
        while True:
            time.sleep(wait)
            logger.warning(
                "still stopping %.0f s after the signal to stop; where each thread is:",
                time.monotonic() - self._since,
            )
            for handler in logging.getLogger().handlers:
                handler.flush()
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            wait = self._again_s


class ServeRole(StrEnum):
    all = "all"
    api = "api"
    exchange = "exchange"
    receive = "receive"
    send = "send"


@app.command("serve")
def serve_command(
    node_dir: NodeDir = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the ready line as JSON.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="API processes beside one exchange process, all sharing the node's PostgreSQL"
            " store (0: one process for everything)."
        ),
    ] = 0,
    receivers: Annotated[
        int,
        typer.Option(
            help="Processes taking partners' links in, sharing the federation port, beside one"
            " process for the sending links (PostgreSQL store; 0: one exchange process)."
        ),
    ] = 0,
    role: Annotated[ServeRole, typer.Option(hidden=True)] = ServeRole.all,
    api_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    federation_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Serve the node: federation endpoint (mTLS) and operator API, links to every partner.

    With --workers N (a node on PostgreSQL) the node runs as N API processes and one exchange
    process under this one, which restarts any that dies; with --receivers M too, the exchange
    runs as M receiving processes and one sending process."""
    _logging()
    with open_node(node_dir) as node:
        if role is ServeRole.all:  # once per node, not again in each worker
            for warning in node.certificate_warnings():
                logging.getLogger("kuroshio.keys").warning(
                    "%s: renew it (kuroshio keys status)", warning
                )
        ready = functools.partial(_print_ready, as_json=as_json)
        if role is ServeRole.all and (workers or receivers):
            supervise(node, max(workers, 1), receivers=receivers, on_ready=ready)
            return
        api_socket = None if api_fd is None else socket.socket(fileno=api_fd)
        federation_socket = None if federation_fd is None else socket.socket(fileno=federation_fd)
        _collect_less_often()
        asyncio.run(
            serve(
                node,
                on_ready=ready,
                on_stop=SlowStopReport().start,
                role=role.value,
                api_socket=api_socket,
                federation_socket=federation_socket,
                receivers=max(receivers, 1),
            )
        )


YOUNG_OBJECTS_BEFORE_COLLECTING = 50_000
"""The collector's first threshold in a serving process (Python's default is 700)."""


def _collect_less_often() -> None:
    """Let the cyclic garbage collector run only once 50 000 more objects are alive than at its
    last run. A received batch of 1 000 items holds thousands of tuples and lists (its rows)
    while it is opened and taken in, freed by their reference counts once it is: with the
    default threshold the collector went over them one to two times per batch, about 1.7 µs
    of a receiving process's CPU per item, and found nothing to free."""
    gc.set_threshold(YOUNG_OBJECTS_BEFORE_COLLECTING, *gc.get_threshold()[1:])


def _logging() -> None:
    worker = os.environ.get("KUROSHIO_WORKER")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s "
        + (f"[{worker}] " if worker else "")
        + "%(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)


def _print_ready(info: ServeInfo, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.encode(info).decode() + "\n")
    else:
        sys.stdout.write(
            f"kuroshio {info.party} node {info.node} serving (pid {info.pid})\n"
            f"  federation  {info.federation_url}\n"
            f"  operator    {info.api_url}\n"
            + "".join(f"  cot {name:<7} {where}\n" for name, where in info.cot.items())
        )
    sys.stdout.flush()
