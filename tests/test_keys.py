"""A node's keys over their life, through the command line as an operator uses it: the signing
key kept encrypted with a passphrase, and warnings of certificates that end soon."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cli_run import run
from kuroshio.node import init_node, open_node
from pinning import pin

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
