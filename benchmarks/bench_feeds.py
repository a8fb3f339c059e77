"""Live feeds: decode and map to observations, messages per second on one core, AIS and ASTERIX.

AIS: sentences encoded with pyais for 5 000 ships (19 position reports of types 1-3 and 18 to
one two-part type 5 static report), read as a feed reads them: NMEA checksum, multi-part
reassembly, payload decoding, the mapping of every update to an observation (no thinning, so
that every message is mapped). ASTERIX: the CAT062 system-track block and the CAT048 plots of
the sample captures that ``asterix-decoder`` installs, decoded by the feed's codec (CAT048
placed from a radar site) and mapped. Rates are in CPU time of this process (one core, whatever
else the machine runs), wall-clock rates beside them. Prints one JSON line of results.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import asterix
import pyais

from kuroshio.feeds.ais import AisDecoder
from kuroshio.feeds.asterix import AsterixDecoder, RadarSite, split_blocks
from kuroshio.feeds.base import Decoder
from kuroshio.feeds.capture import read_capture
from kuroshio.feeds.observations import ObservationMapper
from kuroshio.model import Marking

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
AIS_MESSAGES = 40_000 if QUICK else 200_000
ASTERIX_RECORDS = 40_000 if QUICK else 200_000
SHIPS = 5_000
TARGET = 50_000.0
T0 = 1_722_823_200.0  # 2024-08-05 02:00 UTC


def ais_sentences(count: int) -> tuple[list[bytes], int]:
    """(sentences, messages): mostly position reports, a static report now and then."""
    lines: list[bytes] = []
    messages = 0
    while messages < count:
        mmsi = 416_000_000 + messages % SHIPS
        if messages % 20 == 19:
            data: dict[str, object] = {"type": 5, "mmsi": mmsi, "shipname": f"SHIP {mmsi}",
                                       "ship_type": 70 if mmsi % 7 else 55}  # fmt: skip
        else:
            data = {"type": (1, 2, 3, 18)[messages % 4], "mmsi": mmsi,
                    "lat": 22.0 + (messages % 300) / 100, "lon": 119.0 + (messages % 500) / 100,
                    "speed": 12.5, "course": float(messages % 360), "accuracy": 1}  # fmt: skip
        encoded = pyais.encode_dict(data, talker_id="AI", sentence_type="VDM", seq_id=messages % 10)
        lines += [line.encode() for line in encoded]
        messages += 1
    return lines, messages


def asterix_blocks(category: int) -> tuple[list[bytes], int]:
    """The sample captures' data blocks of one category, and how many records they hold."""
    if category == 62:
        data = Path(asterix.get_sample_file("cat062cat065.raw")).read_bytes()
        blocks = [b for b in split_blocks(data) if isinstance(b, bytes) and b[0] == 62]
    else:
        capture = Path(asterix.get_sample_file("cat_034_048.pcap"))
        blocks = [
            b
            for frame in read_capture(capture)
            if str(frame.port).startswith("21")
            for b in split_blocks(frame.data)
            if isinstance(b, bytes) and b[0] == 48
        ]
    records = sum(len(asterix.parse(b, verbose=False)) for b in blocks)
    return blocks, records


def rate(
    frames: list[bytes], decoder: Decoder, mapper: Callable[..., object], repeat: int
) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, observations) to decode and map ``frames`` ``repeat`` times."""
    observations = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(repeat):
        received_at = T0 + n
        for frame in frames:
            for update in decoder.decode(frame, received_at):
                mapper(update)
                observations += 1
    return time.process_time() - cpu, time.perf_counter() - wall, observations


def main() -> None:
    marking = Marking(tlp="AMBER", releasable_to=("JPN",))
    results: dict[str, float] = {}

    lines, messages = ais_sentences(AIS_MESSAGES)
    ais_map = ObservationMapper(origin="TWN", feed="coast", sensor="ais", marking=marking)
    cpu, wall, kept = rate(lines, AisDecoder(Counter()), ais_map, 1)
    results["AIS messages/s (CPU)"] = messages / cpu
    results["AIS messages/s (wall)"] = messages / wall
    print(f"AIS: {messages} messages, {len(lines)} sentences, {kept} observations, "
          f"{cpu:.2f} s CPU", file=sys.stderr)  # fmt: skip

    radar_map = ObservationMapper(origin="TWN", feed="radar", sensor="radar", marking=marking)
    sites = {(25, sic): RadarSite(121.0 + sic / 100, 24.0, 100.0) for sic in (11, 12, 13, 14, 201,
                                                                           204, 205)}  # fmt: skip
    for category in (62, 48):
        blocks, records = asterix_blocks(category)
        repeat = max(1, ASTERIX_RECORDS // records)
        decoder = AsterixDecoder(Counter(), radars=sites)
        cpu, wall, kept = rate(blocks, decoder, radar_map, repeat)
        total = records * repeat
        results[f"ASTERIX CAT{category:03d} records/s (CPU)"] = total / cpu
        results[f"ASTERIX CAT{category:03d} records/s (wall)"] = total / wall
        print(f"CAT{category:03d}: {total} records, {kept} observations, {cpu:.2f} s CPU",
              file=sys.stderr)  # fmt: skip

    print(
        json.dumps(
            {
                "name": "feeds",
                "metrics": results,
                "targets": {
                    "AIS messages/s (CPU)": f">= {TARGET:,.0f}",
                    "ASTERIX CAT062 records/s (CPU)": f">= {TARGET:,.0f}",
                    "ASTERIX CAT048 records/s (CPU)": f">= {TARGET:,.0f}",
                },
                "setup": {
                    "ais_messages": AIS_MESSAGES,
                    "asterix_records": ASTERIX_RECORDS,
                    "ships": SHIPS,
                    "quick": QUICK,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
