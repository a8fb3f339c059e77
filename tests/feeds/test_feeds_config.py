"""Feed configuration: the README's examples work; a bad table is refused naming its field."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from kuroshio.errors import FeedConfigError
from kuroshio.feeds import AisFeed, AsterixFeed, CotFeed, parse_endpoint, parse_feeds
from kuroshio.feeds.asterix import AsterixDecoder

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_feeds() -> str:
    section = README.read_text(encoding="utf-8").split("## Live feeds", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    return block


def test_the_readme_shows_one_working_configuration_per_format() -> None:
    feeds = parse_feeds(tomllib.loads(readme_feeds())["feeds"])
    assert {config.kind for config in feeds.values()} == {"asterix", "ais", "sbs", "beast", "cot"}
    radar = feeds["radar"]
    assert isinstance(radar, AsterixFeed) and radar.endpoint.multicast
    assert radar.marking.releasable_to == ("JPN",)
    north = feeds["radar-north"]
    assert isinstance(north, AsterixFeed) and north.radars[0].height_m == 420
    assert isinstance(north.decoder(Counter()), AsterixDecoder)
    tak = feeds["tak"]
    assert isinstance(tak, CotFeed) and tak.tls is not None
    assert tak.tls.resolved(Path("/srv/twn")).cafile == "/srv/twn/keys/tak-ca.pem"
    assert feeds["adsb"].connect == "tcp://127.0.0.1:30005"
    coast = feeds["coast"]
    assert isinstance(coast, AisFeed) and coast.sensor_class == "ais"
    assert coast.thinning.interval_s == 5.0  # the default


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "asterix", "listen": "udp://0.0.0.0:1", "colour": "red"},
         "feeds.radar: Object contains unknown field `colour`"),
        ({"kind": "radar", "listen": "udp://0.0.0.0:1"}, "feeds.radar.kind: Invalid value"),
        ({"kind": "asterix"}, "feeds.radar: give exactly one of listen and connect"),
        ({"kind": "sbs", "listen": "udp://0.0.0.0:1"},
         "feeds.radar: sbs feeds come over tcp://, not udp://"),
        ({"kind": "ais", "connect": "udp://10.0.0.1:1"}, "connect takes tcp:// or tls://"),
        ({"kind": "cot", "listen": "tls://0.0.0.0:8089"}, "needs tls.certfile, tls.keyfile"),
        ({"kind": "ais", "listen": "tcp://0.0.0.0:70000"}, "port is not a number"),
        ({"kind": "ais", "listen": "udp://0.0.0.0:1", "queue": 0},
         "feeds.radar.queue: Expected `int` >= 1"),
        ({"kind": "ais", "listen": "udp://0.0.0.0:1", "marking": {"tlp": "SECRET"}},
         "feeds.radar.marking.tlp: Invalid enum value 'SECRET'"),
        ({"kind": "asterix", "listen": "udp://0.0.0.0:1", "radars": [{"sac": 1, "sic": 2}]},
         "feeds.radar.radars[0]: Object missing required field `lat`"),
    ],
)  # fmt: skip
def test_a_bad_feed_table_is_refused_naming_the_file_and_field(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(FeedConfigError, match=re.escape(message)) as error:
        parse_feeds({"radar": table}, location="nodes/twn/kuroshio.toml")
    assert str(error.value).startswith("nodes/twn/kuroshio.toml: feeds.radar")


def test_a_feed_name_is_a_slug() -> None:
    with pytest.raises(FeedConfigError, match=r"feeds\.Radar 1: a feed name is lower case"):
        parse_feeds({"Radar 1": {"kind": "ais", "listen": "udp://0.0.0.0:1"}})


def test_endpoints_read_hosts_of_every_kind() -> None:
    assert str(parse_endpoint("udp://[::1]:30062")) == "udp://[::1]:30062"
    assert parse_endpoint("tls://tak.example:8089").port == 8089
    with pytest.raises(ValueError, match="scheme must be"):
        parse_endpoint("http://example:80")
    with pytest.raises(ValueError, match="give host and port"):
        parse_endpoint("tcp://example")
