"""The picture's routes over HTTP against a real server: the page (built or not), the catalogue's
symbols, zones, status, one observation's detail and verification, daily sorties, the audit chain
and their OpenAPI documentation."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from agreements import agree
from api_server import serving
from kuroshio.api import cop
from kuroshio.catalogue import PLATFORM_CLASSES, Catalogue
from kuroshio.exchange import outbox
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking, Platform, Provenance
from kuroshio.node import Node, init_node, open_node
from observations import observation
from pinning import pin

TAIPEI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with init_node(tmp_path / "twn", "TWN"):
        pass
    with open_node(tmp_path / "twn") as opened:
        yield opened


@pytest.fixture
def client(node: Node) -> Iterator[httpx.Client]:
    with serving(node) as http:
        yield http


def test_the_page_says_how_to_build_it_when_its_files_are_missing(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cop, "WEB_DIST", tmp_path / "nothing-built")
    with serving(node) as http:
        page = http.get("/")
        assert http.get("/api/health").status_code == 200
    assert page.status_code == 503
    assert "make setup" in page.text and str(tmp_path / "nothing-built") in page.text


def test_the_built_page_and_its_assets_are_served_under_a_strict_policy(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>picture</title>")
    (dist / "assets" / "app.js").write_text("export {};")
    monkeypatch.setattr(cop, "WEB_DIST", dist)
    with serving(node) as http:
        page = http.get("/")
        script = http.get("/assets/app.js")
    assert page.status_code == 200 and "<title>picture</title>" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert script.status_code == 200 and script.text == "export {};"


def test_catalogue_gives_every_type_its_names_and_mil_std_2525d_code(
    client: httpx.Client,
) -> None:
    view = client.get("/api/cop/catalogue").json()
    types = {entry["code"]: entry for entry in view["types"]}
    catalogue = Catalogue.load()
    assert len(types) == len(catalogue)
    h6k = catalogue.get("H-6K")
    assert h6k is not None
    assert types["H-6K"]["sidc"] == h6k.sidc and len(h6k.sidc) == 20
    assert (types["H-6K"]["name_en"], types["H-6K"]["name_zh"], types["H-6K"]["name_ja"]) == (
        h6k.name_en,
        h6k.name_zh,
        h6k.name_ja,
    )
    classes = {entry["name"]: entry for entry in view["classes"]}
    assert set(classes) == set(PLATFORM_CLASSES)
    # Symbol set 01 air, 30 sea surface, 35 subsurface; standard identity hostile.
    assert classes["bomber"]["sidc"] == "10060100001101030000"
    assert classes["destroyer"]["sidc"][4:6] == "30"
    assert classes["submarine"]["sidc"][4:6] == "35"


def test_zones_are_the_adizs_median_line_and_gates(client: httpx.Client) -> None:
    response = client.get("/api/cop/zones")
    assert response.headers["content-type"].startswith("application/geo+json")
    kinds = {feature["properties"]["kind"] for feature in response.json()["features"]}
    assert {"adiz", "median_line", "gate"} <= kinds


def test_status_names_the_period_held_and_where_the_stream_stands(
    client: httpx.Client,
) -> None:
    empty = client.get("/api/cop/status").json()
    assert (empty["party"], empty["observations"], empty["earliest"]) == ("TWN", 0, None)
    first = dt.datetime(2022, 8, 5, 2, tzinfo=dt.UTC)
    reports = [observation(n, at=first + dt.timedelta(hours=n)) for n in range(3)]
    body = b"\n".join(msgspec.json.encode(o) for o in reports)
    assert client.post("/api/observations", content=body).json()["inserted"] == 3
    status = client.get("/api/cop/status").json()
    assert status["observations"] == 3 and status["stream_head"] == 3
    assert status["earliest"] == "2022-08-05T02:00:00Z"
    assert status["latest"] == "2022-08-05T04:00:00Z"


def test_detail_names_the_platform_and_says_what_vouches_for_it(
    client: httpx.Client, node: Node
) -> None:
    own = observation(1)
    imported = observation(2, provenance=Provenance(importer="mnd-tracks", record="maps.geojson#7"))
    relayed = observation(
        3,
        origin="JPN",
        provenance=Provenance(partner="JPN", hops=1, transforms=("JPN: coarsened to 10 km grid",)),
    )
    corrected = msgspec.structs.replace(own, version=2, remarks="count corrected")
    body = b"\n".join(msgspec.json.encode(o) for o in (own, imported, corrected))
    assert client.post("/api/observations", content=body).json()["rejected"] == []
    # A partner's item in the store with no batch behind it (the API refuses to add one).
    node.ingest([relayed])

    detail = client.get("/api/cop/observation", params={"id": "TWN:test:1"}).json()
    assert detail["versions"] == [1, 2] and detail["observation"]["version"] == 2
    assert detail["platform"]["code"] == "H-6K" and detail["platform"]["zh"]
    assert detail["verification"]["status"] == "own"
    first = client.get("/api/cop/observation", params={"id": "TWN:test:1", "version": 1}).json()
    assert first["observation"]["remarks"] is None

    source = client.get("/api/cop/observation", params={"id": "TWN:test:2"}).json()
    assert source["verification"]["status"] == "imported"
    assert "maps.geojson#7" in source["verification"]["detail"]

    partner = client.get("/api/cop/observation", params={"id": "JPN:test:3"}).json()
    assert partner["observation"]["provenance"]["transforms"] == ["JPN: coarsened to 10 km grid"]
    assert partner["verification"]["status"] == "unverified"

    missing = client.get("/api/cop/observation", params={"id": "TWN:test:404"})
    assert missing.status_code == 404 and "TWN:test:404" in missing.json()["detail"]


def test_an_item_taken_in_from_a_link_is_checked_against_its_origins_signature(
    tmp_path: Path,
) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    try:
        agree([twn, jpn], tmp_path / "agreements")
        twn.ingest([observation(5, marking=Marking(tlp="AMBER", releasable_to=("JPN",)))])
        with twn.store.transaction() as conn:
            sealed = outbox.seal_next(
                conn,
                "JPN",
                signer=twn.identity,
                sender="TWN",
                max_items=100,
                max_bytes=1 << 20,
                now=dt.datetime.now(dt.UTC),
            )
        assert sealed is not None
        Inbox(jpn).accept(jpn.partners["TWN"], sealed.frame())

        with serving(jpn) as http:
            verified = http.get("/api/cop/observation", params={"id": "TWN:test:5"}).json()
            # A forged signature on the stored batch no longer checks out.
            with sqlite3.connect(jpn.store.path) as conn:
                conn.execute("UPDATE inbox_batches SET signature = zeroblob(64)")
            forged = http.get("/api/cop/observation", params={"id": "TWN:test:5"}).json()
    finally:
        twn.close()
        jpn.close()
    assert verified["verification"]["status"] == "verified"
    assert verified["observation"]["provenance"]["partner"] == "TWN"
    assert forged["verification"]["status"] == "failed"


def test_daily_sorties_per_source_and_class_in_the_chosen_days(
    client: httpx.Client, node: Node
) -> None:
    def report(number: int, origin: str, at: dt.datetime, kind: str = "air", **platform: object):
        return observation(
            number,
            origin=origin,
            at=at,
            kind=kind,
            platform=Platform(nationality="CHN", **platform),  # type: ignore[arg-type]
        )

    day = dt.datetime(2022, 8, 5, 10, tzinfo=TAIPEI)
    reports = [
        report(1, "TWN", day, type="J-16", platform_class="fighter", count=10),
        report(
            2, "TWN", day + dt.timedelta(hours=2), type="J-16", platform_class="fighter", count=4
        ),
        report(3, "TWN", day, type="H-6K", platform_class="bomber", count=2),
        report(
            4, "JPN", day + dt.timedelta(days=1), kind="sea", platform_class="destroyer", count=1
        ),
        # 23:30 on the 5th in Taipei is the 5th in UTC+8, the 5th in UTC too (15:30Z).
        report(5, "TWN", day.replace(hour=23, minute=30), platform_class="fighter", count=3),
        # 07:00 on the 6th in Taipei is 23:00Z on the 5th.
        report(6, "TWN", day.replace(day=6, hour=7), platform_class="fighter", count=5),
    ]
    body = b"\n".join(msgspec.json.encode(o) for o in reports if o.origin == "TWN")
    assert client.post("/api/observations", content=body).json()["rejected"] == []
    node.ingest([o for o in reports if o.origin == "JPN"])  # as the JSO importer stores them

    def chart(**params: object) -> dict[tuple[str, str], list[int]]:
        response = client.get("/api/cop/sorties", params=params)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        view = response.json()
        return {(s["origin"], s["platform_class"]): s["counts"] for s in view["series"]}

    taipei = chart(start="2022-08-05", end="2022-08-06", utc_offset=480)
    assert taipei == {
        ("JPN", "destroyer"): [0, 1],
        ("TWN", "fighter"): [17, 5],
        ("TWN", "bomber"): [2, 0],
    }
    utc = chart(start="2022-08-05", end="2022-08-06")
    assert utc[("TWN", "fighter")] == [22, 0]
    assert chart(start="2022-08-05", end="2022-08-06", origin="JPN") == {
        ("JPN", "destroyer"): [0, 1]
    }
    backwards = client.get("/api/cop/sorties", params={"start": "2022-08-06", "end": "2022-08-05"})
    assert backwards.status_code == 422 and "before" in backwards.json()["detail"]
    too_long = client.get("/api/cop/sorties", params={"start": "2021-01-01", "end": "2022-08-05"})
    assert too_long.status_code == 422
    not_a_day = client.get("/api/cop/sorties", params={"start": "yesterday", "end": "2022-08-05"})
    assert not_a_day.status_code == 422 and "yesterday" in not_a_day.json()["detail"]


def test_audit_view_says_verified_until_an_entry_is_edited(
    client: httpx.Client, node: Node
) -> None:
    assert client.post("/api/observations", content=msgspec.json.encode(observation(1))).json()[
        "inserted"
    ]
    intact = client.get("/api/cop/audit").json()
    assert intact["ok"] is True and intact["checked"] >= 1 and intact["problems"] == []
    with sqlite3.connect(node.store.path) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET subject = 'nothing happened' WHERE seq = 1")
    broken = client.get("/api/cop/audit").json()
    assert broken["ok"] is False
    assert [(p["seq"], p["reason"]) for p in broken["problems"]] == [(1, "edited")]


def test_openapi_documents_every_picture_route_with_its_schema(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, record in (
        ("/api/cop/status", "PictureStatus"),
        ("/api/cop/catalogue", "CatalogueView"),
        ("/api/cop/observation", "ObservationDetail"),
        ("/api/cop/sorties", "SortieChart"),
        ("/api/cop/audit", "AuditView"),
    ):
        response = spec["paths"][path]["get"]["responses"]["200"]
        assert response["content"]["application/json"]["schema"]["$ref"].endswith(f"/{record}")
        assert record in schemas
    assert "/api/cop/zones" in spec["paths"]
    assert "Observation" in schemas and "Verification" in schemas
    assert "/" not in spec["paths"]
