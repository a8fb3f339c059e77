"""KML, KMZ and GeoJSON out of a node, read back by the tools a user has: fastkml, GDAL's
``ogrinfo`` (Debian's gdal-bin) and a plain JSON reader checking RFC 7946."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from fastkml import KML, Placemark
from fastkml.utils import find_all

from api_server import serving
from cli_run import run
from conftest import require_services
from kuroshio.model import (
    Kinematics,
    Marking,
    Observation,
    Platform,
    Point,
    Polygon,
    Provenance,
    Source,
)
from kuroshio.node import init_node

AT = dt.datetime(2024, 8, 5, 2, 0, tzinfo=dt.UTC)


def _items() -> list[Observation]:
    bomber = Observation(
        id="JPN:kml:h6k",
        origin="JPN",
        kind="air",
        observed_at=AT,
        geometry=Point(coordinates=(123.1, 24.4)),
        platform=Platform(type="H-6K", platform_class="bomber", count=2, nationality="CHN"),
        kinematics=Kinematics(course_deg=95.0, speed_mps=210.0, altitude_m=7500.0),
        source=Source(sensor="radar", uncertainty_m=2000.0),
        marking=Marking(tlp="AMBER", releasable_to=("TWN",)),
        provenance=Provenance(partner="JPN", transforms=("JPN: coarsened to 10 km grid",)),
        track="cat062:25/100:4980",
    )
    # drawn clockwise on purpose: RFC 7946 wants the exterior counterclockwise
    area = Observation(
        id="TWN:kml:area",
        origin="TWN",
        kind="area",
        observed_at=AT,
        until=AT + dt.timedelta(hours=6),
        geometry=Polygon(
            coordinates=(((120.0, 22.0), (120.0, 23.0), (121.0, 23.0), (120.0, 22.0)),)
        ),
        remarks="live fire",
    )
    return [bomber, area]


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("export") / "twn"
    with init_node(directory, "TWN") as node:
        node.ingest(_items())
    return directory


def _ogrinfo(path: Path) -> str:
    if shutil.which("ogrinfo") is None:
        message = "ogrinfo (Debian's gdal-bin) is not installed; make setup installs it"
        if require_services():
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        ["ogrinfo", "-ro", "-al", str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_query_as_kml_reads_back_with_fastkml_and_gdal(node_dir: Path, tmp_path: Path) -> None:
    result = run("query", "--node", node_dir, "--format", "kml", check=True)
    path = tmp_path / "picture.kml"
    path.write_text(result.stdout, encoding="utf-8")

    document = KML.parse(path)
    placemarks = {p.id: p for p in find_all(document, of_type=Placemark)}
    assert set(placemarks) == {"JPN.kml.h6k", "TWN.kml.area"}
    bomber = placemarks["JPN.kml.h6k"]
    assert bomber.name == "H-6K ×2"
    assert bomber.geometry is not None and tuple(bomber.geometry.coords[0])[:2] == (123.1, 24.4)
    assert bomber.style_url is not None and bomber.style_url.url == "#JPN-hostile"
    assert "JPN: coarsened to 10 km grid" in (bomber.description or "")
    area = placemarks["TWN.kml.area"]
    assert area.times is not None and area.times.begin is not None and area.times.end is not None

    text = _ogrinfo(path)
    assert "Layer name: JPN" in text and "Layer name: TWN" in text
    assert "id (String) = JPN:kml:h6k" in text
    assert "platform_class (String) = bomber" in text
    assert "tlp (String) = AMBER" in text
    assert "releasable_to (String) = TWN" in text
    assert "speed_mps (Real) = 210" in text
    assert "POINT (123.1 24.4" in text
    assert "POLYGON ((120 22" in text


def test_query_as_kmz_bundles_the_symbol_icons(node_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "picture.kmz"
    with path.open("wb") as out:
        done = subprocess.run(
            [*_command(), "query", "--node", str(node_dir), "--format", "kmz"],
            stdout=out,
            check=True,
        )
    assert done.returncode == 0
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names[0] == "doc.kml"
        icon = archive.read("files/JPN-hostile.png")
        assert icon.startswith(b"\x89PNG")
        kml = KML.from_string(archive.read("doc.kml"))
    assert {p.id for p in find_all(kml, of_type=Placemark)} == {"JPN.kml.h6k", "TWN.kml.area"}
    assert "Feature Count: 1" in _ogrinfo(path)


def _command() -> list[str]:
    from cli_run import kuroshio_command

    return kuroshio_command()


def test_geojson_is_rfc7946_with_flat_properties(node_dir: Path) -> None:
    collection = json.loads(run("query", "--node", node_dir, "--format", "geojson").stdout)
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    features = {f["id"]: f for f in collection["features"]}
    bomber = features["JPN:kml:h6k"]["properties"]
    for value in bomber.values():
        assert value is None or isinstance(value, str | int | float | bool)
    assert bomber["platform_class"] == "bomber"
    assert bomber["track"] == "cat062:25/100:4980"
    assert bomber["releasable_to"] == "TWN"
    assert bomber["transforms"] == "JPN: coarsened to 10 km grid"
    ring = features["TWN:kml:area"]["geometry"]["coordinates"][0]
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))
    assert area > 0, "the exterior ring must be counterclockwise (RFC 7946 section 3.1.6)"
    assert ring[0] == ring[-1]


def test_the_api_exports_kml_kmz_and_geojson(node_dir: Path, tmp_path: Path) -> None:
    from kuroshio.node import open_node

    with open_node(node_dir) as node, serving(node) as http:
        kml = http.get("/api/export.kml", params={"origin": "JPN"})
        assert kml.status_code == 200
        assert kml.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
        path = tmp_path / "api.kml"
        path.write_bytes(kml.content)
        assert [p.id for p in find_all(KML.parse(path), of_type=Placemark)] == ["JPN.kml.h6k"]
        kmz = http.get("/api/export.kmz")
        assert zipfile.ZipFile(io.BytesIO(kmz.content)).namelist()[0] == "doc.kml"
        geojson = http.get("/api/export.geojson", params={"kind": "area"})
        assert geojson.headers["content-type"] == "application/geo+json"
        assert [f["id"] for f in geojson.json()["features"]] == ["TWN:kml:area"]
        bad = http.get("/api/export.kml", params={"bbox": "1,2,3"})
        assert bad.status_code == 422 and "bbox" in bad.json()["detail"]
