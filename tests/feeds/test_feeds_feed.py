"""The feed's intake: whatever a frame does to a decoder, it is one frame counted, never a
stopped feed."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from feed_support import Collector, make_feed
from kuroshio.feeds import Decoder, Framer, MalformedFrame, TrackUpdate
from kuroshio.feeds.feed import FeedSource
from kuroshio.feeds.framing import LineFramer


class Stub(Decoder):
    """Decodes ``ok``, says ``bad`` is malformed, trips on ``boom``, and maps ``odd`` to an
    update no observation can hold."""

    kind = "stub"

    def framer(self) -> Framer:
        return LineFramer()

    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        if frame == b"bad":
            raise MalformedFrame("not a stub frame", frame)
        if frame == b"boom":
            raise IndexError("list index out of range")
        track = "stub:1" if frame == b"ok" else "no scheme"
        return [TrackUpdate(track=track, kind="sea", at=dt.datetime.fromtimestamp(received_at,
                dt.UTC), lon=121.0, lat=25.0)]  # fmt: skip


def test_every_kind_of_bad_frame_is_counted_sampled_and_skipped() -> None:
    feed = make_feed(Collector(), "stub", kind="ais", listen="udp://127.0.0.1:0",
                     thinning={"interval_s": 0})  # fmt: skip
    source = FeedSource(feed, Stub(Counter()), "10.0.0.7:5000")
    kept = source.push(b"ok\nbad\nboom\nodd\nok\n" + b"x" * 9_000 + b"\nok\n", 1.7e9)
    assert [o.track for o in kept] == ["stub:1"] * 3
    status = feed.status()
    assert (status.frames, status.malformed, status.updates) == (7, 4, 4)
    reasons = [sample.reason for sample in status.samples]
    assert reasons[0] == "not a stub frame"
    assert reasons[1] == "decoder failed: IndexError: list index out of range"
    assert reasons[2].startswith("update of no scheme is not a valid observation")
    assert reasons[3] == "line longer than 8192 bytes"
    assert all(sample.peer == "10.0.0.7:5000" for sample in status.samples)
    assert status.samples[0].sample == b"bad".hex()
