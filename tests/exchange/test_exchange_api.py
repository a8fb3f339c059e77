"""The operator API over HTTP against a real server: health, add (bounded), query with cursor
paging, events, links."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from api_server import serving
from kuroshio.errors import ConfigError
from kuroshio.federation.serve import check_api_binding
from kuroshio.model import Event, Marking, Observation, Point
from kuroshio.node import Node, init_node, open_node, save_config
from observations import T0, observation


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with init_node(tmp_path / "twn", "TWN") as created:
        created.config.api.max_body_bytes = 64 * 1024
        save_config(created.directory, created.config)
    with open_node(tmp_path / "twn") as opened:
        yield opened


@pytest.fixture
def client(node: Node) -> Iterator[httpx.Client]:
    with serving(node) as http:
        yield http


class ObservationPage(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Observation]
    next_cursor: str | None


class EventPage(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Event]


def _ndjson(numbers: range) -> bytes:
    return b"\n".join(msgspec.json.encode(observation(n, lon=120 + n / 100)) for n in numbers)


def test_health_names_the_node(client: httpx.Client) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["party"] == "TWN" and health["node"] == "twn-1"
    assert health["federation_url"] == "https://127.0.0.1:8443"


def test_observations_added_as_ndjson_or_array_and_paged_back(
    client: httpx.Client, node: Node
) -> None:
    added = client.post("/api/observations", content=_ndjson(range(100))).json()
    assert added["inserted"] == 100 and added["rejected"] == []
    array = msgspec.json.encode([observation(n) for n in range(100, 160)])
    assert client.post("/api/observations", content=array).json()["inserted"] == 60

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 70, "origin": "TWN"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/observations", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"TWN:test:{n}" for n in range(160))
    # Every item answered is the observation as stored, whole and valid as a record.
    answer = client.get("/api/observations", params={"limit": 1000}).content
    page = msgspec.json.decode(answer, type=ObservationPage)
    assert page.next_cursor is None and len(page.items) == 160
    assert page.items == [node.store.get(item.id) for item in page.items]
    [entry, *_] = list(node.audit.entries("ingest"))
    assert entry.subject == "100 observations via api"


def test_bad_records_are_reported_and_the_rest_stored(client: httpx.Client) -> None:
    body = _ndjson(range(2)) + b'\n{"id": "nope"}\n' + _ndjson(range(2, 3))
    result = client.post("/api/observations", content=body).json()
    assert result["inserted"] == 3
    [rejected] = result["rejected"]
    assert rejected["location"] == "line 3" and "$.id" in rejected["reason"]


def test_a_body_over_the_limit_is_refused_whole(client: httpx.Client) -> None:
    response = client.post("/api/observations", content=_ndjson(range(500)))
    assert response.status_code == 413
    assert client.get("/api/observations").json()["items"] == []


def test_query_parameters_are_checked(client: httpx.Client) -> None:
    assert client.get("/api/observations", params={"bbox": "1,2,3"}).status_code == 422
    assert client.get("/api/observations", params={"start": "yesterday"}).status_code == 422
    assert client.get("/api/observations", params={"cursor": "!!"}).status_code == 422
    client.post("/api/observations", content=_ndjson(range(3)))
    inside = client.get("/api/observations", params={"bbox": "119.9,21,120.015,23"}).json()
    assert [i["id"] for i in inside["items"]] == ["TWN:test:0", "TWN:test:1"]


def test_events_are_answered_whole_in_time_order(client: httpx.Client, node: Node) -> None:
    events = [
        Event(
            id=f"ev-{n}",
            kind="strait_transit",
            at=T0 + dt.timedelta(minutes=10 - n),
            zone="Miyako Strait",
            direction="to Pacific",
            origin="TWN",
            location=Point(coordinates=(125.3, 24.9)),
            observations=((f"TWN:test:{n}", 1),),
        )
        for n in range(3)
    ]
    node.store.put_events(events)
    answer = client.get("/api/events", params={"kind": "strait_transit"}).content
    assert msgspec.json.decode(answer, type=EventPage).items == events[::-1]
    assert client.get("/api/events", params={"kind": "adiz_entry"}).json() == {"items": []}


def test_events_and_links_answer_empty_on_a_new_node(client: httpx.Client) -> None:
    assert client.get("/api/events").json() == {"items": []}
    assert client.get("/api/links").json() == []


def test_the_stream_is_documented_in_the_openapi_spec(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/observations", "/api/events", "/api/stream", "/api/links"} <= set(
        paths
    )


def test_the_operator_api_refuses_a_non_loopback_bind_without_tls(node: Node) -> None:
    check_api_binding(node)
    node.config.api.host = "0.0.0.0"
    with pytest.raises(ConfigError, match=r"api\.certfile"):
        check_api_binding(node)
    node.config.api.certfile, node.config.api.keyfile = "api.pem", "api.key"
    check_api_binding(node)


def test_withheld_reports_never_reach_an_outbox_through_the_api(
    client: httpx.Client, node: Node
) -> None:
    red = observation(1, marking=Marking(tlp="RED", releasable_to=("JPN",)))
    client.post("/api/observations", content=msgspec.json.encode(red))
    with sqlite3.connect(node.store.path) as conn:
        rows = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert rows[0] == 0


def test_the_api_adds_only_the_nodes_own_observations(client: httpx.Client, node: Node) -> None:
    body = b"\n".join(
        msgspec.json.encode(item)
        for item in (observation(1), observation(2, origin="JPN"), observation(3))
    )
    added = client.post("/api/observations", content=body).json()
    assert added["inserted"] == 2
    [refused] = added["rejected"]
    assert refused["location"] == "line 2"
    assert refused["reason"].startswith("origin JPN: this node adds only TWN's own observations")
    assert node.store.get("JPN:test:2") is None


def test_hostile_requests_get_a_4xx_naming_what_is_wrong(client: httpx.Client, node: Node) -> None:
    deep = client.post("/api/observations", content=b"[" * 10_000 + b"]" * 10_000)
    assert deep.status_code == 400 and "nested deeper" in deep.json()["detail"]
    line = b'{"id": "TWN:deep:1", "remarks": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    added = client.post("/api/observations", content=line)
    assert added.status_code == 200 and added.json()["rejected"][0]["location"] == "line 1"
    huge = client.get("/api/cop/observation", params={"id": "TWN:test:1", "version": 10**35})
    assert huge.status_code == 422 and "version" in huge.text
    after = client.get("/api/stream", params={"after": 10**35})
    assert after.status_code == 422 and "after" in after.text
    assert node.store.count_versions() == 0
