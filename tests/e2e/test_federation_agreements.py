"""Release agreements govern the live exchange between real nodes (``kuroshio serve`` processes,
mutual TLS on loopback): a new version takes over at the next release, an unsigned or expired
agreement releases nothing, and a third party receives only what the originator allowed."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from federation_nodes import ServedNode, agree, wait_until

from agreements import RELEASE_AIR_SEA, agreement_text
from cli_run import run
from kuroshio.geo.grid import snap
from kuroshio.model import Marking, Observation, OriginatorControl
from observations import observation

TO_JAPAN = Marking(tlp="AMBER", releasable_to=("JPN",))


def _post(node: ServedNode, observations: Iterable[Observation]) -> dict[str, Any]:
    body = b"\n".join(msgspec.json.encode(o) for o in observations)
    response = httpx.post(
        f"{node.api_url}/api/observations",
        content=body,
        headers={"content-type": "application/x-ndjson", **node.headers},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _get(node: ServedNode, obs_id: str) -> dict[str, Any] | None:
    rows = node.query(
        "SELECT v.body FROM current c JOIN observation_versions v ON v.seq = c.seq WHERE c.id = ?",
        (obs_id,),
    )
    return json.loads(rows[0][0]) if rows else None


def _decisions(node: ServedNode, partner: str) -> list[dict[str, Any]]:
    return [entry["partners"][partner] for entry in node.audit("decision") if "partners" in entry]


def _queued(node: ServedNode, ids: Iterable[str]) -> int:
    """Items of ``ids`` ever put in an outbox (queued, or sent and signed for)."""
    ids = list(ids)
    marks = ", ".join("?" * len(ids))
    pending = node.query(f"SELECT count(*) FROM outbox WHERE id IN ({marks})", tuple(ids))
    given = node.query(f"SELECT count(*) FROM ledger WHERE item IN ({marks})", tuple(ids))
    return int(pending[0][0]) + int(given[0][0])


@pytest.fixture
def pair(tmp_path: Path, backend: str) -> Any:
    twn, jpn = ServedNode(tmp_path, "TWN", backend), ServedNode(tmp_path, "JPN", backend)
    twn.pin(jpn)
    jpn.pin(twn)
    yield twn, jpn
    assert [twn.stop(), jpn.stop()] == [0, 0]
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stderr


@pytest.mark.e2e
def test_a_new_version_governs_the_next_release_of_a_running_node(
    pair: tuple[ServedNode, ServedNode],
) -> None:
    twn, jpn = pair
    coarse_air = (
        'action = "release"\nmatch = { kind = ["air"] }\n'
        "transform = { coarsen_km = 10, delay_s = 4 }"
    )
    v1 = agreement_text(["TWN", "JPN"], {("TWN", "JPN"): coarse_air, ("JPN", "TWN"): coarse_air})
    agree([twn, jpn], v1, "twn-jpn-v1")
    twn.start()
    jpn.start()

    now = dt.datetime.now(dt.UTC)
    air = observation(1, at=now, lon=121.2345, lat=22.3456, marking=TO_JAPAN)
    sea = observation(2, at=now, kind="sea", marking=TO_JAPAN)
    _post(twn, [air, sea])
    wait_until(lambda: _get(jpn, air.id) is not None, "the air report at JPN")
    received = _get(jpn, air.id)
    assert received is not None
    on_grid = [round(value, 7) for value in snap(121.2345, 22.3456, 10)]  # canonical: 7 places
    assert received["geometry"]["coordinates"] == on_grid
    assert "TWN: coarsened to 10 km grid" in received["provenance"]["transforms"]
    [(received_at,)] = jpn.query(
        "SELECT at FROM ledger WHERE item = ? AND flow = 'received'", (air.id,)
    )
    # Held until the delay had passed: never received earlier than observed + 4 s.
    assert received_at >= (now + dt.timedelta(seconds=4)).timestamp() * 1_000_000
    assert _get(jpn, sea.id) is None and _queued(twn, [sea.id]) == 0

    # Version 2, signed by both and installed while both nodes serve: sea too, exact positions.
    v2 = agreement_text(["TWN", "JPN"], version=2)
    agree([twn, jpn], v2, "twn-jpn-v2")
    later = [
        observation(3, lon=121.2345, lat=22.3456, marking=TO_JAPAN),
        observation(4, kind="sea", marking=TO_JAPAN),
    ]
    _post(twn, later)
    wait_until(lambda: jpn.count("TWN:test:") == 3, "version 2 releases at JPN")
    exact = _get(jpn, later[0].id)
    assert exact is not None and exact["geometry"]["coordinates"] == [121.2345, 22.3456]
    assert _get(jpn, later[1].id) is not None
    versions = [(d["agreement"], d["agreement_version"]) for d in _decisions(twn, "JPN")]
    assert versions == [("test-exchange", 1), ("test-exchange", 2)]

    # The ledger, live: TWN has given what JPN signed for; JPN shows it through its API.
    wait_until(lambda: _ledger_given(twn) == 3, "TWN's ledger records what JPN signed for")
    api = httpx.get(
        f"{jpn.api_url}/api/ledger", params={"days": 2}, headers=jpn.headers, timeout=30
    ).json()
    [from_twn] = api["partners"]
    assert from_twn["partner"] == "TWN" and from_twn["agreement"] == "test-exchange v2"
    assert sum(day["received"]["items"] for day in from_twn["days"]) == 3
    spec = httpx.get(f"{jpn.api_url}/openapi.json", headers=jpn.headers, timeout=30).json()
    schema = spec["paths"]["/api/ledger"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["$ref"].endswith("/LedgerModel")


def _ledger_given(node: ServedNode) -> int:
    report = json.loads(run("ledger", "--node", node.directory, "--json", check=True).stdout)
    return sum(day["given"]["items"] for row in report for day in row["days"])


@pytest.mark.e2e
def test_an_unsigned_or_expired_agreement_releases_nothing(
    pair: tuple[ServedNode, ServedNode], tmp_path: Path
) -> None:
    twn, jpn = pair
    unsigned = tmp_path / "unsigned.toml"
    unsigned.write_text(agreement_text(["TWN", "JPN"], agreement_id="unsigned"))
    run("agreement", "sign", unsigned, "--node", twn.directory, check=True)  # JPN never signs
    refused = run("agreement", "install", unsigned, "--node", twn.directory)
    assert refused.returncode == 2 and "JPN" in refused.stderr and "not signed" in refused.stderr
    twn.start()
    jpn.start()
    first = [observation(n, marking=TO_JAPAN) for n in range(3)]
    _post(twn, first)
    [decision] = _decisions(twn, "JPN")
    assert decision["withheld"][0]["code"] == "no_agreement" and decision["released"] == []

    # An agreement valid for half a minute more (room for signing and installing on a busy
    # machine): it releases, then it has expired.
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    short = agreement_text(["TWN", "JPN"], agreement_id="short", valid_until=until)
    agree([twn, jpn], short, "short")
    _post(twn, [observation(10, marking=TO_JAPAN)])
    wait_until(lambda: jpn.count("TWN:test:10") == 1, "a release while the agreement holds")
    time.sleep(max(0.0, (until - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)
    late = [observation(20 + n, marking=TO_JAPAN) for n in range(3)]
    _post(twn, late)
    last = _decisions(twn, "JPN")[-1]
    assert last["agreement"] is None and last["withheld"][0]["code"] == "no_agreement"
    assert _queued(twn, [o.id for o in [*first, *late]]) == 0
    expired = run("agreement", "install", tmp_path / "short.toml", "--node", jpn.directory)
    assert expired.returncode == 2 and "expired" in expired.stderr
    assert jpn.count("TWN:") == 1


@pytest.mark.e2e
def test_three_nodes_re_release_only_as_the_originator_allowed(
    tmp_path: Path, backend: str
) -> None:
    twn, jpn, usa = (ServedNode(tmp_path, p, backend) for p in ("TWN", "JPN", "USA"))
    twn.pin(jpn)
    jpn.pin(twn)
    jpn.pin(usa)
    usa.pin(jpn)
    # USA and TWN know each other's keys but agree on nothing: TWN's items reach USA only via JPN.
    usa.pin(twn)
    twn.pin(usa)
    # Two bilateral agreements: JPN may pass TWN's items on to USA, as far as TWN allows.
    agree([twn, jpn], agreement_text(["TWN", "JPN"], agreement_id="twn-jpn"), "twn-jpn")
    onward_rules = {
        ("JPN", "USA"): 'action = "release"\nmatch = { origin = ["TWN", "JPN"] }',
        ("USA", "JPN"): RELEASE_AIR_SEA,
    }
    agree(
        [jpn, usa], agreement_text(["JPN", "USA"], onward_rules, agreement_id="jpn-usa"), "jpn-usa"
    )
    onward = OriginatorControl(rerelease=True, to=("USA",), max_hops=1)
    may_pass = observation(1, marking=Marking(control=onward))
    national = observation(2, marking=Marking())  # no re-release
    one_hop = observation(3, marking=Marking(control=OriginatorControl(rerelease=True)))
    for node in (twn, jpn, usa):
        node.start()
    try:
        _post(twn, [may_pass, national, one_hop])
        wait_until(lambda: jpn.count("TWN:") == 3, "TWN's reports at JPN")
        wait_until(lambda: usa.count("TWN:") == 1, "the one TWN allowed on, at USA")
        relayed = _get(usa, may_pass.id)
        assert relayed is not None and relayed["provenance"]["partner"] == "JPN"
        assert relayed["provenance"]["hops"] == 2
        assert relayed["marking"]["control"] == json.loads(msgspec.json.encode(onward))
        # JPN passed it on unchanged with TWN's proof: USA checks it against TWN's own signature.
        detail = httpx.get(
            f"{usa.api_url}/api/cop/observation",
            params={"id": may_pass.id},
            headers=usa.headers,
            timeout=30,
        ).json()
        assert detail["verification"]["status"] == "verified", detail["verification"]
        assert "relayed by JPN" in detail["verification"]["detail"]
        withheld = {w["code"]: w["items"] for w in _decisions(jpn, "USA")[0]["withheld"]}
        assert withheld == {
            "originator_control": [f"{national.id} v1"],
            "hop_limit": [f"{one_hop.id} v1"],
        }
        # Relayed items never go back the way they came, nor to their origin.
        assert usa.count("TWN:") == 1 and twn.count("USA:") == 0

        # The origin retracts: the retraction follows over both hops.
        retraction = msgspec.structs.replace(may_pass, version=2, retracted=True)
        _post(twn, [retraction])
        wait_until(
            lambda: (usa.versions("TWN:test:1")) == {(may_pass.id, 1), (may_pass.id, 2)},
            "the retraction at USA",
        )
        at_usa = _get(usa, may_pass.id)
        assert at_usa is not None and at_usa["retracted"] is True
    finally:
        codes = [node.stop() for node in (twn, jpn, usa)]
    assert codes == [0, 0, 0]
    for node in (twn, jpn, usa):
        assert run("audit", "verify", "--node", node.directory).returncode == 0
