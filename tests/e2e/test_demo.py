"""`make demo` as a user runs it: `kuroshio demo` starts the nodes, replays the scenario live and
the observations cross under the signed agreement; both audit logs verify afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_run import kuroshio_command, run


def _holdings(stdout: str, parties: list[str]) -> dict[str, dict[str, tuple[int, int]]]:
    """The closing table: what each node holds, by origin: (observations, tracks)."""
    held: dict[str, dict[str, tuple[int, int]]] = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]
        if len(cells) == len(parties) + 2 and cells[0] in parties:
            found = [re.fullmatch(r"(\d+) in (\d+) tracks", cell) for cell in cells[1:-1]]
            if all(found):
                held[cells[0]] = {
                    party: (int(match[1]), int(match[2]))
                    for party, match in zip(parties, found, strict=True)
                    if match
                }
    return held


@pytest.mark.e2e
def test_the_demo_exchanges_both_ways_under_its_agreement_and_stops(tmp_path: Path) -> None:
    nodes = tmp_path / "demo-nodes"
    result = run("demo", "--once", "--duration", "5", "--dir", nodes, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Agreement in force: demo-exchange v1" in out and "signed by every party" in out
    assert "TWN → JPN" in out and "coarsen 10 km" in out
    for party in ("TWN", "JPN"):
        assert re.search(rf"{party}\s+picture and API http://127\.0\.0\.1:\d+/", out), out
        assert re.search(rf"{party}\s+.*log in as watch / \S+", out), out
    held = _holdings(out, ["TWN", "JPN"])
    assert set(held) == {"TWN", "JPN"}, out
    # Everything each side saw reached the other: both nodes hold the same picture, as tracks:
    # TWN's radar tracks each of seven aircraft and its navy's TAK client two ships, JPN's radar
    # the two bombers and its coast guard's AIS the two ships.
    assert held["TWN"] == held["JPN"], out
    assert held["TWN"]["TWN"][1] == 9 and held["TWN"]["JPN"][1] == 4, out
    events = json.loads(run("events", "--node", nodes / "twn", "--json").stdout)["events"]
    kinds = {(e["kind"], e["zone"]) for e in events}
    assert ("median_line_crossing", "Taiwan Strait median line") in kinds, kinds
    assert any(kind == "strait_transit" for kind, _ in kinds), kinds
    assert any(kind == "adiz_entry" for kind, _ in kinds), kinds
    # The dialogue channel: an RFI about the carrier group, its reply acknowledged; a rescue
    # near the Sakishima islands worked by both coast guards under their civil agreement.
    assert "Civil agreement in force: demo-coast-guards v1" in out, out
    assert "JPN asks TWN: Carrier group east of the Sakishima islands (immediate)" in out, out
    assert "JPN acknowledges the reply; its request stands acked, the reply acked at TWN" in out
    assert "JPN coast guard opens JPN:sar:demo" in out and "(v3, audited)" in out, out
    threads = json.loads(run("msg", "list", "--node", nodes / "twn", "--json").stdout)
    assert {m["message"]["kind"] for m in threads} == {"rfi", "reply"}, threads
    [rescue] = json.loads(run("incident", "list", "--node", nodes / "twn", "--json").stdout)
    assert rescue["status"] == "closed" and len(rescue["assets"]) == 2, rescue
    for party in ("twn", "jpn"):
        verified = run("audit", "verify", "--node", nodes / party)
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
    # The nodes stopped with the demo: a second run can take the same directory.
    again = run("demo", "--once", "--duration", "2", "--dir", nodes, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.e2e
def test_ctrl_c_twice_stops_the_serving_demo_and_its_nodes_cleanly(tmp_path: Path) -> None:
    """A user who presses Ctrl-C again while the nodes stop gets a clean stop, not a traceback
    with the nodes left running."""
    nodes = tmp_path / "demo-nodes"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    demo = subprocess.Popen(
        [*kuroshio_command(), "demo", "--duration", "2", "--dir", str(nodes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:
            seen.append(line)
            if "Nodes keep serving" in line:
                break
        else:
            raise AssertionError("the demo ended before serving:\n" + "".join(seen))
        demo.send_signal(signal.SIGINT)
        time.sleep(0.05)
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, err
    assert "Traceback" not in err, err
    assert "stopping nodes" in out
    # The nodes stopped with the demo: a second run can take the same directory.
    again = run("demo", "--once", "--duration", "2", "--dir", nodes, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
