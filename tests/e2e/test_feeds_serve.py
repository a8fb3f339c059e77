"""Each feed format over a real socket into a running node (``kuroshio serve``): the registry's
own ASTERIX sample capture and CAT062 tracks over UDP, AIS sentences built with pyais over UDP,
CoT from pytak as a real TAK client over TLS with a client certificate. Checked: the stored
tracks, the events derived along them, what the partner received under the agreement, and the
feeds' status through the CLI and the API (also a feed that cannot start: down, the node up)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asterix
import httpx
import pytest
import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from cli_run import run
from e2e.federation_nodes import ServedNode, agree, free_port, wait_until
from feed_support import (
    SAMPLE_RADARS,
    cot_event,
    make_tak_pki,
    send_with_pytak,
    tak_client,
)
from kuroshio.feeds.capture import read_capture
from kuroshio.feeds.writers import SystemTrack, ais_position, ais_static, cat062_block

AGREEMENT = """id = "feeds-e2e"
version = 1
title = "TWN – JPN feed exchange"
parties = ["TWN", "JPN"]
valid_from = {start}
valid_until = {end}

[[direction]]
from = "TWN"
to = ["JPN"]
[[direction.rule]]
id = "twn-jpn"
action = "release"
match = {{ kind = ["air", "sea"], tlp_at_most = "AMBER" }}
transform = {{ coarsen_km = 10 }}
"""
CAT048_SAMPLE = Path(asterix.get_sample_file("cat_034_048.pcap"))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _feeds(ports: dict[str, int], pki: Path) -> dict[str, Any]:
    marking = {"tlp": "AMBER", "releasable_to": ["JPN"]}
    return {
        "radar": {"kind": "asterix", "listen": f"udp://127.0.0.1:{ports['radar']}",
                  "categories": [62], "marking": marking},
        "radar-sample": {"kind": "asterix", "listen": f"udp://127.0.0.1:{ports['sample']}",
                         "categories": [48], "radars": SAMPLE_RADARS, "marking": marking},
        "coast": {"kind": "ais", "listen": f"udp://127.0.0.1:{ports['coast']}",
                  "marking": marking},
        "tak": {"kind": "cot", "listen": f"tls://127.0.0.1:{ports['tak']}", "marking": marking,
                "tls": {"certfile": str(pki / "server.pem"), "keyfile": str(pki / "server.key"),
                        "cafile": str(pki / "ca.pem")}},
        # a port no one may take: this feed stays down, and the node serves all the same
        "broken": {"kind": "ais", "listen": "udp://192.0.2.1:10110"},
    }  # fmt: skip


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedNode, ServedNode]]:
    root = tmp_path_factory.mktemp("feeds")
    twn, jpn = ServedNode(root, "TWN"), ServedNode(root, "JPN")
    twn.pin(jpn)
    jpn.pin(twn)
    start = NOW - dt.timedelta(hours=1)
    agree(
        [twn, jpn],
        AGREEMENT.format(
            start=f"{start:%Y-%m-%dT%H:%M:%SZ}",
            end=f"{start + dt.timedelta(days=2):%Y-%m-%dT%H:%M:%SZ}",
        ),
    )
    (root / "tak").mkdir()
    pki = make_tak_pki(root / "tak")
    twn.ports = {"radar": free_port(), "sample": free_port(), "coast": free_port(),  # type: ignore[attr-defined]
                 "tak": free_port()}  # fmt: skip
    twn.pki = pki  # type: ignore[attr-defined]
    config = twn.directory / "kuroshio.toml"
    config.write_text(
        config.read_text() + "\n" + tomli_w.dumps({"feeds": _feeds(twn.ports, pki)})  # type: ignore[attr-defined]
    )
    jpn.start()
    twn.start()
    try:
        yield twn, jpn
    finally:
        twn.stop()
        jpn.stop()


def _udp(port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
            time.sleep(0.001)  # a burst bigger than the socket buffer is the sender's loss


def _feed_states(node: ServedNode) -> dict[str, str]:
    """Each feed's state as ``kuroshio feed status`` reports it."""
    status = run("feed", "status", "--node", node.directory, "--json", check=True)
    return {report["name"]: report["state"] for report in json.loads(status.stdout)}


