"""Replay: a capture runs through a feed at its own pace (or faster) and stores the same
observations however often it is replayed."""

from __future__ import annotations

from pathlib import Path

import asterix
import pyais
import pytest

from feed_support import SAMPLE_RADARS, Collector, in_loop, make_feed
from kuroshio.errors import CaptureError
from kuroshio.feeds.capture import read_capture, replay

CAT048 = Path(asterix.get_sample_file("cat_034_048.pcap"))
RADARS = SAMPLE_RADARS


class FakeTime:
    """A monotonic clock that only the replay's own waits move."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_a_pcap_gives_its_udp_payloads_with_their_times_and_ports() -> None:
    frames = list(read_capture(CAT048))
    assert len(frames) == 100 and all(f.datagram for f in frames)
    assert frames[0].at == pytest.approx(1_462_433_756.508910)
    assert frames[0].port == 22131 and frames[1].port == 21131


@in_loop
async def test_a_replay_keeps_the_captures_pace_divided_by_the_speed() -> None:
    sink = Collector()
    feed = make_feed(sink, "radar", kind="asterix", listen="udp://127.0.0.1:30048",
                     radars=RADARS, thinning={"interval_s": 0})  # fmt: skip
    clock = FakeTime()
    summary = await replay(
        feed, CAT048, speed=2.0, port=None, sleep=clock.sleep, monotonic=clock.monotonic
    )
    frames = list(read_capture(CAT048))
    span = frames[-1].at - frames[0].at  # type: ignore[operator]
    assert clock.now - 100.0 == pytest.approx(span / 2, abs=1e-6)
    assert summary.frames == 100
    # the two multicast lines carry the same 63 plots: the copies have the same ids
    assert summary.observations == 126
    assert len({o.id for o in sink.observations}) == 63
    assert feed.status().state == "stopped"


@in_loop
async def test_replaying_a_capture_again_gives_the_same_observations() -> None:
    first, second = Collector(), Collector()
    for sink in (first, second):
        feed = make_feed(sink, "radar", kind="asterix", listen="udp://127.0.0.1:30048",
                         radars=RADARS)  # fmt: skip
        await replay(feed, CAT048, port=21112)
    assert first.observations == second.observations
    assert first.observations and {o.id.split(":")[3] for o in first.observations} == {"25/12"}


@in_loop
async def test_a_recorded_stream_replays_through_the_feeds_framing(tmp_path: Path) -> None:
    lines = pyais.encode_dict(
        {"type": 5, "mmsi": 416_000_321, "shipname": "XUN 9", "ship_type": 55}, seq_id=2
    ) + pyais.encode_dict({"type": 1, "mmsi": 416_000_321, "lat": 25.0, "lon": 121.0})
    recording = tmp_path / "ais.nmea"
    recording.write_text("\n".join(lines) + "\n")
    sink = Collector()
    feed = make_feed(sink, "coast", kind="ais", listen="tcp://127.0.0.1:10110")
    summary = await replay(feed, recording, speed=1.0)
    assert summary.observations == 1
    assert sink.observations[0].remarks == "XUN 9"


def test_a_pcapng_or_cut_pcap_is_refused_with_the_reason(tmp_path: Path) -> None:
    pcapng = tmp_path / "radar.pcapng"
    pcapng.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(24))
    with pytest.raises(CaptureError, match="pcapng"):
        list(read_capture(pcapng))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(CAT048.read_bytes()[:200])
    with pytest.raises(CaptureError, match="packet 2: cut short"):
        list(read_capture(cut))
