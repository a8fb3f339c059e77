"""The agreement guide's complete example is a valid agreement that does what the guide says."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import msgspec
import pytest
from policy_cases import enforce

from kuroshio.geo.grid import latitude_step, longitude_step
from kuroshio.model import Marking, OriginatorControl, Platform, Provenance
from kuroshio.policy.agreement import parse_agreement
from kuroshio.policy.decide import Released, Withheld, decide
from observations import observation

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agreements.md"
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def example() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    return blocks[-1]


def test_the_complete_example_reads_without_warnings(example: str) -> None:
    parsed = parse_agreement(example, source="docs/agreements.md")
    assert parsed.warnings == ()
    agreement = parsed.agreement
    assert agreement.parties == ("JPN", "TWN", "USA")
    assert [r.id for r in agreement.rules("TWN", "JPN")] == [
        "twn-submarines",
        "twn-air-adiz",
        "twn-sea-strait",
        "twn-jpn-areas",
    ]
    assert [r.id for r in agreement.rules("TWN", "USA")] == [
        "twn-submarines",
        "twn-air-adiz",
        "twn-sea-strait",
    ]


def test_the_example_behaves_as_the_guide_describes(example: str) -> None:
    enforced = enforce(parse_agreement(example).agreement)
    bomber = observation(at=NOW - dt.timedelta(hours=1), lon=121.5, lat=22.5)  # in the ADIZ

    to_japan = decide(bomber, enforced, "JPN", None, NOW, own_party="TWN")
    assert isinstance(to_japan, Released) and to_japan.rule == "twn-air-adiz"
    assert to_japan.not_before == bomber.observed_at + dt.timedelta(minutes=15)
    # Its marking would let JPN pass it to USA, but JPN's own rules release only what is in
    # Japan's south-west ADIZ, so it stops at JPN.
    at_japan = to_japan.observation
    assert at_japan.marking.control.to == ("JPN", "USA")
    to_usa = decide(at_japan, enforced, "USA", None, NOW, own_party="JPN")
    assert isinstance(to_usa, Withheld) and to_usa.code == "default_deny"  # JPN's rules: SW only

    submarine = observation(
        at=NOW - dt.timedelta(hours=1), kind="sea", platform=Platform(platform_class="submarine")
    )
    assert decide(submarine, enforced, "USA", None, NOW, own_party="TWN").rule == "twn-submarines"
    area = observation(at=NOW, kind="area", marking=Marking(tlp="GREEN"))
    assert isinstance(decide(area, enforced, "JPN", None, NOW, own_party="TWN"), Released)
    assert decide(area, enforced, "USA", None, NOW, own_party="TWN").code == "default_deny"

    relayed = msgspec.structs.replace(
        observation(origin="JPN", at=NOW),
        marking=Marking(control=OriginatorControl(rerelease=True, max_hops=1)),
        provenance=Provenance(partner="JPN", hops=1),
    )
    out = decide(relayed, enforced, "TWN", None, NOW, own_party="USA")
    assert isinstance(out, Released) and out.rule == "usa-relay-partner-air"


def test_the_grid_figures_in_the_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert "0.0899° and columns 0.0980° apart" in " ".join(text.split())
    row = round(23.5 / latitude_step(10.0)) * latitude_step(10.0)
    assert round(latitude_step(10.0), 4) == 0.0899
    assert round(longitude_step(10.0, row), 4) == 0.0980
