"""History no one can rewrite: every receipt carries the receiver's signed audit head and the
proof that it extends the one before; the sender keeps them, and a log cut short or rewritten is
caught by the node itself (against the heads it signed) and by its partner (against the heads it
holds). Real node directories and stores; frames handed over without sockets; the commands run
as a user runs them."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agreements import agree
from cli_run import run
from kuroshio.audit import tree_head
from kuroshio.exchange import outbox, witness
from kuroshio.exchange.receipt import open_receipt
from kuroshio.federation.inbox import Inbox
from kuroshio.merkle import merkle_root
from kuroshio.model import Marking
from kuroshio.node import Node
from observations import observation
from pinning import pinned_nodes

TO_JAPAN = Marking(tlp="AMBER", releasable_to=("JPN",))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    twn, jpn = pinned_nodes(tmp_path, ("TWN", "JPN"))
    agree([twn, jpn], tmp_path / "agreements")
    yield twn, jpn
    twn.close()
    jpn.close()


def _send(twn: Node, jpn: Node, numbers: range) -> None:
    """TWN reports, seals and sends; JPN takes the batch in; TWN keeps JPN's receipt."""
    twn.ingest([observation(n, marking=TO_JAPAN, lon=121 + n / 100) for n in numbers])
    with twn.store.transaction() as tx:
        sealed = outbox.seal_next(
            tx,
            "JPN",
            signer=twn.identity,
            sender="TWN",
            max_items=1000,
            max_bytes=8 * 1024 * 1024,
            now=dt.datetime.now(dt.UTC),
        )
    assert sealed is not None
    signed = Inbox(jpn).accept(jpn.partners["TWN"], sealed.frame())
    receipt = open_receipt(signed, jpn.identity.public_key_bytes)
    assert twn.take_receipt("JPN", receipt, signed)


def _entry_hashes(node: Node) -> list[bytes]:
    with sqlite3.connect(node.store.path) as conn:
        return [bytes(r[0]) for r in conn.execute("SELECT hash FROM audit_log ORDER BY seq")]


def _cut(node: Node, keep: int, *tables: str) -> None:
    """What someone with write access does: drop the guards, delete the log's tail (and more)."""
    with sqlite3.connect(node.store.path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (keep,))
        for table in tables:
            conn.execute(f"DELETE FROM {table}")


def test_receipts_carry_heads_that_extend_one_another(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    for start in (0, 3, 6):
        _send(twn, jpn, range(start, start + 3))
    with twn.store.transaction() as tx:
        heads = tx.audit.partner_heads("JPN")
        report = witness.check_heads(tx, "JPN", jpn.identity.public_key_bytes)
    assert [seq for _, _, seq, *_ in heads] == [1, 2, 3] and all(row[5] for row in heads)
    assert report.ok and report.heads == 3
    # Each head is JPN's log as it stood: its root is the Merkle root of those entries.
    leaves = _entry_hashes(jpn)
    for size, root, *_ in heads:
        assert root == merkle_root(leaves[:size])
    with jpn.store.transaction() as tx:
        assert tree_head(tx.audit).root == merkle_root(leaves)

    checked = run("audit", "verify", "-n", twn.directory, "--partner", "JPN", check=True)
    assert "3 heads" in checked.stdout and "each extending the one before" in checked.stdout


def test_a_node_finds_its_log_cut_short_against_the_heads_it_signed(
    pair: tuple[Node, Node],
) -> None:
    twn, jpn = pair
    _send(twn, jpn, range(3))
    size = len(_entry_hashes(jpn))
    assert jpn.audit.verify().ok
    _cut(jpn, size - 2)
    report = jpn.audit.verify()
    assert [(p.seq, p.reason) for p in report.problems] == [(size - 1, "truncated")]
    assert "signed for TWN" in report.problems[0].detail
    verified = run("audit", "verify", "-n", jpn.directory)
    assert verified.returncode == 1 and "truncated" in verified.stderr


def test_a_partner_catches_a_log_rewritten_with_its_own_records_of_it(
    pair: tuple[Node, Node],
) -> None:
    twn, jpn = pair
    _send(twn, jpn, range(3))
    # JPN cuts its log and the heads it signed, so that by itself it looks whole again.
    _cut(jpn, 3, "audit_heads")
    assert jpn.audit.verify().ok
    _send(twn, jpn, range(3, 6))
    with twn.store.transaction() as tx:
        report = witness.check_heads(tx, "JPN", jpn.identity.public_key_bytes)
    [problem] = report.problems
    assert problem.reason == "inconsistent" and problem.seq == 2
    [failure] = twn.audit.entries("verify_failure")
    assert failure.details["code"] == "audit_rewritten" and failure.details["partner"] == "JPN"
    checked = run("audit", "verify", "-n", twn.directory, "--partner", "JPN")
    assert checked.returncode == 1 and "inconsistent" in checked.stderr


def test_a_forged_head_in_the_store_is_found_by_its_signature(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    _send(twn, jpn, range(3))
    with sqlite3.connect(twn.store.path) as conn:
        conn.execute("UPDATE partner_heads SET root = ?", (bytes(32),))
    with twn.store.transaction() as tx:
        [problem] = witness.check_heads(tx, "JPN", jpn.identity.public_key_bytes).problems
    assert problem.reason == "not_the_receipts" and problem.seq == 1


def test_a_partners_exported_log_is_checked_against_the_heads_it_signed(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    twn, jpn = pair
    for start in (0, 3):
        _send(twn, jpn, range(start, start + 3))
    log = tmp_path / "jpn-audit.ndjson"
    run("audit", "export", "-n", jpn.directory, "--out", log, check=True)
    held = run("audit", "verify", "-n", twn.directory, "--partner", "JPN", "--log", log)
    assert held.returncode == 0, held.stderr
    assert "holding every one of the 2 heads JPN signed" in held.stdout

    # JPN shows a log it cut and grew again: shorter, or different where a head was signed.
    lines = log.read_bytes().splitlines()
    cut = tmp_path / "cut.ndjson"
    cut.write_bytes(b"\n".join(lines[:-3]) + b"\n")
    shown = run("audit", "verify", "-n", twn.directory, "--partner", "JPN", "--log", cut)
    assert shown.returncode == 1 and "truncated" in shown.stderr
