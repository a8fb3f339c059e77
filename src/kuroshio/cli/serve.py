"""``kuroshio serve``: run the node (federation endpoint, operator API, links) until stopped.

It runs :func:`kuroshio.federation.serve.serve`, logs to standard error and prints where the node
listens. The web server comes in with this module only, so other commands start without it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from kuroshio.cli.common import NodeDir
from kuroshio.federation.serve import ServeInfo, serve
from kuroshio.node import Node, open_node

app = typer.Typer(add_completion=False)


@app.command("serve")
def serve_command(
    node_dir: NodeDir = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the ready line as JSON.")] = False,
) -> None:
    """Serve the node: federation endpoint (mTLS) and operator API, links to every partner."""
    with open_node(node_dir) as node:
        _serve(node, as_json=as_json)


def _serve(node: Node, *, as_json: bool) -> None:
    """Serve until SIGINT or SIGTERM, logging to stderr; print where the node listens."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    for warning in node.certificate_warnings():
        logging.getLogger("kuroshio.keys").warning("%s: renew it (kuroshio keys status)", warning)

    def ready(info: ServeInfo) -> None:
        if as_json:
            sys.stdout.write(msgspec.json.encode(info).decode() + "\n")
        else:
            sys.stdout.write(
                f"kuroshio {info.party} node {info.node} serving (pid {info.pid})\n"
                f"  federation  {info.federation_url}\n"
                f"  operator    {info.api_url}\n"
            )
        sys.stdout.flush()

    asyncio.run(serve(node, on_ready=ready))
