"""The node's own commands: ``init``, ``add``, ``query``, ``schema`` and ``version``.

Each parses options, calls the library and prints (rich tables for people, NDJSON, GeoJSON or CSV
for other tools). Nothing here decides or stores anything itself.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from kuroshio import __version__
from kuroshio.cli.common import (
    NodeDir,
    at_least_one,
    console,
    err_console,
    parse_bbox,
    parse_time,
    progress_bar,
    split_values,
)
from kuroshio.errors import InputError
from kuroshio.export.geojson import feature_collection
from kuroshio.export.kml import MAX_KML_ITEMS, kml_bytes, kmz_bytes
from kuroshio.ingest.load import LoadSummary, store_records
from kuroshio.ingest.records import own_only, read_observations
from kuroshio.model import Observation, json_schema
from kuroshio.node import Node, init_node, open_node
from kuroshio.store import ObservationFilter

app = typer.Typer()
MAX_PRINTED_REJECTIONS = 50


class StoreBackend(StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"


# --- init -----------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Directory to create the node in.")],
    party: Annotated[str, typer.Option(help="This node's party (ISO alpha-3, e.g. TWN).")],
    name: Annotated[str | None, typer.Option(help="Node name (default: party-1).")] = None,
    port: Annotated[int, typer.Option(help="Federation port (mTLS, partners only).")] = 8443,
    api_port: Annotated[int, typer.Option(help="API and picture port.")] = 8080,
    host: Annotated[str, typer.Option(help="Address the node listens on.")] = "127.0.0.1",
    hostname: Annotated[
        list[str] | None,
        typer.Option(help="DNS name or IP partners use to reach this node (repeatable)."),
    ] = None,
    store: Annotated[
        StoreBackend,
        typer.Option(help="Where the node keeps everything: one SQLite file, or PostgreSQL."),
    ] = StoreBackend.sqlite,
    store_schema: Annotated[
        str | None,
        typer.Option(help="PostgreSQL schema (default: kuroshio_<party>_<name>)."),
    ] = None,
) -> None:
    """Create a node directory: configuration, store, signing key, party CA and TLS certificate.

    With --store postgres the node connects to the server named by KUROSHIO_STORE_DSN (or by
    store.dsn in kuroshio.toml, added by hand) and creates its tables there."""
    section = {"backend": store.value}
    if store_schema is not None:
        section["schema"] = store_schema
    with init_node(
        directory,
        party,
        name=name,
        port=port,
        api_port=api_port,
        host=host,
        hostnames=tuple(hostname or ()),
        store=section,
    ) as node:
        console.print(
            f"Created node [bold]{node.config.node.name}[/] for party [bold]{node.party}[/] "
            f"in {directory}"
        )


# --- add ------------------------------------------------------------------------------------


def report_summary(summary: LoadSummary, *, as_json: bool, title: str) -> None:
    """Print an import summary (table or JSON) and the refused records with where and why."""
    if as_json:
        payload = {
            "read": summary.read,
            "inserted": summary.inserted,
            "superseded": summary.superseded,
            "unchanged": summary.unchanged,
            "stale": summary.stale,
            "rejected": [{"location": e.location, "reason": e.reason} for e in summary.rejected],
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    for error in summary.rejected[:MAX_PRINTED_REJECTIONS]:
        err_console.print(f"[red]rejected[/] {error.location}: {error.reason}", highlight=False)
    if len(summary.rejected) > MAX_PRINTED_REJECTIONS:
        more = len(summary.rejected) - MAX_PRINTED_REJECTIONS
        err_console.print(f"… and {more} more rejected records (use --json for all)")
    table = Table(title=title)
    for column in ("read", "new", "corrected", "unchanged", "older version", "rejected"):
        table.add_column(column, justify="right")
    table.add_row(
        *map(
            str,
            (
                summary.read,
                summary.inserted,
                summary.superseded,
                summary.unchanged,
                summary.stale,
                len(summary.rejected),
            ),
        )
    )
    console.print(table)


@app.command()
def add(
    files: Annotated[
        list[Path], typer.Argument(help="JSON or NDJSON files of observations; '-' reads stdin.")
    ],
    node_dir: NodeDir = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Add this node's own observations from JSON/NDJSON files; bad records (and records of
    another origin) are reported and skipped. Files are read record by record into one
    transaction: a file that turns out malformed or truncated, even at its end, stores nothing."""
    with open_node(node_dir) as node:
        summary = LoadSummary()
        with progress_bar(as_json) as progress, node.intake() as session:
            task = progress.add_task("adding", total=None)
            for path in files:
                records = own_only(
                    read_observations(
                        path,
                        max_record_bytes=node.config.limits.max_record_bytes,
                        max_file_bytes=node.config.limits.max_file_bytes,
                    ),
                    node.party,
                )
                part = store_records(
                    session.ingest,
                    records,
                    on_chunk=lambda s: progress.update(task, completed=summary.read + s.read),
                )
                _merge(summary, part)
        report_summary(summary, as_json=as_json, title=f"kuroshio add → {node.party}")
    if summary.rejected:
        raise typer.Exit(1)


def _merge(total: LoadSummary, part: LoadSummary) -> None:
    total.read += part.read
    total.inserted += part.inserted
    total.superseded += part.superseded
    total.unchanged += part.unchanged
    total.stale += part.stale
    total.rejected.extend(part.rejected)


# --- query ----------------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    ndjson = "ndjson"
    geojson = "geojson"
    csv = "csv"
    kml = "kml"
    kmz = "kmz"


