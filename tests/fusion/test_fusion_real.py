"""The real record through the user's door: import both sides' public tracks into one node and
run ``kuroshio fuse``; the episodes both Taiwan and Japan reported are found, and a sortie both
reported is counted once in its day's total."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from cli_run import run


@pytest.fixture(scope="module")
def record_node(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    node = tmp_path_factory.mktemp("fusion") / "twn"
    run("init", "--party", "TWN", node, check=True)
    taiwan = shared_data / "twreporter" / "Taiwan"
    imported = run(
        "import",
        "mnd-tracks",
        taiwan / "20220801-20230915_fixed.geojson",
        taiwan / "20230918-20240115.geojson",
        "--node",
        node,
        "--json",
        "--no-events",
    )
    # One track without a count is refused: the import says so and exits 1.
    assert imported.returncode == 1, imported.stderr
    assert len(json.loads(imported.stdout)["rejected"]) == 1
    japan = shared_data / "twreporter" / "Japan" / "jp_data_cleaned.csv"
    run("import", "jso-tracks", japan, "--node", node, "--json", "--no-events", check=True)
    return node


def _fuse(node: Path, *options: str) -> dict[str, Any]:
    result = run("fuse", "--node", node, "--json", *options, check=True)
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_the_named_episodes_are_found_in_both_sides_reports(record_node: Path) -> None:
    episodes = _fuse(record_node, "--report")["episodes"]

    def found(first: str, last: str, name: str | None = None) -> dict[str, Any]:
        matching = [
            e
            for e in episodes
            if e["first_day"] <= last
            and e["last_day"] >= first
            and (name is None or name in e["name"])
        ]
        assert matching, f"no joint episode between {first} and {last} ({name or 'any'})"
        return max(matching, key=lambda e: e["fused"]["items"])

    august = found("2022-08-02", "2022-08-10")
    liaoning = found("2022-12-10", "2023-01-05", "Liaoning")
    shandong = found("2023-04-01", "2023-04-30", "Shandong")
    for episode in (august, liaoning, shandong):
        assert episode["origins"] == ["JPN", "TWN"]
        sides = episode["by_origin"]
        assert sides["TWN"]["items"] > 0 and sides["JPN"]["items"] > 0
        fused = episode["fused"]
        # Fused counts never exceed what the two sides reported together.
        assert fused["aircraft"] <= sides["TWN"]["aircraft"] + sides["JPN"]["aircraft"]
        assert fused["aircraft"] >= max(sides["TWN"]["aircraft"], sides["JPN"]["aircraft"])
    assert "Type 001 aircraft carrier Liaoning".endswith(liaoning["carriers"][0])
    assert shandong["carriers"] == ["Shandong"]
    assert august["by_origin"]["TWN"]["aircraft"] >= 50  # the August 2022 exercises


def test_a_sortie_both_sides_reported_is_one_item_and_counted_once(record_node: Path) -> None:
    picture = _fuse(record_node, "--start", "2023-08-23", "--end", "2023-08-28", "--daily")
    # The BZK-005 drone Japan reported on 24 August 2023 (JST) is on Taiwan's map of the 25th.
    items = _fuse(record_node, "--start", "2023-08-23", "--end", "2023-08-28")["items"]
    (drone,) = [i for i in items if "JPN:jso:p20230825_04:0320" in {s["id"] for s in i["sources"]}]
    assert {s["id"] for s in drone["sources"]} == {
        "JPN:jso:p20230825_04:0320",
        "TWN:mnd:2023-08-25:0002",
    }
    assert drone["platform"]["type"] == "BZK-005" and drone["platform"]["count"] == 1
    assert drone["counts"] == {"JPN": 1, "TWN": 1}
    # Its day (Taiwan time, the default of --tz): each side's own total counts it, the fused
    # total counts it once.
    at = dt.datetime.fromisoformat(drone["at"]).astimezone(dt.timezone(dt.timedelta(hours=8)))
    (day,) = [
        d for d in picture["daily"] if d["day"] == at.date().isoformat() and d["kind"] == "air"
    ]
    assert day["jointly_seen"] >= 1
    assert day["double_counted"] >= 1
    assert day["fused"] == sum(day["by_origin"].values()) - day["double_counted"]


def test_the_report_prints_a_table_for_people(record_node: Path) -> None:
    result = run("fuse", "--node", record_node, "--report", check=True)
    assert "Liaoning group" in result.stdout and "Shandong group" in result.stdout
    assert "joint episodes" in result.stdout


def test_the_real_record_fuses_the_same_in_any_order(record_node: Path) -> None:
    import random

    import msgspec

    from kuroshio.fusion import FusionEngine, fuse
    from kuroshio.node import open_node
    from kuroshio.store import ObservationFilter

    with open_node(record_node) as node:
        reports = list(node.store.iter_query(ObservationFilter(kinds=("air", "sea"))))
    batch = msgspec.json.encode(fuse(reports))
    random.Random(1).shuffle(reports)
    engine = FusionEngine()
    for number, report in enumerate(reports):
        engine.add(report)
        if number % 300 == 0:
            engine.picture()
    assert msgspec.json.encode(engine.picture()) == batch
