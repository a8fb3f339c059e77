"""Two nodes started from the CLI exchange observations live, over mutual TLS on loopback."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import msgspec
import pytest
from federation_nodes import ServedNode, StreamReader, agree, wait_until

from agreements import agreement_text
from cli_run import run
from kuroshio.demo.scenario import scenario
from kuroshio.model import Marking, Observation

START = dt.datetime(2026, 5, 20, 1, 0, tzinfo=dt.UTC)


def _keys(observations: list[Observation]) -> set[tuple[str, int]]:
    return {o.key for o in observations}


@pytest.mark.e2e
def test_two_nodes_exchange_live_both_ways_with_corrections(tmp_path: Path, backend: str) -> None:
    twn, jpn = ServedNode(tmp_path, "TWN", backend), ServedNode(tmp_path, "JPN", backend)
    twn.pin(jpn)
    jpn.pin(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))  # air and sea up to TLP:AMBER, both ways
    from_twn = list(scenario("TWN", START, releasable_to=["JPN"]))
    from_jpn = list(scenario("JPN", START, releasable_to=["TWN"]))
    withheld = [
        msgspec.structs.replace(
            from_twn[0], id="TWN:demo:red", marking=Marking(tlp="RED", releasable_to=("JPN",))
        ),
        msgspec.structs.replace(
            from_twn[0], id="TWN:demo:national", marking=Marking(releasable_to=("USA",))
        ),
    ]
    corrected = msgspec.structs.replace(from_twn[10], version=2, remarks="type confirmed")
    retracted = msgspec.structs.replace(from_twn[11], version=2, retracted=True)

    ready = [twn.start(), jpn.start()]
    try:
        assert {r["party"] for r in ready} == {"TWN", "JPN"}
        assert ready[1]["federation_url"] == f"https://127.0.0.1:{jpn.federation_port}"
        browser = StreamReader(
            f"{jpn.api_url}/api/stream?origin=TWN", expected=len(from_twn) + 2, headers=jpn.headers
        )
        browser.start()
        assert browser.connected.wait(30) and browser.error is None

        twn.add([*from_twn, *withheld])  # through the CLI, while both serve
        body = b"\n".join(msgspec.json.encode(o) for o in from_jpn)
        posted = httpx.post(
            f"{jpn.api_url}/api/observations",
            content=body,
            headers={"content-type": "application/x-ndjson", **jpn.headers},
            timeout=60,
        )
        assert posted.status_code == 200 and posted.json()["inserted"] == len(from_jpn)

        wait_until(lambda: jpn.count("TWN:") == len(from_twn), "TWN reports at JPN")
        wait_until(lambda: twn.count("JPN:") == len(from_jpn), "JPN reports at TWN")
        assert jpn.versions("TWN:") == _keys(from_twn)  # and neither withheld report
        assert twn.versions("JPN:") == _keys(from_jpn)

        fixes = b"\n".join(msgspec.json.encode(o) for o in (corrected, retracted))
        httpx.post(
            f"{twn.api_url}/api/observations", content=fixes, headers=twn.headers, timeout=60
        )
        wait_until(lambda: jpn.count("TWN:") == len(from_twn) + 2, "later versions at JPN")
        page = httpx.get(
            f"{jpn.api_url}/api/observations",
            params={"origin": "TWN", "retracted": "true", "limit": 10_000},
            headers=jpn.headers,
        ).json()
        current = {item["id"]: item for item in page["items"]}
        assert current[corrected.id]["version"] == 2
        assert current[corrected.id]["remarks"] == "type confirmed"
        assert current[retracted.id]["retracted"] is True
        assert current[corrected.id]["provenance"]["partner"] == "TWN"

        browser.join(60)
        assert browser.error is None
        assert set(browser.seen) == _keys(from_twn) | {corrected.key, retracted.key}

        status = json.loads(run("link", "status", "--node", twn.directory, "--json").stdout)
        [to_japan] = status
        assert to_japan["outgoing"]["pending"] == 0
        assert to_japan["outgoing"]["acked_seq"] == to_japan["outgoing"]["sealed_seq"] > 0
        assert to_japan["incoming"]["last_seq"] > 0
        # What the serving node's link is doing now, as it keeps it in the store (within a
        # second of a change).
        assert to_japan["live"]["connected"] is True
        assert 0 < to_japan["live"]["acked_seq"] <= to_japan["outgoing"]["acked_seq"]
    finally:
        codes = [twn.stop(), jpn.stop()]
    assert codes == [0, 0]

    receipts = json.loads(
        run("audit", "receipts", "JPN", "--node", twn.directory, "--json", check=True).stdout
    )
    assert sum(r["receipt"]["count"] for r in receipts) == len(from_twn) + 2
    assert all(r["receipt"]["receiver"] == "JPN" for r in receipts)
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stderr
        assert "audit log intact" in verified.stdout
    kinds = {kind for kind in ("ingest", "send", "receive", "receipt") if twn.audit(kind)}
    assert kinds == {"ingest", "send", "receive", "receipt"}