def _tracks(node: ServedNode, origin: str) -> dict[str, int]:
    return {
        str(track): int(updates)
        for track, updates in node.query(
            "SELECT track, updates FROM track_heads WHERE origin = ?", (origin,)
        )
    }


def _events(node: ServedNode) -> list[dict[str, Any]]:
    result = run("events", "--node", node.directory, "--json", check=True)
    events: list[dict[str, Any]] = json.loads(result.stdout)["events"]
    return events


@pytest.mark.e2e
def test_asterix_sample_capture_over_udp_is_stored_as_tracks_and_released(
    nodes: tuple[ServedNode, ServedNode],
) -> None:
    twn, jpn = nodes
    frames = [frame.data for frame in read_capture(CAT048_SAMPLE)]
    _udp(twn.ports["sample"], *frames)  # type: ignore[attr-defined]
    wait_until(lambda: any(t.startswith("cat048:25/") for t in _tracks(twn, "TWN")), "CAT048")
    sample_tracks = {t for t in _tracks(twn, "TWN") if t.startswith("cat048:25/")}
    wait_until(lambda: sample_tracks <= set(_tracks(jpn, "TWN")), "the sample's tracks at JPN")


@pytest.mark.e2e
def test_cat062_tracks_cross_the_median_line_once_each_and_jpn_receives_them_coarsened(
    nodes: tuple[ServedNode, ServedNode],
) -> None:
    twn, jpn = nodes
    start = NOW - dt.timedelta(minutes=30)
    blocks = []
    for step in range(12):  # two J-16s flying east over the median line (119.6 E here)
        at = start + dt.timedelta(seconds=30 * step)
        lon = 119.3 + 0.07 * step
        blocks.append(cat062_block(25, 100, [
            SystemTrack(4980, at, lon, 24.6, 90.0, 250.0, 7000.0, "J16"),
            SystemTrack(4981, at, lon, 24.62, 90.0, 250.0, 7000.0, "J16"),
        ]))  # fmt: skip
    _udp(twn.ports["radar"], *blocks, *blocks)  # type: ignore[attr-defined]  # twice: no new events
    wanted = {"cat062:25/100:4980", "cat062:25/100:4981"}
    wait_until(lambda: wanted <= set(_tracks(twn, "TWN")), "both CAT062 tracks")
    wait_until(lambda: all(_tracks(twn, "TWN")[t] == 12 for t in wanted), "every update")
    crossings = [
        e for e in _events(twn)
        if e["kind"] == "median_line_crossing" and "cat062:25/100:498" in e["remarks"]
    ]  # fmt: skip
    assert len(crossings) == 2 and {e["direction"] for e in crossings} == {"eastbound"}
    assert all(e["platform"]["type"] == "J-16" for e in crossings)
    # JPN received every update of both tracks, on the agreement's 10 km grid
    wait_until(lambda: all(_tracks(jpn, "TWN").get(t) == 12 for t in wanted), "tracks at JPN")
    with httpx.Client(headers=jpn.headers) as client:
        page = client.get(
            f"{jpn.api_url}/api/observations", params={"origin": "TWN", "limit": 10_000}
        ).json()
    received = [o for o in page["items"] if o.get("track") in wanted]
    assert len(received) == 24
    # coarsened: the two tracks 2 km apart fall into one 10 km cell at every update
    cells = {(o["track"][-1], tuple(o["geometry"]["coordinates"])) for o in received}
    assert {cell for _, cell in cells} == {cell for track, cell in cells if track == "0"}
    # and a grid can step across a line the aircraft never crossed: JPN derives no event from them
    assert not [e for e in _events(jpn) if "cat062:25/100:498" in (e["remarks"] or "")]
    # the picture's sortie panel counts two sorties, not 24 plots
    with httpx.Client(headers=twn.headers) as client:
        chart = client.get(
            f"{twn.api_url}/api/cop/sorties",
            params={"start": f"{start:%Y-%m-%d}", "end": f"{NOW:%Y-%m-%d}"},
        ).json()
    fighters = [s for s in chart["series"] if s["platform_class"] == "fighter"]
    assert sum(sum(s["counts"]) for s in fighters) == 2


