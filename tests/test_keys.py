"""A node's keys over their life, through the command line as an operator uses it: the signing
key kept encrypted with a passphrase, warnings of certificates that end soon, and a rotation
partners take on the old key's word while everything signed before stays valid."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements import agree
from cli_run import run
from kuroshio.exchange.inbox import verify_received
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking
from kuroshio.node import init_node, open_node
from observations import observation
from pinning import pin, pinned_nodes
from sealing import sealed_batch

PASSPHRASE = "a passphrase for the watch"


def test_an_encrypted_signing_key_opens_only_with_its_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = tmp_path / "twn"
    run("init", "--party", "TWN", node, check=True)
    fingerprint = json.loads(run("keys", "status", "-n", node, "--json", check=True).stdout)
    run(
        "keys",
        "protect",
        "-n",
        node,
        "--passphrase-stdin",
        stdin=f"{PASSPHRASE}\n".encode(),
        check=True,
    )
    assert (
        (node / "keys" / "signing.key")
        .read_bytes()
        .startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    )
    locked = run("partner", "card", "-n", node)
    assert locked.returncode == 2 and "KUROSHIO_KEY_PASSPHRASE" in locked.stderr

    monkeypatch.setenv("KUROSHIO_KEY_PASSPHRASE", "not the passphrase")
    wrong = run("partner", "card", "-n", node)
    assert wrong.returncode == 2 and "the passphrase does not open it" in wrong.stderr

    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    monkeypatch.delenv("KUROSHIO_KEY_PASSPHRASE")
    monkeypatch.setenv("KUROSHIO_KEY_PASSPHRASE_FILE", str(passphrase_file))
    opened = json.loads(run("keys", "status", "-n", node, "--json", check=True).stdout)
    assert opened["protected"] is True
    assert opened["signing_key"] == fingerprint["signing_key"]  # the same key, now encrypted


def test_certificates_that_end_soon_are_warned_of(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
    with open_node(tmp_path / "twn") as node:
        assert node.certificate_warnings() == []
        ends = node.identity.node_certificate.not_valid_after_utc
        soon = node.certificate_warnings(ends - dt.timedelta(days=10))
        assert soon == [f"this node's TLS certificate expires on {ends:%Y-%m-%d}, in 10 days"]
        later = node.certificate_warnings(dt.datetime.now(dt.UTC) + dt.timedelta(days=3650))
        assert "this node's TLS certificate expired" in later[0]
        assert any(w.startswith("JPN's pinned CA") for w in later)


def test_a_rotated_key_is_taken_on_the_old_keys_word_and_old_signatures_stay_valid(
    tmp_path: Path,
) -> None:
    twn, jpn = pinned_nodes(tmp_path, ("TWN", "JPN"))
    agree([twn, jpn], tmp_path / "agreements")  # signed with TWN's first key
    to_japan = Marking(releasable_to=("JPN",))
    twn.ingest([observation(1, marking=to_japan)])
    Inbox(jpn).accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame())
    twn.ingest([observation(2, marking=to_japan)])
    in_flight = sealed_batch(twn, "JPN").frame()  # sealed with the old key, not yet delivered
    old_key = twn.identity.public_key_bytes
    old_certificate = twn.identity.node_certificate
    twn.close()

    rotated = run("keys", "rotate", "-n", tmp_path / "twn", check=True)
    assert "retired" in rotated.stdout
    assert run("audit", "verify", "-n", tmp_path / "twn", check=True).returncode == 0
    card = tmp_path / "twn-new.card.json"
    run("partner", "card", "-n", tmp_path / "twn", "--out", card, check=True)
    added = run("partner", "add", card, "-n", jpn.directory, check=True)
    assert "endorsed by the key pinned before" in added.stdout

    twn, jpn2 = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    jpn.close()
    try:
        assert twn.identity.public_key_bytes != old_key
        assert twn.identity.node_certificate.serial_number != old_certificate.serial_number
        pinned = jpn2.partners["TWN"]
        assert pinned.signing_key == twn.identity.public_key_bytes
        assert pinned.previous_keys == (old_key,)
        now = dt.datetime.now(dt.UTC)
        # The agreement both signed before the rotation is still in force on both sides.
        assert jpn2.agreement_for("TWN", now) is not None
        assert twn.agreement_for("JPN", now) is not None
        inbox = Inbox(jpn2)
        inbox.accept(pinned, in_flight)  # the old key's batch, delivered after the rotation
        twn.ingest([observation(3, marking=to_japan)])
        inbox.accept(pinned, sealed_batch(twn, "JPN").frame())  # the new key's
        assert jpn2.store.count_versions() == 3
        with jpn2.store.transaction() as tx:
            first = jpn2.store.get("TWN:test:1")
            assert first is not None
            assert verify_received(tx, jpn2.pinned_keys(), first).status == "verified"
        assert any("rotated" in e.subject for e in jpn2.audit.entries("partner_change"))
    finally:
        twn.close()
        jpn2.close()


def test_a_new_key_without_the_old_keys_endorsement_is_refused(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(jpn, twn)
    card = json.loads(run("partner", "card", "-n", tmp_path / "twn", check=True).stdout)
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    card["signing_key"] = base64.b64encode(stranger).decode()
    card["key_fingerprint"] = ""
    forged = tmp_path / "forged.card.json"
    forged.write_text(json.dumps(card))
    refused = run("partner", "add", forged, "-n", tmp_path / "jpn")
    assert refused.returncode == 2
    assert "without an endorsement by the pinned key" in refused.stderr
