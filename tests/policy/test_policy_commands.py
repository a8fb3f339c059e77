"""The liaison's commands, run as a user runs them: draft, sign on each node, verify, install,
preview, diff, show and the ledger; a bad file leaves the agreement in force untouched."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from cli_run import run
from kuroshio.cli import app
from kuroshio.model import Kinematics, Marking
from kuroshio.node import open_node
from observations import as_json, observation


def kuroshio(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A TWN and a JPN node that have pinned each other's cards."""
    root = tmp_path_factory.mktemp("nodes")
    found = {party: root / party.lower() for party in ("TWN", "JPN")}
    for party, directory in found.items():
        run("init", directory, "--party", party, check=True)
        run("partner", "card", "-n", directory, "-o", root / f"{party}.card", check=True)
    run("partner", "add", root / "JPN.card", "-n", found["TWN"], check=True)
    run("partner", "add", root / "TWN.card", "-n", found["JPN"], check=True)
    return found


def signed_draft(tmp_path: Path, nodes: dict[str, Path], name: str = "twn-jpn.toml") -> Path:
    path = tmp_path / name
    code, out = kuroshio("agreement", "draft", path, "--id", "twn-jpn", "-p", "TWN", "-p", "JPN")
    assert code == 0, out
    for party in ("TWN", "JPN"):
        code, out = kuroshio("agreement", "sign", path, "-n", nodes[party])
        assert code == 0, out
    return path


def test_draft_sign_by_each_party_then_verify(tmp_path: Path, nodes: dict[str, Path]) -> None:
    path = tmp_path / "twn-jpn.toml"
    assert kuroshio("agreement", "draft", path, "--id", "twn-jpn", "-p", "TWN", "-p", "JPN")[0] == 0
    text = path.read_text()
    assert "# Release agreement twn-jpn" in text and 'from = "JPN"' in text

    code, out = kuroshio("agreement", "verify", path, "-n", nodes["TWN"])
    assert code == 1 and "not enforceable" in out and "not signed" in out

    code, out = kuroshio("agreement", "sign", path, "-n", nodes["TWN"])
    assert code == 0 and "Still to sign: JPN" in out
    code, out = kuroshio("agreement", "sign", path, "-n", nodes["JPN"])
    assert code == 0 and "Every party has signed" in out
    assert path.read_text().startswith(text.rstrip("\n"))  # comments and rules kept as written

    code, out = kuroshio("agreement", "verify", path, "-n", nodes["TWN"], "--json")
    report = json.loads(out)
    assert code == 0 and report["enforceable"]
    assert [s["state"] for s in report["signatures"]] == ["valid", "valid"]
    # without a node there are no pinned keys: correct signatures, but nothing to trust them by
    code, out = kuroshio("agreement", "verify", path)
    assert code == 1 and "no key pinned for TWN" in out


def test_install_preview_and_a_refused_change(tmp_path: Path, nodes: dict[str, Path]) -> None:
    path = signed_draft(tmp_path, nodes)
    twn = nodes["TWN"]
    code, out = kuroshio("agreement", "install", path, "-n", twn)
    assert code == 0 and "in force with JPN" in out, out

    now = dt.datetime.now(dt.UTC)
    items = [
        observation(
            1,
            at=now - dt.timedelta(hours=2),
            lon=121.123456,
            lat=22.654321,
            remarks="two H-6K off Lanyu",
            kinematics=Kinematics(speed_mps=200.0),
        ),
        observation(2, at=now - dt.timedelta(hours=2), marking=Marking(tlp="RED")),
        observation(3, at=now - dt.timedelta(days=30)),
        observation(4, at=now - dt.timedelta(hours=1), kind="area"),
    ]
    feed = tmp_path / "items.ndjson"
    feed.write_text("".join(json.dumps(as_json(o)) + "\n" for o in items))
    run("add", feed, "-n", twn, check=True)

    code, out = kuroshio("agreement", "preview", "JPN", "-n", twn, "--json")
    assert code == 0, out
    decisions = {
        d.get("item") or d["observation"]["id"]: d for d in map(json.loads, out.splitlines())
    }
    released = decisions["TWN:test:1"]
    assert released["decision"] == "release" and released["rule"] == "twn-jpn-air-sea"
    sent = released["observation"]
    assert sent["remarks"] is None and sent["provenance"]["record"] is None
    assert sent["geometry"]["coordinates"] != [121.123456, 22.654321]
    assert "TWN: coarsened to 10 km grid" in sent["provenance"]["transforms"]
    assert decisions["TWN:test:2"]["code"] == "tlp_red"
    assert decisions["TWN:test:3"]["code"] == "default_deny"  # older than a week
    assert decisions["TWN:test:4"]["code"] == "default_deny"  # areas are not in the draft

    code, out = kuroshio("agreement", "preview", "JPN", "-n", twn)
    assert code == 0 and "1 of 4 observations would be released" in out

    tampered = tmp_path / "tampered.toml"
    tampered.write_text(
        path.read_text()
        .replace("version = 1", "version = 2")
        .replace("coarsen_km = 10", "coarsen_km = 1", 1)
    )
    code, out = kuroshio("agreement", "install", tampered, "-n", twn)
    assert code == 2 and "does not match this content" in out
    code, out = kuroshio("agreement", "list", "-n", twn, "--json")
    assert [(a["id"], a["version"], a["governs"]) for a in json.loads(out)] == [
        ("twn-jpn", 1, ["JPN"])
    ]
    with open_node(twn) as node:
        changes = [e.subject for e in node.audit.entries(kind="agreement_change")]
    assert changes[-2:] == ["installed twn-jpn v1", "refused tampered.toml"]