@pytest.mark.e2e
def test_ais_from_pyais_over_udp_enters_the_adiz_once(
    nodes: tuple[ServedNode, ServedNode],
) -> None:
    twn, jpn = nodes
    start = NOW - dt.timedelta(minutes=20)
    lines = ais_static(412_400_017, start, name="SHANDONG", ship_type=35)
    for step in range(10):  # from outside into Taiwan's ADIZ, east of Hualien
        at = start + dt.timedelta(minutes=step)
        lines += ais_position(412_400_017, at, 123.6 - 0.1 * step, 23.5, course_deg=270.0,
                              speed_mps=9.0)  # fmt: skip
    _udp(twn.ports["coast"], *lines)  # type: ignore[attr-defined]
    wait_until(lambda: _tracks(twn, "TWN").get("ais:412400017") == 10, "the ship's track")
    entries = [
        e for e in _events(twn)
        if e["kind"] == "adiz_entry" and "ais:412400017" in (e["remarks"] or "")
    ]  # fmt: skip
    assert entries and len({e["zone"] for e in entries}) == len(entries)
    wait_until(lambda: _tracks(jpn, "TWN").get("ais:412400017") == 10, "the ship at JPN")


@pytest.mark.e2e
def test_pytak_over_tls_and_the_feeds_status(nodes: tuple[ServedNode, ServedNode]) -> None:
    twn, _ = nodes
    pki: Path = twn.pki  # type: ignore[attr-defined]
    wait_until(lambda: _feed_states(twn).get("tak") == "up", "the TAK feed listening")
    client = tak_client(
        f"tls://127.0.0.1:{twn.ports['tak']}",  # type: ignore[attr-defined]
        PYTAK_TLS_CLIENT_CERT=str(pki / "client.pem"),
        PYTAK_TLS_CLIENT_KEY=str(pki / "client.key"),
        PYTAK_TLS_CLIENT_CAFILE=str(pki / "ca.pem"),
        TAK_PROTO="1",
    )
    asyncio.run(send_with_pytak(client, [cot_event("PLAN-101", "a-h-S-C-L-D-D")]))
    wait_until(lambda: "cot:PLAN-101" in _tracks(twn, "TWN"), "the TAK client's track")
    status = json.loads(run("feed", "status", "--node", twn.directory, "--json").stdout)
    by_name = {report["name"]: report for report in status}
    assert by_name["tak"]["state"] == "up" and by_name["tak"]["status"]["connections"] >= 0
    assert by_name["broken"]["state"] == "down"
    assert "192.0.2.1" in by_name["broken"]["status"]["last_error"]
    with httpx.Client(headers=twn.headers) as http:
        api = http.get(f"{twn.api_url}/api/feeds").json()
        spec = http.get(f"{twn.api_url}/openapi.json").json()
        health = http.get(f"{twn.api_url}/api/health")
    assert {r["name"]: r["state"] for r in api}["broken"] == "down"
    assert "/api/feeds" in spec["paths"] and "FeedReport" in spec["components"]["schemas"]
    assert health.status_code == 200  # a feed that is down does not stop the node
    # The same, as the node's metrics give it to a monitoring system (read by Prometheus's own
    # parser): the TAK feed up with what it delivered, the broken one down and restarting.
    samples: dict[tuple[str, str | None], float] = {}

    def scraped() -> bool:
        with httpx.Client(headers=twn.headers) as http:
            exposition = http.get(f"{twn.api_url}/metrics").text
        samples.clear()
        samples.update(
            ((sample.name, sample.labels.get("feed")), sample.value)
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
        )
        return (  # the status the feeds' process writes every few seconds has caught up
            samples["kuroshio_feed_delivered_total", "tak"] >= 1
            and samples["kuroshio_feed_restarts_total", "broken"] >= 1
        )

    wait_until(scraped, "the feeds' counters in the node's metrics", 30)
    assert samples["kuroshio_feed_up", "tak"] == 1 and samples["kuroshio_feed_up", "broken"] == 0
    reported = {r["name"]: r["status"] for r in api}
    for name in ("tak", "broken"):
        for counter in ("frames", "delivered", "restarts"):
            # Read after the API's report: the same counts, or later ones.
            assert samples[f"kuroshio_feed_{counter}_total", name] >= reported[name][counter]
