"""``kuroshio demo``: build demo nodes, play the scenario into them and show what they hold.

Today the demo runs one node (TWN) on the embedded store; it does not yet federate nodes.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kuroshio.demo.scenario import scenario
from kuroshio.node import init_node
from kuroshio.store import ObservationFilter


def run_demo(directory: Path, console: Console) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=2)
    with init_node(directory / "twn", "TWN") as node:
        observations = list(scenario("TWN", start))
        result = node.ingest(observations)
        console.print(
            f"[bold]kuroshio demo[/] — single node TWN at {directory / 'twn'} "
            "(federation between nodes is not part of this demo yet)"
        )
        console.print(f"Stored {result.inserted} TWN radar reports of the built-in scenario.")
        table = Table(title="What TWN holds, by platform")
        for column in ("platform", "class", "reports", "first (UTC)", "last (UTC)"):
            table.add_column(column)
        by_type: dict[str, list[dt.datetime]] = {}
        classes: dict[str, str] = {}
        for obs in node.store.iter_query(ObservationFilter()):
            assert obs.platform is not None and obs.platform.type is not None
            by_type.setdefault(obs.platform.type, []).append(obs.observed_at)
            classes[obs.platform.type] = obs.platform.platform_class or ""
        for platform_type, times in sorted(by_type.items()):
            table.add_row(
                platform_type,
                classes[platform_type],
                str(len(times)),
                min(times).strftime("%H:%M"),
                max(times).strftime("%H:%M"),
            )
        console.print(table)
        console.print(
            f"Try: kuroshio query --node {directory / 'twn'} --class bomber --format geojson"
        )
