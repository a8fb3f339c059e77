"""``GET /api/fused`` on a real server: one sortie, both sources, its OpenAPI contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api_server import serving
from kuroshio.fusion.synthetic import as_released
from kuroshio.node import Node, init_node, open_node
from observations import observation


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    with init_node(tmp_path / "twn", "TWN"):
        pass
    with open_node(tmp_path / "twn") as node:
        _store(node)
        with serving(node) as http:
            yield http


def _store(node: Node) -> None:
    mine = observation(1)
    theirs = as_released(observation(2, origin="JPN", lat=22.05), 10.0, "JPN")
    elsewhere = observation(3, lon=124.0)
    node.store.append([mine, theirs, elsewhere])


def test_fused_lists_one_sortie_with_both_sources(client: httpx.Client) -> None:
    window = {"start": "2022-08-05T00:00:00Z", "end": "2022-08-06T00:00:00Z"}
    picture = client.get("/api/fused", params=window).json()
    assert picture["reports"] == 3 and picture["count"] == 2 and picture["jointly_seen"] == 1
    (joint,) = [item for item in picture["items"] if item["jointly_seen"]]
    assert joint["sources"] == [
        {"id": "JPN:test:2", "origin": "JPN", "version": 1},
        {"id": "TWN:test:1", "origin": "TWN", "version": 1},
    ]
    assert joint["origins"] == ["JPN", "TWN"] and joint["counts"] == {"JPN": 2, "TWN": 2}
    assert joint["platform"] == {"type": "H-6K", "platform_class": "bomber", "count": 2}
    # The geometry is the more precise side's (Taiwan's radar, not Japan's 10 km grid).
    assert joint["geometry"] == {"type": "Point", "coordinates": [121.0, 22.0]}
    assert joint["uncertainty_m"] == 1500.0
    only_joint = client.get("/api/fused", params={**window, "joint": "true"}).json()
    assert [item["id"] for item in only_joint["items"]] == [joint["id"]]
    assert joint["start"].startswith("2022-08-05T02:00")


def test_fused_refuses_a_bad_window(client: httpx.Client) -> None:
    backwards = client.get("/api/fused", params={"start": "2022-08-06", "end": "2022-08-05"})
    assert backwards.status_code == 422 and "not before" in backwards.text
    too_long = client.get("/api/fused", params={"start": "2022-01-01", "end": "2022-08-05"})
    assert too_long.status_code == 422 and "31 days" in too_long.text
    garbled = client.get("/api/fused", params={"start": "yesterday"})
    assert garbled.status_code == 422 and "ISO 8601" in garbled.text


def test_fused_is_in_the_openapi_spec_with_its_shape(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/fused"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"start", "end", "joint"}
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/FusedPictureOut")
    item = spec["components"]["schemas"]["FusedItemOut"]["properties"]
    assert {"sources", "geometry", "platform", "counts", "origins", "start", "end"} <= set(item)
