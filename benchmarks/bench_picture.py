"""The picture in a real browser with many live tracks: Debian's chromium (driven by Playwright)
against a served TWN node holding 50, then 5 000 tracks, each updated once per 5 s while the map
pans.

For each size: time to first render (from opening the page, logged in, to the map's first drawn
track heads) and the frame time while panning back and forth for a few seconds (the time between
animation frames, mean and p95), first with no update arriving, then with each track's live
updates arriving meanwhile. Target: frame time with 5 000 live tracks at most 2× that with 50.
Prints one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_exchange import KUROSHIO, make_nodes, serve, stop, wait_http
from kuroshio.model import Kinematics, Marking, Observation, Platform, Point, Source
from kuroshio.node import open_node

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
CHROMIUM = Path("/usr/bin/chromium")
SIZES = (50, 5_000)
TRAIL = 3
"""Updates stored for each track before the page opens (its head and a trail)."""
UPDATE_EVERY_S = 5.0
PAN_S = 4.0 if QUICK else 10.0
VIEWER, PASSWORD = "watch", "a watch officer's password"
LOAD_TIMEOUT_MS = 180_000

_DRAWN = """async (timeoutMs) => {
  // The map's "idle" never comes while live updates keep arriving: wait for drawn heads instead.
  const began = performance.now();
  while (window.cop.renderedCount() === 0) {
    if (performance.now() - began > timeoutMs) throw new Error("no track drawn");
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return window.cop.renderedCount();
}"""

_PAN = """async (seconds) => {
  const map = window.cop.map;
  const frames = [];
  let last = performance.now();
  let running = true;
  const tick = (now) => {
    frames.push(now - last);
    last = now;
    if (running) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const began = performance.now();
  let direction = 1;
  while (performance.now() - began < seconds * 1000) {
    await new Promise((resolve) => {
      map.once("moveend", resolve);
      map.panBy([direction * 500, direction * 200], { duration: 1000 });
    });
    direction = -direction;
  }
  running = false;
  return frames.slice(1);
}"""


def _update(track: int, step: int, at: dt.datetime, tracks: int) -> Observation:
    # The tracks on a square grid over the same 6° × 6° east of Taiwan, whatever their number.
    side = math.ceil(math.sqrt(tracks))
    lon = 119.0 + (track % side) * 6.0 / side + step * 0.01
    lat = 21.0 + (track // side) * 6.0 / side
    return Observation(
        id=f"TWN:bench:{track}:{step}",
        origin="TWN",
        kind="air",
        observed_at=at,
        geometry=Point(coordinates=(round(lon, 5), round(lat, 5))),
        platform=Platform(type="J-16", platform_class="fighter", nationality="CHN"),
        kinematics=Kinematics(course_deg=90.0, speed_mps=250.0),
        source=Source(sensor="radar", uncertainty_m=300.0),
        marking=Marking(tlp="AMBER", releasable_to=("JPN",)),
        track=f"cat062:25/1:{track}",
    )


class LiveUpdates(threading.Thread):
    """Each track's next update once per :data:`UPDATE_EVERY_S`, stored in batches every 200 ms
    through the node's own door, as a feed would."""

    def __init__(self, directory: Path, tracks: int) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.tracks = tracks
        self.stored = 0
        self.done = threading.Event()

    def run(self) -> None:
        per_tick = max(1, round(self.tracks / UPDATE_EVERY_S * 0.2))
        step = TRAIL
        next_track = 0
        with open_node(self.directory) as node:
            while not self.done.wait(0.2):
                at = dt.datetime.now(dt.UTC)
                batch = []
                for _ in range(per_tick):
                    batch.append(_update(next_track, step, at, self.tracks))
                    next_track += 1
                    if next_track == self.tracks:
                        next_track, step = 0, step + 1
                node.ingest(batch, via="feed")
                self.stored += len(batch)


def _seed(directory: Path, tracks: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with open_node(directory) as node:
        for step in range(TRAIL):
            at = now - dt.timedelta(seconds=20 * (TRAIL - step))
            updates = [_update(track, step, at, tracks) for track in range(tracks)]
            for start in range(0, len(updates), 1_000):
                node.ingest(updates[start : start + 1_000], via="feed")


def _measure(browser: Any, api: str, live: LiveUpdates) -> dict[str, float]:
    """Open the page, pan with no update arriving, then start the live updates and pan again."""
    context = browser.new_context(viewport={"width": 1400, "height": 850}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(f"{api}/")
        page.fill("input[name=name]", VIEWER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{api}/")
        today = dt.datetime.now(dt.UTC).date().isoformat()
        began = time.perf_counter()
        page.goto(f"{api}/?start={today}&end={today}&tz=0")
        page.wait_for_selector("body[data-ready=true]", timeout=LOAD_TIMEOUT_MS)
        page.evaluate(_DRAWN, LOAD_TIMEOUT_MS)
        first_render_s = time.perf_counter() - began
        page.evaluate("() => window.cop.map.jumpTo({center: [122.0, 24.0], zoom: 6.5})")
        drawn = page.evaluate(_DRAWN, LOAD_TIMEOUT_MS)
        still: list[float] = sorted(page.evaluate(_PAN, PAN_S))
        live.start()
        moving: list[float] = sorted(page.evaluate(_PAN, PAN_S))
    finally:
        context.close()
    return {
        "first_render_s": round(first_render_s, 2),
        "still_ms_mean": round(statistics.fmean(still), 2),
        "frame_ms_mean": round(statistics.fmean(moving), 2),
        "frame_ms_p95": round(moving[int(0.95 * (len(moving) - 1))], 2),
        "frames": len(moving),
        "drawn": drawn,
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is not installed (make setup installs Debian's chromium)")
    results: dict[int, dict[str, float]] = {}
    stored: dict[int, int] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            for tracks in SIZES:
                root = Path(tempfile.mkdtemp(prefix=f"kuroshio-bench-picture-{tracks}-"))
                twn = make_nodes(root)["TWN"]
                viewer = ["user", "add", VIEWER, "--role", "viewer", "--password-stdin"]
                subprocess.run(
                    [*KUROSHIO, *viewer, "-n", str(twn.directory)],
                    input=f"{PASSWORD}\n",
                    text=True,
                    capture_output=True,
                    check=True,
                )
                _seed(twn.directory, tracks)
                process = serve(twn, root / "twn.log")
                live = LiveUpdates(twn.directory, tracks)
                try:
                    wait_http(f"{twn.api}/api/health")
                    results[tracks] = _measure(browser, twn.api, live)
                finally:
                    live.done.set()
                    if live.is_alive():
                        live.join()
                    stop(process)
                stored[tracks] = live.stored
        finally:
            browser.close()
    few, many = results[SIZES[0]], results[SIZES[1]]
    metrics = {
        f"first render, {SIZES[1]} tracks (s)": many["first_render_s"],
        f"first render, {SIZES[0]} tracks (s)": few["first_render_s"],
        f"frame time panning, {SIZES[1]} live tracks, mean (ms)": many["frame_ms_mean"],
        f"frame time panning, {SIZES[0]} live tracks, mean (ms)": few["frame_ms_mean"],
        f"frame time panning, {SIZES[1]} live tracks, p95 (ms)": many["frame_ms_p95"],
        f"frame time panning, {SIZES[0]} live tracks, p95 (ms)": few["frame_ms_p95"],
        f"frame time panning, {SIZES[1]} tracks, no updates, mean (ms)": many["still_ms_mean"],
        f"frame time panning, {SIZES[0]} tracks, no updates, mean (ms)": few["still_ms_mean"],
        f"frame time ratio, {SIZES[1]} vs {SIZES[0]} tracks, no updates (mean)": round(
            many["still_ms_mean"] / few["still_ms_mean"], 2
        ),
        f"frame time ratio, {SIZES[1]} vs {SIZES[0]} tracks (mean)": round(
            many["frame_ms_mean"] / few["frame_ms_mean"], 2
        ),
    }
    print(
        json.dumps(
            {
                "name": "picture",
                "metrics": metrics,
                "targets": {f"frame time ratio, {SIZES[1]} vs {SIZES[0]} tracks (mean)": "<= 2"},
                "setup": {
                    "browser": "Debian chromium, headless, 1400×850",
                    "trail": TRAIL,
                    "update_every_s": UPDATE_EVERY_S,
                    "pan_s": PAN_S,
                    "live_updates_stored": stored,
                    "heads_drawn_in_view": {n: r["drawn"] for n, r in results.items()},
                    "frames": {n: r["frames"] for n, r in results.items()},
                },
            }
        )
    )


if __name__ == "__main__":
    main()