def test_a_new_version_is_diffed_signed_and_takes_over(
    tmp_path: Path, nodes: dict[str, Path]
) -> None:
    first = signed_draft(tmp_path, nodes, "v1.toml")
    jpn = nodes["JPN"]
    assert kuroshio("agreement", "install", first, "-n", jpn)[0] == 0
    second = tmp_path / "v2.toml"
    text = first.read_text().split("[[signature]]")[0]
    second.write_text(
        text.replace("version = 1", "version = 2").replace("coarsen_km = 10", "coarsen_km = 25")
    )
    code, out = kuroshio("agreement", "diff", first, second, "--json")
    changes = json.loads(out)["changes"]
    assert "version: 1 → 2" in changes
    assert "JPN → TWN: rule 'jpn-twn-air-sea' transform.coarsen_km: 10.0 → 25.0" in changes
    for party in ("JPN", "TWN"):
        assert kuroshio("agreement", "sign", second, "-n", nodes[party])[0] == 0
    code, out = kuroshio("agreement", "install", second, "-n", jpn)
    assert code == 0, out
    code, out = kuroshio("agreement", "list", "-n", jpn, "--json")
    governing = [(a["version"], a["governs"]) for a in json.loads(out)]
    assert governing == [(1, []), (2, ["TWN"])]


def test_show_lists_rules_per_direction_with_the_default(
    tmp_path: Path, nodes: dict[str, Path]
) -> None:
    path = signed_draft(tmp_path, nodes)
    code, out = kuroshio("agreement", "show", path)
    assert code == 0
    assert "TWN → JPN" in out and "JPN → TWN" in out
    assert "coarsen 10 km; delay 30 min; drop provenance.record, remarks" in out
    assert "anything else" in out and "signed by JPN, TWN" in out


def test_a_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('id = "x"\nversion = 1\nparties = ["TWN", "JPN"]\nvalid_from = 2024-01-01\n')
    code, out = kuroshio("agreement", "show", path)
    assert code == 2
    assert f"error: {path}:4: valid_from" in out


def test_the_ledger_shows_days_and_the_clause(tmp_path: Path, nodes: dict[str, Path]) -> None:
    path = signed_draft(tmp_path, nodes)
    twn = nodes["TWN"]
    assert kuroshio("agreement", "install", path, "-n", twn)[0] == 0
    # Noon of today (UTC), so that every record falls on the day the ledger shows last.
    now = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    records = [
        {
            "flow": "given",
            "partner": "JPN",
            "item": f"TWN:x:{n}",
            "version": 1,
            "kind": "air",
            "observed_at": now - dt.timedelta(hours=1),
            "at": now - dt.timedelta(minutes=30),
            "sorties": 2,
        }
        for n in range(60)
    ] + [
        {
            "flow": "received",
            "partner": "JPN",
            "item": f"JPN:y:{n}",
            "version": 1,
            "kind": "sea",
            "observed_at": now - dt.timedelta(hours=3),
            "at": now - dt.timedelta(hours=1),
            "sorties": 1,
            "novel": n % 2 == 0,
        }
        for n in range(12)
    ]
    entries = tmp_path / "ledger.ndjson"
    entries.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    at = now.isoformat()
    code, out = kuroshio("ledger", "-n", twn, "--entries", entries, "--at", at, "--json")
    assert code == 0, out
    (row,) = json.loads(out)
    assert row["partner"] == "JPN" and row["agreement"] == "twn-jpn v1"
    assert row["status"]["shortfall"] and row["status"]["ratio"] == pytest.approx(0.2)
    today = row["days"][-1]
    assert (today["given"]["items"], today["given"]["sorties"]) == (60, 120)
    assert (today["received"]["items"], today["received"]["novel_items"]) == (12, 6)
    code, out = kuroshio("ledger", "-n", twn, "--entries", entries, "--at", at)
    assert code == 0 and "shortfall" in out and "TWN ⇄ JPN" in out
