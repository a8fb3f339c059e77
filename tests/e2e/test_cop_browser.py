"""The common operating picture in a real browser: Debian's chromium driven by Playwright against
a real ``kuroshio serve`` node holding Taiwan MND's record of August 2022.

Screenshots go to ``test-artifacts/cop/``. Without chromium, Playwright or the built page the
tests skip, and fail when ``KUROSHIO_REQUIRE_DATA=1`` or ``KUROSHIO_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from federation_nodes import ServedNode, post_reports
from postgres_cluster import PostgresCluster, missing_requirement, server_bindir

from cli_run import run
from conftest import require_data, require_services, service_unreachable
from kuroshio.api.cop import WEB_DIST
from kuroshio.catalogue import Catalogue
from kuroshio.demo.scenario import scenario
from kuroshio.federation.serve import STOP_GRACE_S
from kuroshio.model import Marking, Observation, Platform, Point, Provenance, Source
from kuroshio.node import open_node
from kuroshio.store import ObservationFilter
from kuroshio.store.sqlite import SQLiteStore

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
MND_TRACKS = "twreporter/Taiwan/20220801-20230915_fixed.geojson"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "cop"
TAIPEI = dt.timezone(dt.timedelta(hours=8))
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WATCH = "watch"
PASSWORD = "a watch officer's password"
LOAD_TIMEOUT_MS = 60_000
"""A guard against a hung page, not a speed target."""


def _missing(reason: str) -> None:
    if require_data() or require_services():
        pytest.fail(f"{reason}; KUROSHIO_REQUIRE_DATA/SERVICES=1 make the browser tests required")
    pytest.skip(reason)


def _taipei_day(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=TAIPEI)


def _add_watch_officer(node: ServedNode) -> None:
    """The watch officer's account (a viewer with a password), as ``kuroshio user add`` makes it."""
    run(
        "user",
        "add",
        WATCH,
        "--role",
        "viewer",
        "--password-stdin",
        "-n",
        node.directory,
        stdin=f"{PASSWORD}\n".encode(),
        check=True,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[ServedNode]:
    node = ServedNode(tmp_path_factory.mktemp("cop"), "TWN")
    imported = run("import", "mnd-tracks", "--node", node.directory, shared_data / MND_TRACKS)
    assert imported.returncode == 1, imported.stderr  # one track without a count is refused
    _add_watch_officer(node)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        _missing(f"{CHROMIUM} not installed (make setup installs Debian's chromium)")
    if importlib.util.find_spec("playwright") is None:
        _missing("the playwright package is not installed (make setup installs it)")
    if not (WEB_DIST / "index.html").is_file():
        _missing(f"the picture is not built in {WEB_DIST} (make setup builds it from web/)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, served: ServedNode) -> Iterator[Any]:
    # The test's own probes run as evaluated script, which the page's CSP rightly forbids.
    context = browser.new_context(viewport={"width": 1400, "height": 850}, bypass_csp=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    _log_in(opened, served)
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"the page threw: {errors}"


def _log_in(page: Any, node: ServedNode) -> None:
    """Log in as the watch officer would: the picture sends a stranger to its login form."""
    page.goto(f"{node.api_url}/")
    assert page.url == f"{node.api_url}/login"
    page.fill("input[name=name]", WATCH)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{node.api_url}/")


def _count(node: ServedNode, start: dt.datetime, end: dt.datetime, **fields: Any) -> int:
    store = SQLiteStore(node.directory / "store.sqlite")
    try:
        return store.count(ObservationFilter(start=start, end=end, **fields))
    finally:
        store.close()


def _open(page: Any, node: ServedNode, start: str, end: str, tz_minutes: int = 480) -> None:
    page.goto(f"{node.api_url}/?start={start}&end={end}&tz={tz_minutes}")
    page.wait_for_selector("body[data-ready=true]", timeout=LOAD_TIMEOUT_MS)


def _shown(page: Any) -> int:
    return int(page.get_attribute("#shown", "data-count"))


def _wait_shown(page: Any, expected: int, timeout: float = 30_000) -> None:
    page.wait_for_function(
        f"document.querySelector('#shown').dataset.count === '{expected}'", timeout=timeout
    )


def _click_at(page: Any, lon: float, lat: float, zoom: float) -> None:
    """Centre the map on (lon, lat) and click there, as the officer would with the mouse."""
    page.evaluate("([lon, lat, zoom]) => window.cop.centre(lon, lat, zoom)", [lon, lat, zoom])
    x, y = page.evaluate(
        """([lon, lat]) => {
            const point = window.cop.map.project([lon, lat]);
            const box = window.cop.map.getCanvas().getBoundingClientRect();
            return [box.left + point.x, box.top + point.y];
        }""",
        [lon, lat],
    )
    page.mouse.click(x, y)


def test_a_day_of_august_2022_shows_every_stored_observation_with_its_symbol(
    page: Any, served: ServedNode
) -> None:
    start, end = _taipei_day(2022, 8, 5), _taipei_day(2022, 8, 6)
    expected = _count(served, start, end)
    assert expected > 0
    _open(page, served, "2022-08-05", "2022-08-05")

    assert _shown(page) == expected
    # Each MND track is one track: a head symbol at its end (clustered where they crowd at
    # this zoom), drawn once it is zoomed in on.
    assert int(page.get_attribute("#shown", "data-tracks")) == expected
    page.evaluate("() => window.cop.idle()")
    drawn = page.evaluate("() => window.cop.rendered(['head-symbols', 'clusters'])")
    heads = {d["key"]: d for d in drawn if d["layer"] == "head-symbols"}
    clusters = {d["cluster_id"]: d["point_count"] for d in drawn if d["layer"] == "clusters"}
    assert len(heads) + sum(clusters.values()) == expected  # every track, drawn or counted
    icons = {d["id"]: d["icon"] for d in heads.values()}
    store = SQLiteStore(served.directory / "store.sqlite")
    try:
        day = list(store.iter_query(ObservationFilter(start=start, end=end)))
    finally:
        store.close()
    catalogue = Catalogue.load()
    for observation in day:
        if observation.id not in icons:
            continue
        assert observation.platform is not None and observation.platform.type is not None
        entry = catalogue.get(observation.platform.type)
        assert entry is not None
        # Hostile (CHN) MIL-STD-2525D symbol from the catalogue's code, at the track's end.
        assert icons[observation.id] == f"sidc-{entry.sidc_for('hostile')}"
    page.screenshot(path=ARTIFACTS / "day-2022-08-05.png")


def test_filters_and_the_replay_slider_change_what_is_shown(page: Any, served: ServedNode) -> None:
    start, end = _taipei_day(2022, 8, 1), _taipei_day(2022, 8, 8)
    total = _count(served, start, end)
    _open(page, served, "2022-08-01", "2022-08-07")
    assert _shown(page) == total

    fighters = page.locator("#filter-class input[value=fighter]")
    fighters.uncheck()
    _wait_shown(page, total - _count(served, start, end, platform_classes=("fighter",)))
    fighters.check()
    _wait_shown(page, total)

    page.locator("#filter-kind input[value=air]").uncheck()
    _wait_shown(page, total - _count(served, start, end, kinds=("air",)))
    page.locator("#filter-kind input[value=air]").check()
    page.locator("#filter-origin input[value=TWN]").uncheck()
    _wait_shown(page, total - _count(served, start, end, origins=("TWN",)))
    page.locator("#filter-origin input[value=TWN]").check()
    _wait_shown(page, total)

    # Replay by the day: the slider starts at the end of the period.
    page.select_option("#replay-window", "24")
    last_day = _count(served, end - DAY, end)
    assert 0 < last_day < total
    _wait_shown(page, last_day)
    page.locator("#replay-slider").focus()
    for _ in range(24):
        page.keyboard.press("ArrowLeft")
    _wait_shown(page, _count(served, end - 2 * DAY, end - DAY))
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    _wait_shown(page, _count(served, start - 22 * HOUR, start + 2 * HOUR))
    page.screenshot(path=ARTIFACTS / "replay-2022-08-01.png")


def test_a_live_observation_appears_and_its_release_transforms_are_shown(
    page: Any, served: ServedNode
) -> None:
    _open(page, served, "2022-08-20", "2022-08-20")
    page.wait_for_selector(".live.on")
    before = _shown(page)
    transforms = (
        "JPN: coarsened to 10 km grid",
        "JPN: delayed 15 min under agreement twn-jpn v3",
    )
    report = Observation(
        id="JPN:cop-test:h6k-1",
        origin="JPN",
        kind="air",
        observed_at=dt.datetime(2022, 8, 20, 11, 0, tzinfo=TAIPEI),
        geometry=Point(coordinates=(123.1, 24.4)),
        platform=Platform(type="H-6K", platform_class="bomber", count=2, nationality="CHN"),
        source=Source(sensor="radar", confidence=0.8, uncertainty_m=10_000.0),
        marking=Marking(tlp="AMBER", releasable_to=("TWN",)),
        provenance=Provenance(partner="JPN", batch="7", hops=1, transforms=transforms),
    )
    # A partner's report comes over its link (the API takes only the node's own): stored by
    # another process, as the node's inbox would, and streamed to the page.
    with open_node(served.directory) as node:
        assert node.ingest([report], via="link").inserted == 1

    _wait_shown(page, before + 1, timeout=LOAD_TIMEOUT_MS)

    _click_at(page, 123.1, 24.4, zoom=7)
    panel = page.locator("#tab-detail")
    page.wait_for_selector("#detail-transforms")
    text = panel.inner_text()
    assert "24°24.00′N 123°06.00′E" in text  # position, and MGRS beside it
    assert "MGRS 51R" in text
    for words in transforms:
        assert words in text
    entry = Catalogue.load().get("H-6K")
    assert entry is not None
    for name in (entry.name_en, entry.name_zh, entry.name_ja):
        assert name in text
    assert "JPN:cop-test:h6k-1" in text
    assert "TLP:AMBER" in text
    # Posted straight to this node, not taken in from a JPN link: nothing vouches for it.
    assert page.inner_text("#detail-verification").lower() == "unverified"
    page.screenshot(path=ARTIFACTS / "live-detail.png")


def test_a_burst_of_live_track_updates_moves_every_track_to_its_newest_position(
    page: Any, served: ServedNode
) -> None:
    _open(page, served, "2022-08-23", "2022-08-23")
    page.wait_for_selector(".live.on")
    before = int(page.get_attribute("#shown", "data-tracks"))
    at = dt.datetime(2022, 8, 23, 9, 0, tzinfo=TAIPEI)
    tracks, steps = 100, 3
    updates = [
        Observation(
            id=f"TWN:cop-burst:{track}:{step}",
            origin="TWN",
            kind="air",
            observed_at=at + dt.timedelta(seconds=5 * step),
            geometry=Point(coordinates=(121.0 + track * 0.02 + step * 0.01, 25.5)),
            platform=Platform(type="J-16", platform_class="fighter", nationality="CHN"),
            track=f"cat062:25/100:{track}",
        )
        for step in range(steps)
        for track in range(tracks)
    ]
    # Stored at once by another process, as a dense feed would: the page takes them between two
    # frames and must still draw each track once, at its newest update.
    with open_node(served.directory) as node:
        assert node.ingest(updates, via="feed").inserted == tracks * steps
    page.wait_for_function(
        f"document.querySelector('#shown').dataset.tracks === '{before + tracks}'",
        timeout=LOAD_TIMEOUT_MS,
    )
    page.evaluate("() => window.cop.centre(122.0, 25.5, 8)")
    # Every head the map holds (the drawn ones declutter) is the track's newest update, once.
    held = page.evaluate(
        "() => window.cop.map.querySourceFeatures('heads').map((f) => f.properties.id)"
    )
    heads = {head for head in held if head.startswith("TWN:cop-burst:")}
    assert heads == {f"TWN:cop-burst:{track}:{steps - 1}" for track in range(tracks)}
    drawn = page.evaluate("() => window.cop.rendered(['head-symbols'])")
    assert any(str(head.get("id")).startswith("TWN:cop-burst:") for head in drawn)


def _load_reports(count: int) -> bytes:
    encoder = msgspec.json.Encoder()
    at = dt.datetime(2022, 9, 25, 0, 0, tzinfo=TAIPEI)
    lines = []
    for n in range(count):
        sea = n % 4 == 0
        lines.append(
            encoder.encode(
                Observation(
                    id=f"TWN:cop-load:{n}",
                    origin="TWN",
                    kind="sea" if sea else "air",
                    observed_at=at + dt.timedelta(seconds=8 * n),
                    geometry=Point(
                        coordinates=(118.0 + (n % 100) * 0.08, 20.0 + (n // 100) * 0.08)
                    ),
                    platform=Platform(
                        type="Type 052D" if sea else "J-16",
                        platform_class="destroyer" if sea else "fighter",
                        nationality="CHN",
                    ),
                )
            )
        )
    return b"\n".join(lines)


def test_ten_thousand_features_load_and_the_page_still_answers(
    page: Any, served: ServedNode
) -> None:
    added = httpx.post(
        f"{served.api_url}/api/observations",
        content=_load_reports(10_000),
        headers=served.headers,
        timeout=120,
    ).json()
    assert added["inserted"] == 10_000, added["rejected"][:3]
    start, end = _taipei_day(2022, 9, 25), _taipei_day(2022, 9, 26)
    expected = _count(served, start, end)
    assert expected >= 10_000

    _open(page, served, "2022-09-25", "2022-09-25")
    _wait_shown(page, expected, timeout=LOAD_TIMEOUT_MS)

    page.locator("#filter-kind input[value=sea]").uncheck()
    _wait_shown(page, expected - _count(served, start, end, kinds=("sea",)))
    _click_at(page, 118.08, 20.0, zoom=9)  # TWN:cop-load:1, a J-16
    page.wait_for_function(
        "document.querySelector('#tab-detail').innerText.includes('TWN:cop-load:1 ')"
    )
    assert page.evaluate("window.cop.selected") == "TWN:cop-load:1"
    page.screenshot(path=ARTIFACTS / "ten-thousand.png")


def _scenario_day(served: ServedNode) -> int:
    """The demo's reports of both parties on 2022-08-21; how many tracks they make."""
    start = _taipei_day(2022, 8, 21) + 2 * HOUR
    reports = [*scenario("TWN", start), *scenario("JPN", start)]
    assert all(start.date() == o.observed_at.astimezone(TAIPEI).date() for o in reports)
    own = [o for o in reports if o.origin == "TWN"]
    body = b"\n".join(msgspec.json.encode(o) for o in own)
    added = httpx.post(
        f"{served.api_url}/api/observations", content=body, headers=served.headers, timeout=120
    ).json()
    assert added["inserted"] == len(own), added["rejected"][:3]
    with open_node(served.directory) as node:  # Japan's, as its link would store them
        partners = [o for o in reports if o.origin != "TWN"]
        assert node.ingest(partners, via="link").inserted == len(partners)
    day = _count(served, _taipei_day(2022, 8, 21), _taipei_day(2022, 8, 22))
    # each MND line of the day is a track of its own; the demo's reports are tracks by `track`
    return len({(o.origin, o.track) for o in reports}) + day - len(reports)


def test_tracks_show_heads_with_amplifiers_clusters_a_cursor_readout_and_three_languages(
    page: Any, served: ServedNode
) -> None:
    tracks = _scenario_day(served)
    _open(page, served, "2022-08-21", "2022-08-21")
    assert int(page.get_attribute("#shown", "data-tracks")) == tracks  # one per source track
    assert _shown(page) > 10 * tracks  # many reports, each track drawn once

    # zoomed out, crowded heads are clustered: every track is a symbol or in a cluster's count
    page.evaluate("() => window.cop.centre(124, 24, 4)")
    drawn = page.evaluate("() => window.cop.rendered(['head-symbols', 'clusters'])")
    clustered = {d["cluster_id"]: d["point_count"] for d in drawn if d["layer"] == "clusters"}
    singles = {d["key"] for d in drawn if d["layer"] == "head-symbols"}
    assert clustered and len(singles) + sum(clustered.values()) == tracks
    page.screenshot(path=ARTIFACTS / "tracks-clustered.png")

    # zoomed in, each head carries its 2525 amplifiers: type, count, flight level, time, origin
    heads = page.evaluate("() => window.cop.rendered(['head-symbols'])")
    bomber = next(
        h
        for h in page.evaluate(
            "() => window.cop.map.querySourceFeatures('heads').map(f => f.properties)"
        )
        if "H-6K" in str(h.get("aicon", ""))
    )
    del heads
    lon, lat = page.evaluate(
        """(key) => window.cop.map.querySourceFeatures('heads')
            .find(f => f.properties.key === key).geometry.coordinates""",
        bomber["key"],
    )
    _click_at(page, lon, lat, zoom=8)
    amplified = page.evaluate("() => window.cop.rendered(['head-symbols'])")
    names = [a["aicon"] for a in amplified]
    assert bomber["key"] in {a["key"] for a in amplified}
    assert page.evaluate("(names) => names.every(n => window.cop.map.hasImage(n))", names)
    _, _, kind_type, count, level, _, time, origin, _ = bomber["aicon"].split("|")
    assert (kind_type, count, origin) == ("H-6K", "2", bomber["origin"])
    assert level.startswith("FL") and time.endswith("H")  # Taipei time, zone letter H
    # the click selected the track: highlighted, with position, course and speed in the detail
    assert page.evaluate("window.cop.selected") == bomber["key"]
    page.wait_for_selector("#detail-speed")
    assert page.inner_text("#detail-course").endswith("°")
    assert page.inner_text("#detail-speed").endswith("kt")
    assert "MGRS" in page.inner_text("#tab-detail")

    box = page.locator("#map canvas").bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 150)
    readout = page.locator("#cursor")
    assert readout.get_attribute("data-mgrs") not in (None, "", "—")
    cursor_lat = float(readout.get_attribute("data-lat") or "nan")
    assert 15 < cursor_lat < 35 and "MGRS 51" in readout.inner_text()
    page.screenshot(path=ARTIFACTS / "track-amplifiers-en.png")

    # the keyboard: tabs answer arrow keys, the track list answers arrows and Enter
    page.locator("#tabs [data-tab=detail]").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tabs [data-tab=tracks]", "aria-selected") == "true"
    page.locator("#track-list").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_function("window.cop.selected !== null")

    for code, html_lang, word in (
        ("zh", "zh-Hant", "航跡"),
        ("ja", "ja", "航跡"),
        ("en", "en", "Tracks"),
    ):
        page.select_option("#lang", code)
        assert page.evaluate("document.documentElement.lang") == html_lang
        assert page.inner_text("#tabs [data-tab=tracks]") == word
        page.screenshot(path=ARTIFACTS / f"language-{code}.png")
    page.select_option("#lang", "zh")
    assert "觀測" in page.inner_text("#shown")
    page.select_option("#lang", "ja")
    assert "航跡" in page.inner_text("#shown") and page.inner_text("#live") == "● ライブ"


def test_the_page_and_its_assets_go_out_compressed(served: ServedNode) -> None:
    for path in ("/", "/assets/app.js", "/assets/basemap.json"):
        answer = httpx.get(
            f"{served.api_url}{path}", headers={**served.headers, "Accept-Encoding": "gzip"}
        )
        assert answer.status_code == 200
        assert answer.headers.get("content-encoding") == "gzip", path
        assert answer.num_bytes_downloaded < len(answer.content) / 2, path


def test_the_node_stops_at_once_with_the_picture_open_and_the_picture_carries_on_after(
    page: Any, served: ServedNode
) -> None:
    _open(page, served, "2022-08-24", "2022-08-24")
    page.wait_for_selector(".live.on")
    before = _shown(page)

    # The watch floor's browsers stay open while the node is restarted (an upgrade, a reboot).
    began = time.monotonic()
    assert served.stop() == 0
    assert time.monotonic() - began < STOP_GRACE_S / 2, "the open picture held the stop up"
    page.wait_for_selector(".live.off")  # the page says it is reconnecting
    served.start()
    page.wait_for_selector(".live.on", timeout=LOAD_TIMEOUT_MS)

    report = Observation(
        id="TWN:cop-restart:y8-1",
        origin="TWN",
        kind="air",
        observed_at=dt.datetime(2022, 8, 24, 10, 0, tzinfo=TAIPEI),
        geometry=Point(coordinates=(121.9, 21.4)),
        platform=Platform(type="Y-8", platform_class="asw", count=1, nationality="CHN"),
    )
    added = httpx.post(
        f"{served.api_url}/api/observations",
        content=msgspec.json.encode(report),
        headers=served.headers,
        timeout=30,
    ).json()
    assert added["inserted"] == 1
    # No reload: the same page, its stream reconnected by the browser on its own.
    _wait_shown(page, before + 1, timeout=LOAD_TIMEOUT_MS)


def test_the_picture_of_a_node_on_postgresql_comes_back_live_after_the_database_was_down(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database going away ends the page's live stream; while it is down the node's API
    answers 503, also to the browser's attempts to reconnect, and a browser gives a stream up
    for good on such an answer: the page opens a new one, until the node streams again."""
    bindir = server_bindir()
    missing = missing_requirement(bindir)
    if bindir is None or missing is not None:
        service_unreachable("a private PostgreSQL server", missing or "")
    cluster = PostgresCluster(bindir)
    node: ServedNode | None = None
    context = None
    try:
        cluster.create()
        monkeypatch.setenv("KUROSHIO_STORE_DSN", cluster.dsn)
        node = ServedNode(tmp_path, "TWN", backend="postgres")
        _add_watch_officer(node)
        node.start("--workers", "1")
        # The test's own probes (`_wait_shown` polls a script) need the page's CSP bypassed.
        context = browser.new_context(viewport={"width": 1400, "height": 850}, bypass_csp=True)
        page = context.new_page()
        _log_in(page, node)
        day = dt.datetime(2022, 8, 25, 10, 0, tzinfo=TAIPEI)
        _open(page, node, "2022-08-25", "2022-08-25")
        page.wait_for_selector(".live.on")

        cluster.stop()
        page.wait_for_selector(".live.off", timeout=LOAD_TIMEOUT_MS)
        # Long enough for the browser's own reconnect (2 s after the drop) to meet a 503.
        page.wait_for_timeout(6_000)
        assert page.locator(".live.off").count() == 1
        cluster.start()
        page.wait_for_selector(".live.on", timeout=LOAD_TIMEOUT_MS)

        report = Observation(
            id="TWN:cop-pg:y8-1",
            origin="TWN",
            kind="air",
            observed_at=day,
            geometry=Point(coordinates=(122.2, 21.2)),
            platform=Platform(type="Y-8", platform_class="asw", count=1, nationality="CHN"),
        )
        with httpx.Client(timeout=30) as client:  # as a source posts: again after a 503
            post_reports(client, node.api_url, [report], node.headers)
        _wait_shown(page, 1, timeout=LOAD_TIMEOUT_MS)  # the same page, no reload
        assert node.stop() == 0
        # The database going away is routine: the stream it ended says so, no traceback.
        log = node.log.read_text()
        assert "live stream ended" in log and "Traceback" not in log, log
    finally:
        try:
            if context is not None:
                context.close()
            if node is not None:
                node.stop()  # whatever failed: the node and its workers do not outlive the test
        finally:
            cluster.remove()
