"""Partner cards through the CLI: export, pin, list, revoke; cards that do not hang together are
refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agreements import agree
from cli_run import run
from kuroshio.exchange.wire import LinkRefused
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking
from observations import observation
from pinning import pinned_nodes
from sealing import sealed_batch


@pytest.fixture
def nodes(tmp_path: Path) -> tuple[Path, Path]:
    twn, jpn = tmp_path / "twn", tmp_path / "jpn"
    run("init", "--party", "TWN", twn, check=True)
    run("init", "--party", "JPN", jpn, "--port", "9443", check=True)
    return twn, jpn


def test_init_makes_keys_readable_by_the_owner_only(nodes: tuple[Path, Path]) -> None:
    twn, _ = nodes
    for name in ("signing.key", "ca.key", "node.key"):
        assert stat.S_IMODE((twn / "keys" / name).stat().st_mode) == 0o600
    config = (twn / "kuroshio.toml").read_text()
    assert "[federation]" in config and "port = 8443" in config and "port = 8080" in config


def test_a_card_carries_no_secret_and_pins_the_partner(
    nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    twn, jpn = nodes
    card_text = run("partner", "card", "--node", jpn, check=True).stdout
    card = json.loads(card_text)
    assert card["party"] == "JPN" and card["url"] == "https://127.0.0.1:9443"
    assert "PRIVATE" not in card_text and card["ca_certificate"].startswith("-----BEGIN CERT")
    card_file = tmp_path / "jpn.card.json"
    card_file.write_text(card_text)

    added = run("partner", "add", card_file, "--node", twn, check=True)
    assert card["key_fingerprint"] in added.stdout
    listed = json.loads(run("partner", "list", "--node", twn, "--json", check=True).stdout)
    assert listed == [
        {
            "party": "JPN",
            "node": "jpn-1",
            "url": "https://127.0.0.1:9443",
            "key_fingerprint": card["key_fingerprint"],
            "agreement": None,
        }
    ]


def test_pinning_without_an_agreement_releases_nothing(
    nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    twn, jpn = nodes
    card_file = tmp_path / "jpn.card.json"
    run("partner", "card", "--node", jpn, "--out", card_file, check=True)
    added = run("partner", "add", card_file, "--node", twn, check=True)
    assert "nothing until a signed agreement is installed (default deny)" in added.stdout


def test_cards_that_do_not_hang_together_are_refused(
    nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    twn, jpn = nodes
    card = json.loads(run("partner", "card", "--node", jpn, check=True).stdout)
    twn_card = json.loads(run("partner", "card", "--node", twn, check=True).stdout)
    cases = {
        "wrong-party": ({**card, "party": "USA"}, "the CA certificate is for JPN"),
        "wrong-key": ({**card, "signing_key": twn_card["signing_key"]}, "key_fingerprint"),
        "wrong-ca": ({**card, "ca_certificate": twn_card["ca_certificate"]}, "CA certificate is"),
        "bad-url": ({**card, "url": "ftp://jpn"}, "must start with https://"),
        "not-a-card": ({"hello": 1}, "not a partner card"),
    }
    for name, (bad, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bad))
        refused = run("partner", "add", path, "--node", twn)
        assert refused.returncode == 2, name
        assert message in refused.stderr, (name, refused.stderr)
    own = tmp_path / "own.json"
    own.write_text(json.dumps(twn_card))
    assert "own party" in run("partner", "add", own, "--node", twn).stderr
    assert json.loads(run("partner", "list", "--node", twn, "--json").stdout) == []


def test_audit_verify_reports_where_the_chain_breaks(nodes: tuple[Path, Path]) -> None:
    import sqlite3

    twn, _ = nodes
    source = twn.parent / "reports.ndjson"
    lines = [
        json.dumps(
            {
                "id": f"TWN:r:{n}",
                "origin": "TWN",
                "kind": "air",
                "observed_at": "2022-08-05T02:00:00Z",
                "geometry": {"type": "Point", "coordinates": [121, 22]},
            }
        )
        for n in range(3)
    ]
    for line in lines:
        source.write_text(line + "\n")
        run("add", "--node", twn, source, check=True)
    assert run("audit", "verify", "--node", twn).returncode == 0
    with sqlite3.connect(twn / "store.sqlite") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET subject = 'nothing to see' WHERE seq = 2")
    broken = run("audit", "verify", "--node", twn)
    assert broken.returncode == 1
    assert "seq 2: edited" in broken.stderr


def test_a_revoked_partner_is_refused_at_once_by_a_serving_node(tmp_path: Path) -> None:
    """The node keeps serving (its objects loaded before); the revocation is made by another
    process (the command line) and takes effect at the next batch, both ways."""
    twn, jpn = pinned_nodes(tmp_path, ("TWN", "JPN"))
    try:
        agree([twn, jpn], tmp_path / "agreements")
        serving = Inbox(jpn)
        twn_at_jpn = jpn.partners["TWN"]  # loaded before the revocation, as a serving node has it
        twn.ingest([observation(1, marking=Marking(releasable_to=("JPN",)))])
        serving.accept(twn_at_jpn, sealed_batch(twn, "JPN").frame())

        revoked = run(
            "partner", "revoke", "TWN", "--reason", "key compromised", "-n", jpn.directory
        )
        assert revoked.returncode == 0, revoked.stderr
        twn.ingest([observation(2, marking=Marking(releasable_to=("JPN",)))])
        with pytest.raises(LinkRefused) as refused:
            serving.accept(twn_at_jpn, sealed_batch(twn, "JPN").frame())
        assert refused.value.code == "revoked" and "key compromised" in refused.value.reason
        assert jpn.store.get("TWN:test:2") is None
        with pytest.raises(LinkRefused):
            serving.welcome(twn_at_jpn, 0)
        [change] = jpn.audit.entries("partner_change")
        assert change.details["reason"] == "key compromised"
        assert change.details["operator"].startswith("local:")
        listed = json.loads(
            run("partner", "list", "-n", jpn.directory, "--json", check=True).stdout
        )
        assert listed == []  # unpinned; its card kept under partners/revoked
        assert list((jpn.directory / "partners" / "revoked").glob("TWN-*.json"))
    finally:
        twn.close()
        jpn.close()