@app.command()
def query(
    node_dir: NodeDir = Path("."),
    start: Annotated[str | None, typer.Option(help="From (ISO date/time, UTC if no zone).")] = None,
    end: Annotated[str | None, typer.Option(help="Until, exclusive.")] = None,
    bbox: Annotated[
        str | None, typer.Option(help="min_lon,min_lat,max_lon,max_lat (WGS84).")
    ] = None,
    kind: Annotated[list[str] | None, typer.Option(help="air, sea or area (repeatable).")] = None,
    origin: Annotated[list[str] | None, typer.Option(help="Origin party (repeatable).")] = None,
    platform_class: Annotated[
        list[str] | None, typer.Option("--class", help="Platform class, e.g. bomber.")
    ] = None,
    platform_type: Annotated[
        list[str] | None, typer.Option("--type", help="Platform type code, e.g. H-6K.")
    ] = None,
    retracted: Annotated[bool, typer.Option(help="Include retracted observations.")] = False,
    limit: Annotated[
        int | None, typer.Option(help="At most this many (default: 100 for table, all otherwise).")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
) -> None:
    """Query current observations: rich table, or NDJSON / GeoJSON / CSV / KML / KMZ for other
    tools (KML and KMZ hold at most 50 000 observations; narrow the query beyond that)."""
    selection = ObservationFilter(
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
        bbox=parse_bbox(bbox),
        kinds=split_values(kind),
        origins=tuple(o.upper() for o in split_values(origin)),
        platform_classes=split_values(platform_class),
        platform_types=split_values(platform_type),
        include_retracted=retracted,
    )
    if limit is not None:
        at_least_one(limit, "--limit")
    with open_node(node_dir) as node:
        if output is OutputFormat.table:
            _print_table(node, selection, limit or 100)
            return
        items = node.store.iter_query(selection)
        if limit is not None:
            items = _take(items, limit)
        if output in (OutputFormat.kml, OutputFormat.kmz):
            _write_kml(node, items, kmz=output is OutputFormat.kmz)
            return
        WRITERS[output](items)


def _take(items: Iterator[Observation], limit: int) -> Iterator[Observation]:
    for number, item in enumerate(items):
        if number >= limit:
            return
        yield item


def _position_text(observation: Observation) -> str:
    lon, lat = observation.geometry.positions()[0]
    return f"{lat:.2f}N {lon:.2f}E"


def _print_table(node: Node, selection: ObservationFilter, limit: int) -> None:
    total = node.store.count(selection)
    page = node.store.query(selection, limit=limit)
    table = Table(title=f"{node.party}: {len(page.items)} of {total} observations")
    for column in ("observed (UTC)", "origin", "kind", "platform", "class", "position", "id", "v"):
        table.add_column(column, overflow="fold")
    for obs in page.items:
        platform = obs.platform
        what = ""
        if platform is not None:
            what = f"{platform.type or platform.label or '?'} ×{platform.count}"
        table.add_row(
            obs.observed_at.strftime("%Y-%m-%d %H:%M"),
            obs.origin,
            obs.kind,
            what,
            (platform.platform_class or "") if platform else "",
            _position_text(obs),
            obs.id,
            str(obs.version),
        )
    console.print(table)


_json = msgspec.json.Encoder()


def _write_ndjson(items: Iterator[Observation]) -> None:
    out = sys.stdout.buffer
    for item in items:
        out.write(_json.encode(item) + b"\n")
    out.flush()


def _write_geojson(items: Iterator[Observation]) -> None:
    out = sys.stdout.buffer
    for piece in feature_collection(items):
        out.write(piece)
    out.flush()


CSV_COLUMNS = (
    "id",
    "version",
    "origin",
    "kind",
    "observed_at",
    "until",
    "platform_type",
    "platform_class",
    "count",
    "nationality",
    "lon",
    "lat",
    "geometry_type",
    "tlp",
    "retracted",
)


def _write_csv(items: Iterator[Observation]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for obs in items:
        lon, lat = obs.geometry.positions()[0]
        platform = obs.platform
        writer.writerow(
            (
                obs.id,
                obs.version,
                obs.origin,
                obs.kind,
                obs.observed_at.isoformat().replace("+00:00", "Z"),
                obs.until.isoformat().replace("+00:00", "Z") if obs.until else "",
                platform.type if platform else "",
                platform.platform_class if platform else "",
                platform.count if platform else "",
                platform.nationality if platform else "",
                lon,
                lat,
                type(obs.geometry).__name__,
                obs.marking.tlp,
                int(obs.retracted),
            )
        )


def _write_kml(node: Node, items: Iterator[Observation], *, kmz: bool) -> None:
    chosen = list(_take(items, MAX_KML_ITEMS + 1))
    if len(chosen) > MAX_KML_ITEMS:
        raise InputError(
            f"more than {MAX_KML_ITEMS} observations for one KML file: narrow --start/--end, "
            "--bbox or the filters, or use --format geojson"
        )
    write = kmz_bytes if kmz else kml_bytes
    body = write(
        chosen,
        own_party=node.party,
        partners=sorted(node.partners),
        name=f"kuroshio {node.party}: {len(chosen)} observations",
    )
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


WRITERS: dict[OutputFormat, Callable[[Iterator[Observation]], None]] = {
    OutputFormat.ndjson: _write_ndjson,
    OutputFormat.geojson: _write_geojson,
    OutputFormat.csv: _write_csv,
}


# --- schema, version ------------------------------------------------------------------------


@app.command()
def schema() -> None:
    """Print the JSON Schema of the public records (Observation, Event, Party, Marking)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")


@app.command()
def version() -> None:
    """Print the kuroshio version."""
    console.print(f"kuroshio {__version__}")
